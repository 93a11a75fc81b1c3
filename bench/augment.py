"""Augmentation cost per batch against the training step it feeds, and hand-written ops against kornia's.

    .venv/bin/python bench/augment.py [--threads 1] [--rounds 5]

Times each registered augmentation on a CIFAR-sized batch (512 × 3 × 32 × 32, normalized) and an MNIST-sized
one (128 × 1 × 28 × 28), then one training step of the models they feed (configs/cifar10_resnet9.yaml,
configs/mnist_resnet.yaml), and kornia.augmentation's RandomCrop / RandomHorizontalFlip beside ours.
Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
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

from lamina.data.augment import build_augmentation  # noqa: E402
from lamina.data.augment_options import augmentations  # noqa: E402
from lamina.data.bundle import DataBundle, Split  # noqa: E402
from lamina.data.spec import DataSpec  # noqa: E402
from lamina.models.registry import build_model  # noqa: E402
from lamina.training.optimizers import build_optimizer  # noqa: E402
from lamina.training.options import optimizers  # noqa: E402


def median_ms(function, rounds: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bundle_for(shape: tuple[int, int, int]) -> DataBundle:
    spec = DataSpec("image", "classification", shape, num_classes=10)
    channels = shape[0]
    preprocessing = {"mean": [0.5] * channels, "std": [0.25] * channels}
    empty = Split(torch.zeros(0, *shape, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    return DataBundle(spec, {"train": empty}, preprocessing, lambda x: x)


def step_ms(model_config: dict, shape, batch: int, rounds: int) -> float:
    model = build_model(model_config, DataSpec("image", "classification", shape, num_classes=10))
    optimizer = build_optimizer(optimizers.get("sgd").options(), model)
    inputs, targets = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))

    def step():
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return median_ms(step, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    cases = [
        ("CIFAR-10 ResNet-9 ½", (3, 32, 32), 512, {"name": "resnet", "preset": "resnet9", "width": 0.5}),
        ("MNIST ResNet small", (1, 28, 28), 128, {"name": "resnet", "preset": "small"}),
    ]
    print(f"threads {arguments.threads}, median of {arguments.rounds} rounds, milliseconds per batch")
    for label, shape, batch, model in cases:
        bundle = bundle_for(shape)
        inputs, targets = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
        print(f"\n{label}: batch {batch} × {'×'.join(map(str, shape))}")
        step = step_ms(model, shape, batch, arguments.rounds)
        print(f"  {'training step (forward + backward + SGD)':44s} {step:9.2f}")
        for entry in augmentations.values():
            if "image" not in entry.metadata["inputs"] or entry.metadata["stage"] != "inputs":
                continue  # the image augmentations applied to each batch
            augment = build_augmentation([entry.options()], bundle, "data.augment")
            seeds = iter(range(10**6))
            cost = median_ms(
                lambda a=augment: a(inputs, targets, torch.Generator().manual_seed(next(seeds))), arguments.rounds
            )
            print(f"  {entry.name:44s} {cost:9.2f}   ({100 * cost / step:.2f} % of the step)")
        try:
            import kornia.augmentation as K
        except ImportError:
            print("  (kornia not installed: python -m pip install kornia)")
            continue
        crop = K.RandomCrop(
            shape[1:], padding=4 if shape[0] == 3 else 2, padding_mode="reflect" if shape[0] == 3 else "constant"
        )
        flip = K.RandomHorizontalFlip()
        print(f"  {'kornia RandomCrop (same padding)':44s} {median_ms(lambda: crop(inputs), arguments.rounds):9.2f}")
        print(f"  {'kornia RandomHorizontalFlip':44s} {median_ms(lambda: flip(inputs), arguments.rounds):9.2f}")


if __name__ == "__main__":
    main()
