"""Metrics as pure functions of a whole split's predictions.

Every metric is computed once over all predictions of a split (never averaged over batches), so an epoch's
validation accuracy is exactly the accuracy over the validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lamina.tasks.decisions import confusion_matrix
from lamina.training.options import metrics

__all__ = ["Predictions", "compute_metrics", "roc_auc"]


@dataclass
class Predictions:
    """One split's outputs, ready for metrics.

    classification: `scores` (N, C) class probabilities, `targets` (N,) class indices.
    regression: `scores` (N, T) predictions in the targets' units, `targets` (N, T).
    """

    task: str
    scores: Tensor
    targets: Tensor
    positive: int = 1  # two classes: the index of the positive class (data.positive_class)

    def labels(self) -> Tensor:
        return self.scores.argmax(dim=1)

    def confusion(self) -> Tensor:
        return confusion_matrix(self.labels(), self.targets, self.scores.shape[1])


def compute_metrics(predictions: Predictions, names: list[str]) -> dict[str, float]:
    return {name: float(metrics.get(name).function(predictions)) for name in names}


# ---- pure math ----------------------------------------------------------------------------------------


def _precision_recall(confusion: Tensor) -> tuple[Tensor, Tensor]:
    confusion = confusion.double()
    true_positive = confusion.diag()
    predicted = confusion.sum(dim=0)
    actual = confusion.sum(dim=1)
    # A class never predicted (or absent) scores 0, as scikit-learn's zero_division=0.
    precision = torch.where(predicted > 0, true_positive / predicted.clamp(min=1), torch.zeros_like(predicted))
    recall = torch.where(actual > 0, true_positive / actual.clamp(min=1), torch.zeros_like(actual))
    return precision, recall


def roc_auc(scores: Tensor, positives: Tensor) -> float:
    """Area under the ROC curve for binary `positives` (bool) ranked by `scores`; ties get average ranks."""
    scores, positives = scores.double().flatten(), positives.bool().flatten()
    count_positive = int(positives.sum())
    count_negative = positives.numel() - count_positive
    if count_positive == 0 or count_negative == 0:
        return float("nan")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # average the ranks of tied scores (Mann–Whitney U)
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average_rank = ends - (counts.double() - 1) / 2
    ranks[order] = average_rank[inverse]
    rank_sum = ranks[positives].sum()
    u_statistic = rank_sum - count_positive * (count_positive + 1) / 2
    return float(u_statistic / (count_positive * count_negative))


# ---- classification -----------------------------------------------------------------------------------


def accuracy(predictions: Predictions) -> float:
    """Fraction of samples whose most likely class is the true class."""
    return float((predictions.labels() == predictions.targets).double().mean())


def macro_f1(predictions: Predictions) -> float:
    """F1 per class, averaged with equal weight per class."""
    precision, recall = _precision_recall(predictions.confusion())
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-300), 0.0)
    return float(f1.mean())


def precision(predictions: Predictions) -> float:
    """Precision per class, averaged with equal weight per class (macro)."""
    return float(_precision_recall(predictions.confusion())[0].mean())


def recall(predictions: Predictions) -> float:
    """Recall per class, averaged with equal weight per class (macro)."""
    return float(_precision_recall(predictions.confusion())[1].mean())


def f1_positive(predictions: Predictions) -> float:
    """F1 of the positive class alone (data.positive_class; default class 1, e.g. spam); macro_f1 averages over
    classes."""
    positive = predictions.positive if predictions.scores.shape[1] == 2 else 1
    precision_, recall_ = (values[positive] for values in _precision_recall(predictions.confusion()))
    return float(2 * precision_ * recall_ / (precision_ + recall_)) if precision_ + recall_ > 0 else 0.0


def roc_auc_metric(predictions: Predictions) -> float:
    """ROC-AUC; binary: of the positive class; more classes: one-vs-rest, macro-averaged."""
    scores, targets = predictions.scores, predictions.targets
    if scores.shape[1] == 2:
        return roc_auc(scores[:, predictions.positive], targets == predictions.positive)
    values = [roc_auc(scores[:, c], targets == c) for c in range(scores.shape[1])]
    present = [v for v in values if v == v]
    return sum(present) / len(present) if present else float("nan")


# ---- regression ---------------------------------------------------------------------------------------


def mean_squared_error(predictions: Predictions) -> float:
    """Mean squared error, in the targets' units squared."""
    return float((predictions.scores.double() - predictions.targets.double()).pow(2).mean())


def root_mean_squared_error(predictions: Predictions) -> float:
    """Square root of the mean squared error, in the targets' units."""
    return mean_squared_error(predictions) ** 0.5


def mean_absolute_error(predictions: Predictions) -> float:
    """Mean absolute error, in the targets' units."""
    return float((predictions.scores.double() - predictions.targets.double()).abs().mean())


def r2(predictions: Predictions) -> float:
    """Coefficient of determination per target, averaged over targets (1 is perfect, 0 predicts the mean)."""
    targets, scores = predictions.targets.double(), predictions.scores.double()
    residual = (targets - scores).pow(2).sum(dim=0)
    total = (targets - targets.mean(dim=0)).pow(2).sum(dim=0)
    return float((1 - residual / total.clamp(min=1e-300)).mean())
