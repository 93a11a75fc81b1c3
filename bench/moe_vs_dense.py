"""Mixture-of-experts against the dense baby GPT with the same active parameters per token: training tokens/s
side by side, in one process, alternating (val losses come from the two full runs; see docs/benchmarks.md).

    .venv/bin/python bench/moe_vs_dense.py [--rounds 5] [--steps 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lamina.config.loading import load_config  # noqa: E402
from lamina.pipeline.prepare import prepare  # noqa: E402
from lamina.training.loop import Loop  # noqa: E402
from lamina.training.optimizers import build_optimizer  # noqa: E402


def tokens_per_second(session, config, seed: int, tokens: int) -> float:
    model = copy.deepcopy(session.model)
    config = session.config
    loop = Loop(
        model,
        session.data,
        session.objective,
        build_optimizer(config.train.optimizer, model),
        config.train,
        metric_names=session.metric_names,
        monitor=session.monitor,
        seed=seed,
        callbacks=[],
    )
    started = time.perf_counter()
    loop._train_epoch(started)
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    overrides = {
        "runtime.threads": arguments.threads,
        "data.windows_per_epoch": 12 * arguments.steps,
        "train.max_steps": None,
        "train.epochs": 1,
    }
    sessions = {}
    for name, file in (("dense", "shakespeare_char_gpt.yaml"), ("moe", "shakespeare_char_moe.yaml")):
        config = load_config(ROOT / "configs" / file, overrides)
        sessions[name] = (prepare(config), config)
        model = sessions[name][0].model
        total = sum(p.numel() for p in model.parameters())
        print(f"{name}: {total:,} parameters")
    torch.set_num_threads(arguments.threads)
    tokens = 12 * 64 * arguments.steps
    rates: dict[str, list[float]] = {"dense": [], "moe": []}
    for round_index in range(arguments.rounds + 1):  # round 0 warms up
        for name, (session, config) in sessions.items():
            rate = tokens_per_second(session, config, round_index, tokens)
            if round_index:
                rates[name].append(rate)
        if round_index:
            dense, moe = rates["dense"][-1], rates["moe"][-1]
            print(f"round {round_index}: dense {dense:,.0f}  moe {moe:,.0f} tokens/s", flush=True)
    ratios = [m / d for m, d in zip(rates["moe"], rates["dense"], strict=True)]
    dense, moe = statistics.median(rates["dense"]), statistics.median(rates["moe"])
    print(
        f"median tokens/s: dense {dense:,.0f}, moe {moe:,.0f}; moe/dense {statistics.median(ratios):.3f} "
        f"({arguments.threads} thread(s), {arguments.steps} steps per round)"
    )


if __name__ == "__main__":
    main()
