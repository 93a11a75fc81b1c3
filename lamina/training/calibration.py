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

import torch
from torch import Tensor

__all__ = [
    "reliability_bins",
    "expected_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "negative_log_likelihood",
    "with_temperature",
]


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
    gap = (torch.tensor(table["accuracy"]) - torch.tensor(table["confidence"])).abs().double()
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
