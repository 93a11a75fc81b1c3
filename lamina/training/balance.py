"""Group-balanced training (train.balance_groups): every group of a data.groups attribute counts alike, each
training sample weighted by 1 / (its group's count in train), normalized to mean 1. `sampling` draws each epoch's
order with those weights (with replacement, as many samples as train holds) from (seed, epoch) alone, so a
resumed run replays it; `loss_weights` keeps the usual order and weights each sample's loss."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from lamina.core.errors import ConfigError, Problem
from lamina.data.bundle import DataBundle, batch_bounds

__all__ = ["GroupBalance", "inverse_frequency_weights", "balanced_order", "group_balance"]


def inverse_frequency_weights(names: list[str]) -> Tensor:
    """(N,) float64 weight of each sample: 1 / its group's count, scaled so the weights average 1.

    Example:
        >>> inverse_frequency_weights(["a", "a", "a", "b"]).tolist()
        [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    counts = Counter(names)
    weights = torch.tensor([1.0 / counts[name] for name in names], dtype=torch.float64)
    return weights * (len(names) / weights.sum())


def balanced_order(weights: Tensor, seed: int, epoch: int) -> Tensor:
    """(N,) sample indices drawn with replacement, each with probability ∝ its weight: a function of
    (seed, epoch) only."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7_919 + 101)
    return torch.multinomial(weights, len(weights), replacement=True, generator=generator)


@dataclass
class GroupBalance:
    """The balancing a run trains with: the attribute, the method and each training sample's weight."""

    attribute: str
    method: str  # "sampling" | "loss_weights"
    weights: Tensor  # (N,) float64, mean 1
    batch_size: int

    def order(self, shuffled: Tensor, seed: int, epoch: int) -> Tensor:
        """The order of epoch `epoch`: drawn with the weights (sampling), or `shuffled` as it is (loss_weights)."""
        return balanced_order(self.weights, seed, epoch) if self.method == "sampling" else shuffled

    def batch_weights(self, order: Tensor, batch: int, device: torch.device) -> Tensor | None:
        """(B,) float32 loss weights (loss_weights) of batch `batch` of an epoch in `order`, on `device`; None with
        sampling, whose order already balances."""
        if self.method != "loss_weights":
            return None
        start, end = batch_bounds(len(order), self.batch_size)[batch]
        return self.weights[order[start:end].cpu()].to(device=device, dtype=torch.float32)


def group_balance(attribute: str | None, method: str, data: DataBundle, batch_size: int) -> GroupBalance | None:
    """The balancing train.balance_groups asks for; ConfigError when data.groups lacks the attribute."""
    if attribute is None:
        return None
    problems = balance_problems(attribute, method, data, "cross_entropy")
    if problems:
        raise ConfigError(problems)
    return GroupBalance(attribute, method, inverse_frequency_weights(data.groups[attribute]["train"]), batch_size)


PER_SAMPLE_LOSSES = ("cross_entropy", "binary_cross_entropy")  # losses with an Objective.per_sample


def balance_problems(attribute: str | None, method: str, data: DataBundle, loss: str) -> list[Problem]:
    """What keeps train.balance_groups from working on this data and this loss (by name)."""
    if attribute is None:
        return []
    if attribute not in data.groups:
        known = ", ".join(data.groups) or "none: the config has no data.groups"
        return [
            Problem(
                "train.balance_groups",
                f"is {attribute!r}, which is not an attribute of data.groups (attributes: {known})",
                f"add {{name: {attribute}, ...}} to data.groups, or name one of its attributes",
            )
        ]
    if method == "loss_weights" and loss not in PER_SAMPLE_LOSSES:
        return [
            Problem(
                "train.balance_method",
                f"loss_weights weights each sample's classification loss, but the loss is {loss!r}",
                f"use balance_method: sampling, or the loss {' or '.join(PER_SAMPLE_LOSSES)}",
            )
        ]
    return []
