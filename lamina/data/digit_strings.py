"""Multi-digit strings built from real MNIST digits: a row of handwritten digits → the digit string.

Train and val strings come from disjoint parts of the MNIST training digits, test strings only from the
official MNIST test digits. Each string is `digits` images side by side, each jittered horizontally (digits
may touch or overlap), so a model must segment and read, not crop fixed cells. Targets are (N, digits) class
indices, padded with -1 when `min_digits` allows shorter strings.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from lamina.config.base import Options
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.images import ImageNormalizer, mnist
from lamina.data.registry import datasets
from lamina.data.spec import DataSpec

__all__ = ["compose_strings"]


class DigitStringsOptions(Options):
    """Rows of real MNIST digits (28 × 28·digits images) labelled with their digit strings."""

    path: str
    """Folder with the four MNIST IDX files."""
    digits: int = Field(4, ge=1, le=12)
    """Digits per string (the image is 28 × 28·digits pixels)."""
    min_digits: int | None = Field(None, ge=1)
    """Shortest string; default: every string has `digits` digits."""
    jitter: int = Field(3, ge=0, le=10)
    """Shift each digit left or right by up to this many pixels."""
    train_strings: int = Field(30000, ge=10)
    """Training strings, composed from the training digits."""
    val_strings: int = Field(2000, ge=10)
    """Validation strings, composed from held-out training digits."""
    test_strings: int = Field(10000, ge=10)
    """Test strings, composed from the official MNIST test digits only."""
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    """Fraction of the MNIST training digits kept for validation strings."""
    target: Literal["string", "first_digit"] = "string"
    """string: the whole digit string (transcription); first_digit: classify only the leftmost digit — a
    long-range dependency for a recurrent model reading the columns left to right (vanishing gradients)."""

    @model_validator(mode="after")
    def _lengths(self):
        if self.min_digits is not None and self.min_digits > self.digits:
            raise ValueError(f"min_digits {self.min_digits} is more than digits {self.digits}")
        return self


def compose_strings(images: Tensor, labels: Tensor, count: int, digits: int, min_digits: int, jitter: int,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:  # fmt: skip
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


@datasets.register("digit_strings", config=DigitStringsOptions)
def digit_strings(config: DigitStringsOptions, seed: int) -> DataBundle:
    """Strings of real MNIST digits in one image (image → sequence, e.g. CRNN + CTC)."""
    from lamina.data.images import MNISTOptions

    source = mnist(MNISTOptions(path=config.path, val_fraction=0.0, test_fraction=0.0), seed)
    train_digits, test_digits = source.splits["train"], source.splits["test"]
    parts = split_indices(train_digits.targets, len(train_digits), {"val": config.val_fraction}, seed)
    pools = {"train": train_digits.subset(parts["train"]), "val": train_digits.subset(parts["val"]),
             "test": test_digits}  # fmt: skip
    counts = {"train": config.train_strings, "val": config.val_strings, "test": config.test_strings}
    splits = {}
    for offset, (name, pool) in enumerate(pools.items()):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + offset)
        images, targets = compose_strings(pool.inputs, pool.targets, counts[name], config.digits,
                                          config.min_digits or config.digits, config.jitter, generator)  # fmt: skip
        splits[name] = Split(images, targets)
    if config.target == "first_digit":
        splits = {name: Split(split.inputs, split.targets[:, 0].clone()) for name, split in splits.items()}
    pixels = splits["train"].inputs[:2000].float().div_(255)
    mean, std = [float(pixels.mean())], [float(pixels.std())]
    shape = tuple(splits["train"].inputs.shape[1:])
    if config.target == "first_digit":
        spec = DataSpec(kind="image", task="classification", input_shape=shape, num_classes=10,
                        class_names=[str(d) for d in range(10)])  # fmt: skip
    else:
        spec = DataSpec(kind="image", task="transcription", input_shape=shape, num_classes=10, output_size=11,
                        class_names=[str(d) for d in range(10)], extra={"max_length": config.digits})  # fmt: skip
    preprocessing = {"type": "image", "channels": 1, "height": shape[1], "width": shape[2], "mean": mean, "std": std,
                     "source": {"dataset": "digit_strings", "invert": False}}  # fmt: skip
    notes = [f"{config.digits}-digit strings from MNIST: train and val from disjoint training digits, test from "
             "the official test digits only"]  # fmt: skip
    return DataBundle(spec, splits, preprocessing, ImageNormalizer(mean, std), notes)
