"""Decisions from scores, as pure functions: the confusion matrix, a two-class threshold chosen on validation
data (screening: sensitivity matters), and greedy CTC decoding of per-step class scores.

In the threshold functions `scores` are the positive class's probabilities and `positives` whether each sample is
of the positive class.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
    [[1, 1], [0, 1]]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["confusion_matrix", "rates_at", "youden_threshold", "threshold_report", "greedy_ctc_decode"]


def confusion_matrix(predicted: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C, C) counts: row = true class, column = predicted class."""
    index = targets.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def rates_at(scores: Tensor, positives: Tensor, threshold: float) -> dict[str, float]:
    """Sensitivity (true positive rate), specificity (true negative rate) and accuracy when a sample is called
    positive at score ≥ threshold."""
    called = scores >= threshold
    positives = positives.bool()
    true_positive = float((called & positives).sum())
    true_negative = float((~called & ~positives).sum())
    count_positive, count_negative = float(positives.sum()), float((~positives).sum())
    return {
        "sensitivity": true_positive / count_positive if count_positive else float("nan"),
        "specificity": true_negative / count_negative if count_negative else float("nan"),
        "accuracy": (true_positive + true_negative) / max(1.0, float(len(scores))),
    }


def youden_threshold(scores: Tensor, positives: Tensor) -> float:
    """The threshold maximizing Youden's J = sensitivity + specificity − 1 (the middle one among ties),
    placed halfway between neighbouring scores so it does not sit on a sample."""
    values = torch.unique(scores.double())  # sorted
    candidates = torch.cat([values[:1] - 1e-6, (values[1:] + values[:-1]) / 2, values[-1:] + 1e-6])
    j = torch.tensor(
        [sum(rates_at(scores, positives, float(t))[k] for k in ("sensitivity", "specificity")) - 1 for t in candidates]
    )
    best = torch.nonzero(j >= j.max() - 1e-12).flatten()
    return float(candidates[best[len(best) // 2]])


def threshold_report(
    val: tuple[Tensor, Tensor], others: dict[str, tuple[Tensor, Tensor]], positive: int, class_names: list[str] | None
) -> tuple[dict, dict[str, dict]]:
    """(threshold record, rates per split) for two-class (scores (N, 2), targets (N,)) pairs; the threshold is
    chosen on `val` and applied unchanged to every split in `others`."""

    def parts(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return scores[:, positive], targets == positive

    threshold = youden_threshold(*parts(*val))
    name = class_names[positive] if class_names else str(positive)
    record = {"positive_class": name, "value": round(threshold, 6), "chosen_on": "val", "rule": "max Youden's J"}
    return record, {split: rates_at(*parts(*pair), threshold) for split, pair in others.items()}


def greedy_ctc_decode(scores: Tensor, blank: int) -> list[list[int]]:
    """Best path per sample: the most likely class at each step, repeats merged, blanks removed."""
    best = scores.argmax(dim=-1)  # (N, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != blank
    return [row[mask].tolist() for row, mask in zip(best, keep, strict=True)]
