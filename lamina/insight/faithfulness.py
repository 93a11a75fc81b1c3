"""Whether an explanation says something about the model, measured rather than assumed: pure functions.

- **Randomization sanity check** (Adebayo et al. 2018, "Sanity checks for saliency maps"): the Spearman rank
  correlation, per input over its units, between the attribution of the trained model and that of the same
  architecture with re-initialized weights. A method that explains the model gives low correlations; one that
  mostly shows the input (edges, bright pixels) gives high ones. As in the paper, the ranks are of *absolute*
  values, so a map and its sign-flipped copy count as alike. The driver ranks only the units where the input
  differs from the baseline: where it equals it (the black background of a digit), integrated gradients and
  occlusion give exactly 0 whatever the weights, and those ties would count as agreement between any two models.
- **Deletion curve** (Petsiuk et al. 2018, RISE): the model's confidence in the explained class as the k % most
  attributed units are replaced by the baseline, k over a fixed grid from 0 to 100 %; its area (trapezoid, x
  normalized to [0, 1]) is low when the attribution found what the model relies on. The same curve for a seeded
  random order of the units is the reference: a faithful attribution has a lower area than random's.

Example:
    >>> import torch
    >>> a = torch.tensor([[0.1, 0.5, 0.9, 0.3]])
    >>> rank_correlation(a, a * 2).tolist(), rank_correlation(a, -a).tolist()
    ([1.0], [1.0])
    >>> curve_area(torch.tensor([[1.0, 0.0, 0.0]])).tolist()
    [0.25]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "average_ranks",
    "rank_correlation",
    "deletion_order",
    "random_order",
    "deletion_curve",
    "curve_area",
    "fraction_below",
    "DELETION_STEPS",
]

DELETION_STEPS = 10  # the deletion curve's grid: 0 %, 10 %, …, 100 % of the units removed


def average_ranks(values: Tensor) -> Tensor:
    """Ranks (0-based) of each row's values, ties given the mean of the ranks they share (as Spearman's rho
    needs: the many exact zeros of a ReLU'd Grad-CAM map must not be ranked by their position).

    Example:
        >>> average_ranks(torch.tensor([[3.0, 1.0, 1.0, 2.0]])).tolist()
        [[3.0, 0.5, 0.5, 2.0]]
    """
    rows = values.reshape(len(values), -1).double()  # (N, U)
    ranks = torch.empty_like(rows)
    for index, row in enumerate(rows):
        order = row.argsort(stable=True)
        _, inverse, counts = torch.unique_consecutive(row[order], return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()  # one past the last rank of each group of equal values
        mean_rank = ends - (counts.double() + 1) / 2
        ranks[index, order] = mean_rank[inverse]
    return ranks


def rank_correlation(first: Tensor, second: Tensor, mask: Tensor | None = None) -> Tensor:
    """(N,) Spearman rank correlation of |first| and |second|, per input over its units (any unit shape), or over
    the units where `mask` is True. A row with fewer than two such units, or constant in either map over them
    (no ranking at all), gives 0.

    Example:
        >>> rank_correlation(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])).tolist()
        [-1.0]
        >>> rank_correlation(torch.tensor([[0.0, 0.0, 1.0, 2.0]]), torch.tensor([[0.0, 0.0, 2.0, 1.0]]),
        ...                  torch.tensor([[False, False, True, True]])).tolist()
        [-1.0]
    """
    flat = [values.reshape(len(values), -1).abs() for values in (first, second)]  # (N, U)
    kept = torch.ones_like(flat[0], dtype=torch.bool) if mask is None else mask.reshape(len(first), -1)
    correlations = []
    for row in range(len(flat[0])):
        ranks = [average_ranks(values[row][kept[row]][None])[0] for values in flat]
        centred = [rank - rank.mean() for rank in ranks]
        spread = float(centred[0].norm() * centred[1].norm())
        correlations.append(float((centred[0] * centred[1]).sum()) / spread if spread > 0 else 0.0)
    return torch.tensor(correlations, dtype=torch.float32)


def deletion_order(attribution: Tensor, kept: Tensor | None = None) -> Tensor:
    """(N, U) flat unit indices of each input, the most attributed (highest signed score, towards the explained
    class) first; ties in the order of the units. Units where `kept` (N, *units) is False (those equal to the
    baseline already: removing them changes nothing) come last, so that both orders of the deletion curve spend
    their steps on the same units.

    Example:
        >>> deletion_order(torch.tensor([[0.5, 0.0, 2.0, -1.0]]), torch.tensor([[True, False, True, True]])).tolist()
        [[2, 0, 3, 1]]
    """
    flat = attribution.reshape(len(attribution), -1).float()  # (N, *units) → (N, U)
    if kept is not None:
        flat = flat.masked_fill(~kept.reshape(len(flat), -1).to(flat.device), float("-inf"))
    return flat.argsort(dim=1, descending=True, stable=True)


def random_order(count: int, units: int, seed: int, kept: Tensor | None = None) -> Tensor:
    """(count, units) a seeded random order of the units of each input: the deletion curve's reference; units
    where `kept` is False come last, as in `deletion_order`."""
    generator = torch.Generator().manual_seed(seed)
    keys = torch.rand(count, units, generator=generator)  # (N, U)
    if kept is not None:
        keys = keys.masked_fill(~kept.reshape(count, -1).cpu(), 2.0)
    return keys.argsort(dim=1, stable=True)


def deletion_curve(
    inputs: Tensor,
    order: Tensor,
    unit_shape: tuple[int, ...],
    remove: Callable[[Tensor, Tensor], Tensor],
    confidence: Callable[[Tensor], Tensor],
    steps: int = DELETION_STEPS,
    counts: Tensor | None = None,
) -> Tensor:
    """(N, steps + 1) the confidence of each input's explained class as the first k/steps of its units in
    `order` (N, U) are removed, k = 0 … steps; with `counts` (N,), the first k/steps of each input's first
    counts[i] units (those that differ from the baseline, which `deletion_order` and `random_order` put first).

    Args:
        inputs: the model inputs (N, ...). unit_shape: the shape of one input's units (U = its product).
        remove: (inputs, mask (N, *unit_shape) True where removed) → inputs with those units replaced by the
            baseline. confidence: inputs → (N,) the model's confidence in each input's explained class.

    Example:
        >>> x = torch.tensor([[4.0, 1.0]])
        >>> deletion_curve(x, torch.tensor([[0, 1]]), (2,), lambda x, m: x.masked_fill(m, 0.0),
        ...                lambda x: x.sum(dim=1), steps=2).tolist()
        [[5.0, 1.0, 0.0]]
    """
    count, units = order.shape
    positions = torch.empty_like(order)  # the place of each unit in the order: removed when below the cut
    positions.scatter_(1, order, torch.arange(units).expand(count, units).contiguous())
    totals = torch.full((count, 1), units) if counts is None else counts.reshape(count, 1).cpu()
    curve = []
    for step in range(steps + 1):
        removed = (totals.double() * step / steps).round().long()  # (N, 1)
        mask = (positions < removed.to(positions.device)).reshape(count, *unit_shape)
        curve.append(confidence(remove(inputs, mask.to(inputs.device))).detach().float().cpu())
    return torch.stack(curve, dim=1)


def curve_area(curve: Tensor) -> Tensor:
    """(N,) area under each curve (N, points) by the trapezoid rule, its points evenly spread over x in [0, 1]."""
    points = curve.shape[1]
    return torch.trapezoid(curve, dx=1.0 / (points - 1), dim=1)


def fraction_below(areas: Tensor, reference: Tensor) -> float:
    """The fraction of inputs whose area is strictly below the reference's (deletion: the attribution removed what
    mattered faster than a random order did).

    Example:
        >>> fraction_below(torch.tensor([0.1, 0.5, 0.2]), torch.tensor([0.3, 0.4, 0.3]))
        0.6666666666666666
    """
    return float((areas < reference).double().mean()) if len(areas) else float("nan")
