"""lamina's training loop against a hand-written PyTorch loop: same model, data, batch size, optimizer and
schedule, in one process, alternating, so machine noise hits both alike. Reports the median time ratio.

    .venv/bin/python bench/train_step.py [--data ../shared/datasets/mnist] [--rounds 7] [--threads 1]

Without MNIST present it falls back to the built-in digits (and says so).
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
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lamina.config.loading import load_config  # noqa: E402
from lamina.data.bundle import epoch_order  # noqa: E402
from lamina.pipeline.prepare import prepare  # noqa: E402
from lamina.training.loop import Loop  # noqa: E402
from lamina.training.optimizers import build_optimizer  # noqa: E402


def hand_written_epoch(model, optimizer, scheduler, inputs, targets, mean, std, batch_size, order, smoothing):
    """The loop a careful PyTorch user writes: slice, normalize, forward, loss, backward, step."""
    model.train()
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        x = (inputs[index].float() / 255 - mean) / std
        loss = F.cross_entropy(model(x), targets[index], label_smoothing=smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "mnist_cnn.yaml"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    parser.add_argument("--samples", type=int, default=12_800, help="training images per timed epoch")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()

    overrides = {"runtime.threads": arguments.threads, "train.epochs": 1, "train.log_every_steps": 10}
    if Path(arguments.data).is_dir():
        overrides.update({"data.path": arguments.data, "data.limit": arguments.samples, "data.val_fraction": 0.01})
        label = f"MNIST CNN ({arguments.config}), {arguments.samples} images per epoch"
    else:
        overrides.update({"data": {"name": "digits"}, "model.blocks": [32, 64, {"channels": 128, "pool": "none"}]})
        label = "digits CNN (MNIST not found)"
    config = load_config(arguments.config, overrides)
    session = prepare(config)
    torch.set_num_threads(arguments.threads)
    settings = session.config.train
    train = session.data.splits["train"]
    mean = torch.tensor(session.data.preprocessing["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(session.data.preprocessing["std"]).view(1, -1, 1, 1)
    steps = -(-len(train) // settings.batch_size)

    lamina_times, hand_times = [], []
    for round_index in range(arguments.rounds + 1):  # round 0 warms both up and is not counted
        # lamina: one training epoch of the real Loop (running metrics, schedule, logging checks, callbacks)
        model = copy.deepcopy(session.model)
        loop = Loop(
            model,
            session.data,
            session.objective,
            build_optimizer(settings.optimizer, model),
            settings,
            metric_names=session.metric_names,
            monitor=session.monitor,
            seed=round_index,
            callbacks=[],
        )
        started = time.perf_counter()
        loop._train_epoch(started)
        lamina_seconds = time.perf_counter() - started

        # hand-written: the same model copy, optimizer, one-cycle schedule and shuffled order
        model = copy.deepcopy(session.model)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.optimizer.learning_rate, weight_decay=settings.optimizer.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, settings.optimizer.learning_rate, total_steps=steps + 1
        )
        order = epoch_order(len(train), round_index, 0)
        started = time.perf_counter()
        hand_written_epoch(
            model,
            optimizer,
            scheduler,
            train.inputs,
            train.targets,
            mean,
            std,
            settings.batch_size,
            order,
            settings.loss.label_smoothing,
        )
        hand_seconds = time.perf_counter() - started
        if round_index:
            lamina_times.append(lamina_seconds)
            hand_times.append(hand_seconds)
            print(
                f"round {round_index}: lamina {lamina_seconds:.3f}s  hand-written {hand_seconds:.3f}s  "
                f"ratio {lamina_seconds / hand_seconds:.3f}",
                flush=True,
            )
    ratios = [a / b for a, b in zip(lamina_times, hand_times, strict=True)]
    print(f"\n{label}, batch {settings.batch_size}, {steps} steps per epoch, {arguments.threads} thread(s)")
    print(
        f"median epoch: lamina {statistics.median(lamina_times):.3f}s, hand-written "
        f"{statistics.median(hand_times):.3f}s"
    )
    print(
        f"median ratio lamina / hand-written: {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
