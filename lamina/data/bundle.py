"""In-memory splits and seeded, resumable batch order.

Small data sets live as tensors; a batch is an index into them, never assembled sample by sample in Python.
The order of epoch `e` is a permutation drawn from `(seed, e)` alone, so a resumed run replays it exactly
from the batch where it stopped, with no sampler state to save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from lamina.data.spec import DataSpec

__all__ = ["Split", "DataBundle", "batch_bounds", "epoch_order", "iterate_batches", "split_indices"]


@dataclass
class Split:
    """One split: `inputs` (N, ...) in stored form (uint8 images, float32 rows), `targets` (N,) or (N, T)."""

    inputs: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.inputs.to(device), self.targets.to(device))

    def subset(self, index: Tensor) -> Split:
        return Split(self.inputs[index], self.targets[index])


@dataclass
class DataBundle:
    """Everything a run learns from: the spec, the splits, and how stored inputs become model inputs."""

    spec: DataSpec
    splits: dict[str, Split]
    preprocessing: dict  # JSON: how raw files/rows become stored inputs and then model inputs (for predict)
    transform: Callable[[Tensor], Tensor]  # stored batch → model input batch, on the batch's device
    notes: list[str] = field(default_factory=list)  # facts worth telling the user (rows dropped, ...)
    warnings: list[str] = field(default_factory=list)  # facts that may mislead the run's results (class balance)
    # training batches only, after `transform`: (inputs, targets, generator) → (inputs, targets)
    augment: Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]] | None = None
    # (seed, epoch) → that epoch's training split, as long as splits["train"]: fresh random windows of a text
    # each epoch (language models), or waveforms shifted and noised (audio). A function of (seed, epoch) only,
    # so a resumed run sees the same data. None: splits["train"] every epoch.
    epoch_split: Callable[[int, int], Split] | None = None
    # text classification: each split's texts as read (lowercased when the run lowercases), for explanations
    texts: dict[str, list[str]] = field(default_factory=dict)
    # data.groups: attribute (e.g. "speaker", "accent") → split → each sample's group name, in the split's order;
    # read from a column, a metadata file or the file names, for per-group metrics and group-balanced training
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def training_split(self, seed: int, epoch: int) -> Split:
        """The training split of `epoch`, on the device of splits["train"]."""
        train = self.splits["train"]
        if self.epoch_split is None:
            return train
        return self.epoch_split(seed, epoch).to(train.inputs.device)

    def to(self, device: torch.device | str) -> DataBundle:
        splits = {name: split.to(device) for name, split in self.splits.items()}
        return replace(self, splits=splits)


def batch_bounds(count: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch. A trailing batch of one sample joins the previous batch, because batch
    normalization cannot train on a single sample."""
    bounds = [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], count)]
    return bounds


def epoch_order(count: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of epoch `epoch`: a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def iterate_batches(
    split: Split, batch_size: int, order: Tensor | None = None, start_batch: int = 0
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (inputs, targets) batches of `split` in `order` (None: as stored), from batch `start_batch` on."""
    if order is not None:
        order = order.to(split.inputs.device)
    for start, end in batch_bounds(len(split), batch_size)[start_batch:]:
        if order is None:
            yield split.inputs[start:end], split.targets[start:end]
        else:
            index = order[start:end]
            yield split.inputs.index_select(0, index), split.targets.index_select(0, index)


def split_indices(
    targets: Tensor | None, count: int, fractions: dict[str, float], seed: int, stratify: bool = True
) -> dict[str, Tensor]:
    """Seeded split of `count` samples into named parts with the given fractions; the rest is 'train'.

    With `stratify` and class `targets`, each class is split in the same proportions.
    """
    generator = torch.Generator().manual_seed(seed)
    if stratify and targets is not None and targets.ndim == 1 and not targets.is_floating_point():
        groups = [torch.nonzero(targets == value).flatten() for value in torch.unique(targets)]
    else:
        groups = [torch.arange(count)]
    parts: dict[str, list[Tensor]] = {name: [] for name in [*fractions, "train"]}
    for group in groups:
        group = group[torch.randperm(len(group), generator=generator)]
        start = 0
        for name, fraction in fractions.items():
            size = int(round(fraction * len(group)))
            parts[name].append(group[start : start + size])
            start += size
        parts["train"].append(group[start:])
    # sorted, so a split's stored order does not depend on class grouping
    return {name: torch.sort(torch.cat(pieces)).values for name, pieces in parts.items()}
