"""A decision threshold for two-class problems, chosen on validation data (screening: sensitivity matters).

Pure functions of scores: `scores` are the positive class's probabilities, `positives` whether each sample is
of the positive class.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rates_at", "youden_threshold", "threshold_report"]


def rates_at(scores: Tensor, positives: Tensor, threshold: float) -> dict[str, float]:
    """Sensitivity (true positive rate), specificity (true negative rate) and accuracy when a sample is called
    positive at score ≥ threshold."""
    called = scores >= threshold
    positives = positives.bool()
    true_positive = float((called & positives).sum())
    true_negative = float((~called & ~positives).sum())
    count_positive, count_negative = float(positives.sum()), float((~positives).sum())
    return {"sensitivity": true_positive / count_positive if count_positive else float("nan"),
            "specificity": true_negative / count_negative if count_negative else float("nan"),
            "accuracy": (true_positive + true_negative) / max(1.0, float(len(scores)))}  # fmt: skip


def youden_threshold(scores: Tensor, positives: Tensor) -> float:
    """The threshold maximizing Youden's J = sensitivity + specificity − 1 (the middle one among ties),
    placed halfway between neighbouring scores so it does not sit on a sample."""
    values = torch.unique(scores.double())  # sorted
    candidates = torch.cat([values[:1] - 1e-6, (values[1:] + values[:-1]) / 2, values[-1:] + 1e-6])
    j = torch.tensor([sum(rates_at(scores, positives, float(t))[k] for k in ("sensitivity", "specificity")) - 1
                      for t in candidates])  # fmt: skip
    best = torch.nonzero(j >= j.max() - 1e-12).flatten()
    return float(candidates[best[len(best) // 2]])


def threshold_report(val, test, positive: int, class_names: list[str] | None) -> tuple[dict, dict, dict]:
    """(threshold record, val rates, test rates) for Predictions of two classes; threshold chosen on `val`."""

    def parts(predictions):
        return predictions.scores[:, positive], predictions.targets == positive

    threshold = youden_threshold(*parts(val))
    name = class_names[positive] if class_names else str(positive)
    record = {"positive_class": name, "value": round(threshold, 6), "chosen_on": "val", "rule": "max Youden's J"}
    return record, rates_at(*parts(val), threshold), rates_at(*parts(test), threshold)
