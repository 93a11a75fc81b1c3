"""How far to trust a probability, as pure functions of a split's class probabilities (Guo et al., 2017).

`probabilities` are (N, C) rows summing to 1 and `targets` (N,) class indices. A sample's confidence is its
largest probability; binning by confidence into `bins` equal-width bins over [0, 1], the calibration error of a
bin is |accuracy − mean confidence| in it. Temperature scaling divides the logits by T: since log-probabilities
are the logits up to a per-row constant, it applies to probabilities directly.

    >>> probabilities = torch.tensor([[0.95, 0.05], [0.85, 0.15], [0.65, 0.35], [0.25, 0.75]])
    >>> targets = torch.tensor([0, 1, 0, 1])
    >>> round(expected_calibration_error(probabilities, targets, bins=10), 4)
    0.375
    >>> round(maximum_calibration_error(probabilities, targets, bins=10), 4)
    0.85
    >>> round(brier_score(probabilities, targets), 4)
    0.455
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "reliability_bins",
    "expected_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "negative_log_likelihood",
    "with_temperature",
    "fit_temperature",
    "calibration_figures",
    "temperature_scaled",
    "BINS",
]

BINS = 15  # confidence bins of every run's calibration figures (Guo et al., 2017)


def reliability_bins(probabilities: Tensor, targets: Tensor, bins: int = 15) -> dict[str, list]:
    """Per confidence bin: its `lower` and `upper` edges, sample `count`, mean `confidence` and `accuracy`
    (nan for an empty bin): the points of a reliability diagram."""
    confidence, predicted = probabilities.double().max(dim=1)
    correct = (predicted == targets.to(predicted.device)).double()
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)
    # bin b holds confidences in (edge_b, edge_b+1]; a confidence of exactly 0 joins the first bin
    index = (torch.bucketize(confidence.cpu(), edges[1:-1], right=False)).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    confidence_sum = torch.bincount(index, weights=confidence.cpu(), minlength=bins)
    correct_sum = torch.bincount(index, weights=correct.cpu(), minlength=bins)
    nan = torch.full_like(count, float("nan"))
    return {
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "count": [int(value) for value in count],
        "confidence": torch.where(count > 0, confidence_sum / count.clamp(min=1), nan).tolist(),
        "accuracy": torch.where(count > 0, correct_sum / count.clamp(min=1), nan).tolist(),
    }


def _gaps(probabilities: Tensor, targets: Tensor, bins: int) -> tuple[Tensor, Tensor]:
    table = reliability_bins(probabilities, targets, bins)
    count = torch.tensor(table["count"], dtype=torch.float64)
    accuracy, confidence = (torch.tensor(table[key], dtype=torch.float64) for key in ("accuracy", "confidence"))
    gap = (accuracy - confidence).abs()  # in float64: torch.tensor of Python floats alone would be float32
    return count, torch.nan_to_num(gap, nan=0.0)


def expected_calibration_error(probabilities: Tensor, targets: Tensor, bins: int = 15) -> float:
    """Σ_b (n_b / N) · |accuracy_b − confidence_b|: the average gap, weighted by how many samples each bin holds."""
    count, gap = _gaps(probabilities, targets, bins)
    return float((count * gap).sum() / count.sum().clamp(min=1))


def maximum_calibration_error(probabilities: Tensor, targets: Tensor, bins: int = 15) -> float:
    """The largest gap |accuracy_b − confidence_b| over the bins that hold samples."""
    count, gap = _gaps(probabilities, targets, bins)
    return float(gap[count > 0].max()) if bool((count > 0).any()) else 0.0


def brier_score(probabilities: Tensor, targets: Tensor) -> float:
    """Mean over samples of Σ_c (p_c − [c = target])²: 0 is perfect, (C − 1)/C for a uniform guess."""
    one_hot = torch.nn.functional.one_hot(targets.long(), probabilities.shape[1]).double()
    return float((probabilities.double() - one_hot.to(probabilities.device)).pow(2).sum(dim=1).mean())


def negative_log_likelihood(probabilities: Tensor, targets: Tensor) -> float:
    """Mean −log p(target), with probabilities floored at 1e-12 so a confident mistake is large, not infinite."""
    chosen = probabilities.double().gather(1, targets.long().view(-1, 1).to(probabilities.device))
    return float(-chosen.clamp(min=1e-12).log().mean())


def with_temperature(probabilities: Tensor, temperature: float) -> Tensor:
    """softmax(log p / T) — the probabilities a model gives once its logits are divided by `temperature`."""
    logits = probabilities.double().clamp(min=1e-30).log()  # (N, C): the logits up to a per-row constant
    return torch.softmax(logits / temperature, dim=1).to(probabilities.dtype)


def fit_temperature(probabilities: Tensor, targets: Tensor, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature T in [low, high] that minimizes the negative log-likelihood of `targets` under
    with_temperature(probabilities, T): a golden-section search on log T. The NLL of softmax(z / T) is convex in
    1 / T, so it has one minimum along log T, which the search brackets to ~1e-9 relative precision.

        >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> round(fit_temperature(torch.softmax(logits, 1), torch.tensor([0, 1, 1, 0])), 2)
        20.0
    """
    logits = probabilities.double().clamp(min=1e-30).log()  # (N, C)
    chosen = targets.long().view(-1, 1).to(logits.device)

    def loss(log_temperature: float) -> float:
        scaled = torch.log_softmax(logits / math.exp(log_temperature), dim=1)
        return float(-scaled.gather(1, chosen).mean())

    ratio = (math.sqrt(5) - 1) / 2
    a, b = math.log(low), math.log(high)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    loss_c, loss_d = loss(c), loss(d)
    while b - a > 1e-9:
        if loss_c <= loss_d:
            b, d, loss_d = d, c, loss_c
            c = b - ratio * (b - a)
            loss_c = loss(c)
        else:
            a, c, loss_c = c, d, loss_d
            d = a + ratio * (b - a)
            loss_d = loss(d)
    return math.exp((a + b) / 2)


def calibration_figures(probabilities: Tensor, targets: Tensor, bins: int = BINS) -> dict[str, float]:
    """{"ece", "mce", "brier", "nll"} of one split's probabilities."""
    return {
        "ece": expected_calibration_error(probabilities, targets, bins),
        "mce": maximum_calibration_error(probabilities, targets, bins),
        "brier": brier_score(probabilities, targets),
        "nll": negative_log_likelihood(probabilities, targets),
    }


def temperature_scaled(objective: Any, temperature: float) -> Any:
    """A copy of an Objective (lamina/training/losses.py) whose scores are its probabilities at `temperature`; the
    loss, computed on the raw outputs, is unchanged."""
    scores = objective.scores
    return replace(objective, scores=lambda outputs: with_temperature(scores(outputs), temperature))


# ---- as registered metrics (train.metrics: ece, mce, brier; lower is better) -------------------------------


def ece_metric(predictions: Any) -> float:
    """Expected calibration error over BINS confidence bins."""
    return expected_calibration_error(predictions.scores, predictions.targets, BINS)


def mce_metric(predictions: Any) -> float:
    """Maximum calibration error over BINS confidence bins."""
    return maximum_calibration_error(predictions.scores, predictions.targets, BINS)


def brier_metric(predictions: Any) -> float:
    """Brier score (summed over classes, averaged over samples)."""
    return brier_score(predictions.scores, predictions.targets)
