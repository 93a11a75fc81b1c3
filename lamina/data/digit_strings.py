"""Multi-digit strings built from real MNIST digits: a row of handwritten digits → the digit string.

Train and val strings come from disjoint parts of the MNIST training digits, test strings only from the
official MNIST test digits. Each string is `digits` images side by side, each jittered horizontally (digits
may touch or overlap), so a model must segment and read, not crop fixed cells. Targets are (N, digits) class
indices, padded with -1 when `min_digits` allows shorter strings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.images import ImageNormalizer, mnist
from lamina.data.options import DigitStringsOptions, MNISTOptions
from lamina.data.spec import DataSpec

__all__ = ["compose_strings", "digit_strings"]


def compose_strings(
    images: Tensor, labels: Tensor, count: int, digits: int, min_digits: int, jitter: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """`count` strings from (N, 1, 28, 28) uint8 digits: images (count, 1, 28, 28·digits), targets (count, digits)
    padded with -1. Digits are drawn by successive random permutations, so each is used about equally often."""
    needed = count * digits
    draws = torch.cat([torch.randperm(len(images), generator=generator) for _ in range(needed // len(images) + 1)])
    chosen = draws[:needed].view(count, digits)
    lengths = torch.randint(min_digits, digits + 1, (count,), generator=generator)
    offsets = torch.randint(-jitter, jitter + 1, (count, digits), generator=generator)
    height, width = images.shape[2], images.shape[3]
    canvas = torch.zeros(count, 1, height, width * digits + 2 * jitter, dtype=torch.uint8)
    targets = torch.full((count, digits), -1, dtype=torch.long)
    for position in range(digits):
        present = position < lengths  # (count,)
        for row in torch.nonzero(present).flatten().tolist():
            start = jitter + position * width + int(offsets[row, position])
            region = canvas[row, :, :, start : start + width]
            torch.maximum(region, images[chosen[row, position]], out=region)  # overlapping strokes merge
        targets[present, position] = labels[chosen[present, position]]
    return canvas[:, :, :, jitter : jitter + width * digits], targets


def digit_strings(config: DigitStringsOptions, seed: int) -> DataBundle:
    """Strings of real MNIST digits in one image (image → sequence, e.g. CRNN + CTC)."""
    source = mnist(MNISTOptions(path=config.path, val_fraction=0.0, test_fraction=0.0), seed)
    train_digits, test_digits = source.splits["train"], source.splits["test"]
    parts = split_indices(train_digits.targets, len(train_digits), {"val": config.val_fraction}, seed)
    pools = {
        "train": train_digits.subset(parts["train"]),
        "val": train_digits.subset(parts["val"]),
        "test": test_digits,
    }
    counts = {"train": config.train_strings, "val": config.val_strings, "test": config.test_strings}
    splits = {}
    for offset, (name, pool) in enumerate(pools.items()):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + offset)
        images, targets = compose_strings(
            pool.inputs,
            pool.targets,
            counts[name],
            config.digits,
            config.min_digits or config.digits,
            config.jitter,
            generator,
        )
        splits[name] = Split(images, targets)
    if config.target == "first_digit":
        splits = {name: Split(split.inputs, split.targets[:, 0].clone()) for name, split in splits.items()}
    pixels = splits["train"].inputs[:2000].float().div_(255)
    mean, std = [float(pixels.mean())], [float(pixels.std())]
    shape = tuple(splits["train"].inputs.shape[1:])
    if config.target == "first_digit":
        spec = DataSpec(
            kind="image",
            task="classification",
            input_shape=shape,
            num_classes=10,
            class_names=[str(d) for d in range(10)],
        )
    else:
        spec = DataSpec(
            kind="image",
            task="transcription",
            input_shape=shape,
            num_classes=10,
            output_size=11,
            class_names=[str(d) for d in range(10)],
            extra={"max_length": config.digits},
        )
    preprocessing = {
        "type": "image",
        "channels": 1,
        "height": shape[1],
        "width": shape[2],
        "mean": mean,
        "std": std,
        "source": {"dataset": "digit_strings", "invert": False},
    }
    notes = [
        f"{config.digits}-digit strings from MNIST: train and val from disjoint training digits, test from "
        "the official test digits only"
    ]
    return DataBundle(spec, splits, preprocessing, ImageNormalizer(mean, std), notes)
