"""Decisions from scores, as pure functions: the confusion matrix, a two-class threshold chosen on validation
data (screening: sensitivity matters) and applied unchanged wherever the run decides, the ROC and
precision-recall curves it sits on, and greedy CTC decoding of per-step class scores.

In the threshold and curve functions `scores` are the positive class's probabilities and `positives` whether each
sample is of the positive class.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
    [[1, 1], [0, 1]]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "confusion_matrix",
    "rates_at",
    "youden_threshold",
    "choose_threshold",
    "positive_index",
    "at_threshold",
    "decide",
    "roc_curve",
    "precision_recall_curve",
    "average_precision",
    "greedy_ctc_decode",
]

RULE = "max Youden's J"


def confusion_matrix(predicted: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C, C) counts: row = true class, column = predicted class."""
    index = targets.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def rates_at(scores: Tensor, positives: Tensor, threshold: float) -> dict[str, float]:
    """Sensitivity (true positive rate), specificity (true negative rate), precision (positive predictive value;
    nan when nothing is called positive) and accuracy when a sample is called positive at score ≥ threshold."""
    called = scores >= threshold
    positives = positives.bool()
    true_positive = float((called & positives).sum())
    true_negative = float((~called & ~positives).sum())
    count_positive, count_negative = float(positives.sum()), float((~positives).sum())
    return {
        "sensitivity": true_positive / count_positive if count_positive else float("nan"),
        "specificity": true_negative / count_negative if count_negative else float("nan"),
        "precision": true_positive / float(called.sum()) if bool(called.any()) else float("nan"),
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


def choose_threshold(scores: Tensor, targets: Tensor, positive: int, class_names: list[str] | None) -> dict:
    """The decision record of a two-class run, chosen on one split's (scores (N, 2), targets (N,)): the positive
    class (name and index) and the threshold on its probability that maximizes Youden's J there. The value is kept
    at full precision, so every later use decides exactly as the run's own report did."""
    threshold = youden_threshold(scores[:, positive], targets == positive)
    name = class_names[positive] if class_names else str(positive)
    return {"positive_class": name, "positive_index": positive, "value": threshold, "chosen_on": "val", "rule": RULE}


def positive_index(record: dict, class_names: list[str] | None) -> int:
    """The positive class of a threshold record: its index, or (records written before the index was stored) the
    index of its class name; ValueError when neither fits a two-class run."""
    index = record.get("positive_index")
    if index is None and class_names and record.get("positive_class") in class_names:
        index = class_names.index(record["positive_class"])
    if index is None and str(record.get("positive_class")) in ("0", "1"):
        index = int(record["positive_class"])
    if type(index) is not int or index not in (0, 1):
        raise ValueError(f"positive class {record.get('positive_class')!r} is not one of the two classes")
    return index


def at_threshold(record: dict, scores: Tensor, targets: Tensor, class_names: list[str] | None) -> dict:
    """What deciding by `record` gives on one split: {sensitivity, specificity, precision, accuracy}_at_threshold and
    the confusion matrix of those decisions (rows: true class, columns: decided class)."""
    positive = positive_index(record, class_names)
    rates = rates_at(scores[:, positive], targets == positive, record["value"])
    decided = decide(record, scores, class_names)
    added = {f"{name}_at_threshold": value for name, value in rates.items()}
    added["confusion_matrix_at_threshold"] = confusion_matrix(decided, targets, 2).tolist()
    return added


def decide(record: dict, scores: Tensor, class_names: list[str] | None) -> Tensor:
    """Class indices (N,) decided from two-class `scores` (N, 2): the positive class where its probability is at
    least the threshold, the other class below it."""
    positive = positive_index(record, class_names)
    called = scores[:, positive] >= record["value"]
    return torch.where(called, positive, 1 - positive)


def roc_curve(scores: Tensor, positives: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(false positive rates, true positive rates, thresholds) of calling score ≥ threshold positive, for every
    distinct score from the highest down, after a first point (0, 0) at threshold +inf; scikit-learn's roc_curve
    with drop_intermediate=False. Rates are nan when a class is absent."""
    true_positives, false_positives, thresholds = _cumulative_counts(scores, positives)
    start = torch.zeros(1, dtype=torch.float64)
    true_positives, false_positives = torch.cat([start, true_positives]), torch.cat([start, false_positives])
    thresholds = torch.cat([torch.tensor([float("inf")], dtype=torch.float64), thresholds])
    return false_positives / false_positives[-1], true_positives / true_positives[-1], thresholds


def precision_recall_curve(scores: Tensor, positives: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(precision, recall, thresholds) of calling score ≥ threshold positive, for every distinct score from the
    highest down (recall rising), after a first point of precision 1 and recall 0 at threshold +inf."""
    true_positives, false_positives, thresholds = _cumulative_counts(scores, positives)
    precision = torch.cat([torch.ones(1, dtype=torch.float64), true_positives / (true_positives + false_positives)])
    recall = torch.cat([torch.zeros(1, dtype=torch.float64), true_positives / true_positives[-1]])
    return precision, recall, torch.cat([torch.tensor([float("inf")], dtype=torch.float64), thresholds])


def average_precision(scores: Tensor, positives: Tensor) -> float:
    """Σ (recallₙ − recallₙ₋₁) · precisionₙ over the distinct thresholds (scikit-learn's average_precision_score,
    without interpolation); nan without positive samples."""
    if not bool(positives.bool().any()):
        return float("nan")
    precision, recall, _ = precision_recall_curve(scores, positives)
    return float(((recall[1:] - recall[:-1]) * precision[1:]).sum())


def _cumulative_counts(scores: Tensor, positives: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """True and false positives when calling score ≥ t positive, for each distinct score t, highest first."""
    scores, positives = scores.double().flatten(), positives.bool().flatten()
    order = torch.argsort(scores, descending=True, stable=True)
    scores, positives = scores[order], positives[order]
    last = torch.ones_like(positives)  # the last sample of each run of equal scores
    last[:-1] = scores[1:] != scores[:-1]
    true_positives = torch.cumsum(positives, 0, dtype=torch.float64)
    false_positives = torch.cumsum(~positives, 0, dtype=torch.float64)
    return true_positives[last], false_positives[last], scores[last]


def greedy_ctc_decode(scores: Tensor, blank: int) -> list[list[int]]:
    """Best path per sample: the most likely class at each step, repeats merged, blanks removed."""
    best = scores.argmax(dim=-1)  # (N, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != blank
    return [row[mask].tolist() for row, mask in zip(best, keep, strict=True)]
