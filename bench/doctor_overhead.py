"""What the training doctor's instruments cost: training steps of the real Loop with the layer statistics
(train.log_layer_statistics: dead ReLUs, saturated sigmoid/tanh outputs, update-to-weight ratios) on and off, at
each config's own logging interval, in one process, alternating in short runs (each with the share of logging
steps of a whole run), so machine noise hits both alike. Both sides keep the other default records (the metrics
log and the gradient norms). Reports the median ratio of the CPU time of the training thread (one PyTorch thread),
which a busy machine disturbs far less than the wall time (also shown).

    .venv/bin/python bench/doctor_overhead.py [--rounds 15] [--threads 1]

MNIST CNN (configs/mnist_cnn.yaml, logging every 10 steps) and the baby GPT (configs/shakespeare_char_gpt.yaml,
every 50); a data set that is absent is skipped, and the script says so.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lamina.artifacts.folder import RunFolder  # noqa: E402
from lamina.artifacts.recording import GradientNorms, LayerStatistics, MetricsLog  # noqa: E402
from lamina.config.loading import load_config  # noqa: E402
from lamina.pipeline.prepare import prepare  # noqa: E402
from lamina.training.callbacks import emit  # noqa: E402
from lamina.training.loop import Loop  # noqa: E402
from lamina.training.optimizers import build_optimizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
MODELS = {
    "MNIST CNN": (
        "configs/mnist_cnn.yaml",
        SHARED / "mnist",
        {"data.path": str(SHARED / "mnist"), "data.limit": 14000},
    ),
    "baby GPT": ("configs/shakespeare_char_gpt.yaml", SHARED / "tinyshakespeare", {}),
}
VARIANTS = ("off", "on")


def timed_steps(session, variant: str, steps: int, seed: int, folder: RunFolder) -> tuple[float, float]:
    """CPU seconds of this thread and wall seconds for `steps` training steps of a fresh copy of the model, with the
    layer statistics on or off. With one PyTorch thread the step runs in this thread, so its CPU time is the
    step's cost, much less disturbed by other processes on a busy machine than the wall time."""
    model = copy.deepcopy(session.model)
    settings = session.config.train.model_copy(update={"max_steps": steps})
    log = MetricsLog(folder)
    callbacks = [log, GradientNorms(log), *([LayerStatistics(log)] if variant == "on" else [])]
    loop = Loop(
        model,
        session.data,
        session.objective,
        build_optimizer(settings.optimizer, model),
        settings,
        metric_names=session.metric_names,
        monitor=session.monitor,
        seed=seed,
        callbacks=callbacks,
    )
    emit(callbacks, "fit_start", loop)
    started, cpu = time.perf_counter(), time.thread_time()
    loop._train_epoch(started)
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    emit(callbacks, "fit_end", loop, "completed")
    assert loop.state.step == steps
    return cpu, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    print(f"{cpu_model()}, {arguments.threads} thread(s), torch {torch.__version__}")
    table = []
    for name, (config_path, data_path, overrides) in MODELS.items():
        if not data_path.exists():
            print(f"{name}: skipped, {data_path} not found")
            continue
        config = load_config(ROOT / config_path, {**overrides, "runtime.threads": arguments.threads})
        session = prepare(config)
        torch.set_num_threads(arguments.threads)
        every = session.config.train.log_every_steps
        steps = every * max(1, round(20 / every))  # whole logging intervals, about 20 steps: CNN 20, GPT 50
        times: dict[str, list[tuple[float, float]]] = {variant: [] for variant in VARIANTS}
        with tempfile.TemporaryDirectory() as directory:
            folder = RunFolder(directory)
            for round_index in range(arguments.rounds + 1):  # round 0 warms up and is not counted
                order = VARIANTS if round_index % 2 else tuple(reversed(VARIANTS))
                measured = {variant: timed_steps(session, variant, steps, round_index, folder) for variant in order}
                if round_index:
                    for variant, seconds in measured.items():
                        times[variant].append(seconds)
                    shown = "  ".join(f"{v} {cpu:.3f}s CPU, {wall:.3f}s wall" for v, (cpu, wall) in measured.items())
                    print(f"{name} round {round_index}: {shown}", flush=True)
        cpu = [on[0] / off[0] for off, on in zip(times["off"], times["on"], strict=True)]
        wall = [on[1] / off[1] for off, on in zip(times["off"], times["on"], strict=True)]
        step_ms = 1000 * statistics.median(seconds for seconds, _ in times["off"]) / steps
        table.append((name, every, steps, step_ms, cpu, wall))
    print(
        "\n| model | logged every | steps per timed run | step, off (CPU ms) | on / off, CPU time: median (IQR) | wall |"
    )
    print("|---|---|---|---|---|---|")
    for name, every, steps, step_ms, cpu, wall in table:
        low, _, high = statistics.quantiles(cpu, n=4)
        print(
            f"| {name} | {every} steps | {steps} | {step_ms:.1f} | {statistics.median(cpu):.4f} "
            f"({100 * (statistics.median(cpu) - 1):+.2f} %; {low:.3f}–{high:.3f}) | {statistics.median(wall):.4f} |"
        )


if __name__ == "__main__":
    main()
