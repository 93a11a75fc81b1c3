"""Fairness across groups as pure functions of one split's decisions: per-group figures, the gaps between groups
(fairlearn's definitions) and stratified bootstrap intervals for all of them, vectorized over resamples.

A split is described by each sample's decided class, true class, top-label confidence and the group it belongs to.
Per group: `count`, `accuracy` (of the decisions), `ece` (expected calibration error of the top label,
lamina/training/calibration.py), and per class c the one-vs-rest rates `recall` (true positive rate), `false
positive rate` and `selection rate` (the share decided as c). Two-class runs report the positive class's rates as
`true_positive_rate`, `false_positive_rate`, `selection_rate`.

Gaps, as fairlearn defines them for two classes: the demographic parity difference is max − min over groups of
the selection rate; the equalized odds difference is the larger of the true positive rates' and the false
positive rates' max − min. With more classes lamina takes the one-vs-rest problem of each class and reports the
worst class (the largest difference over classes): zero only when every class is decided alike for every group.
The accuracy gap is best − worst group accuracy.

Intervals: samples are drawn with replacement within each group (so every resample keeps the group sizes),
R times from a seeded generator, and each figure's 2.5 % and 97.5 % percentiles over the resamples are its 95 %
interval. A gap's interval is that of the difference between the two groups (and the class and rate) that give the
gap on the split itself, kept fixed over the resamples, so it can reach below zero: with no true difference the
interval covers zero about 95 % of the time, which the max − min of every resample (never negative, and biased
upwards by taking a maximum) would not. What it leaves out: that those two groups were picked as the extremes.

    >>> decided, targets = torch.tensor([1, 0, 1, 1, 0, 0]), torch.tensor([1, 0, 0, 1, 1, 0])
    >>> codes = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> figures = group_figures(decided, targets, torch.ones(6), codes, 2, 2)
    >>> figures["accuracy"].tolist(), figures["selection"][..., 1].tolist()
    ([[0.6666666666666666, 0.6666666666666666]], [[0.6666666666666666, 0.3333333333333333]])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "group_codes",
    "confidence_bins",
    "resample_index",
    "group_figures",
    "widest_gap",
    "pair_difference",
    "percentile_interval",
    "FairnessSamples",
]

ECE_BINS = 15  # as lamina/training/calibration.py's default


def group_codes(names: list[str]) -> tuple[list[str], Tensor]:
    """The distinct group names, sorted, and each sample's index into them (N,)."""
    distinct = sorted(set(names))
    position = {name: index for index, name in enumerate(distinct)}
    return distinct, torch.tensor([position[name] for name in names], dtype=torch.long)


def confidence_bins(confidence: Tensor, bins: int = ECE_BINS) -> Tensor:
    """Each sample's confidence bin (N,), as calibration.reliability_bins bins it: (edge_b, edge_b+1], 0 in the
    first."""
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)
    return torch.bucketize(confidence.double().cpu(), edges[1:-1], right=False).clamp(0, bins - 1)


def resample_index(codes: Tensor, resamples: int, generator: torch.Generator) -> Tensor:
    """(R, N) sample indices: each row a resample drawn with replacement within each group, so that every resample
    keeps the group sizes. Columns are ordered by group (column j of every row holds a sample of the same group)."""
    grouped = bool((codes[1:] >= codes[:-1]).all())  # already in group order (FairnessSamples sorts its samples)
    order = torch.arange(len(codes)) if grouped else torch.argsort(codes, stable=True)
    sizes = torch.bincount(codes)
    sorted_codes = codes[order]  # group g occupies [start_g, start_g + n_g) of the order
    starts = (torch.cumsum(sizes, 0) - sizes)[sorted_codes]  # (N,) where each column's group begins
    spans = sizes[sorted_codes].double()  # (N,) its size
    uniform = torch.rand(resamples, len(codes), generator=generator, dtype=torch.float64)  # (R, N)
    positions = (uniform * spans).long() + starts  # uniform < 1, so each stays inside its group
    return positions if grouped else order[positions]


def group_figures(
    decided: Tensor,
    targets: Tensor,
    confidence: Tensor,
    codes: Tensor,
    groups: int,
    classes: int,
    index: Tensor | None = None,
    correct_top: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-group figures of the resamples `index` (R, N) (None: the split itself, R = 1):
    "count" (G,), "accuracy" and "ece" (R, G), and (R, G, C) one-vs-rest "recall", "false_positive_rate",
    "selection" per class; nan where a rate has no samples to divide by (a group without positives of a class).
    `correct_top`: whether the most likely class is right (N,), for the ECE (default: decided == targets)."""
    if index is None:
        index = torch.arange(len(codes)).unsqueeze(0)  # (1, N)
    resamples = index.shape[0]
    correct_top = (decided == targets) if correct_top is None else correct_top.bool()
    sizes = torch.bincount(codes, minlength=groups).double()  # (G,)
    offsets = torch.arange(resamples).unsqueeze(1)  # (R, 1)

    def sums(keys: Tensor, size: int, weights: Tensor | None = None) -> Tensor:  # per key and resample: (R, size)
        flat = (keys[index] + offsets * size).flatten()  # (R·N,)
        drawn = None if weights is None else weights[index].flatten()
        return torch.bincount(flat, drawn, minlength=resamples * size).double().reshape(resamples, size)

    # each key holds a sample's own group, so a drawn sample counts for its group: (group, true class, decided)
    table = sums((codes * classes + targets) * classes + decided, groups * classes * classes)
    table = table.reshape(resamples, groups, classes, classes)  # (R, G, true, decided)
    positives, chosen = table.sum(dim=3), table.sum(dim=2)  # (R, G, C): truly c; decided c
    hits = table.diagonal(dim1=2, dim2=3)  # (R, G, C): truly c and decided c
    # ECE = Σ_b |Σ_{i in b} (correct_i − confidence_i)| / n_g: one signed sum per (group, bin)
    signed = correct_top.double() - confidence.double().cpu()
    gaps = sums(codes * ECE_BINS + confidence_bins(confidence), groups * ECE_BINS, signed)
    ece = gaps.abs().reshape(resamples, groups, ECE_BINS).sum(dim=2) / sizes
    negatives = sizes.reshape(1, groups, 1) - positives
    return {
        "count": sizes,
        "accuracy": hits.sum(dim=2) / sizes,
        "ece": ece,
        "recall": hits / positives,  # 0/0 → nan: no positives of that class in the group
        "false_positive_rate": (chosen - hits) / negatives,
        "selection": chosen / sizes.reshape(1, groups, 1),
    }


def widest_gap(values: Tensor, eligible: Tensor) -> tuple[int, int, int] | None:
    """For figures of the split itself (G, K) — K components, e.g. a rate per class — the (highest group, lowest
    group, component) of the largest max − min over eligible groups; None when no component has two values."""
    masked = values.masked_fill(~eligible.unsqueeze(1) | values.isnan(), float("nan"))
    highest = torch.nan_to_num(masked, nan=float("-inf")).argmax(dim=0)  # (K,)
    lowest = torch.nan_to_num(masked, nan=float("inf")).argmin(dim=0)
    components = torch.arange(values.shape[1])
    differences = masked[highest, components] - masked[lowest, components]  # (K,), nan where nothing to compare
    if bool(differences.isnan().all()):
        return None
    component = int(torch.nan_to_num(differences, nan=float("-inf")).argmax())
    return int(highest[component]), int(lowest[component]), component


def pair_difference(values: Tensor, highest: int, lowest: int, component: int) -> Tensor:
    """(R,) values[:, highest, component] − values[:, lowest, component] of resampled figures (R, G, K): the gap
    between the same two groups, in the same component, as on the split itself."""
    return values[:, highest, component] - values[:, lowest, component]


def percentile_interval(values: Tensor, level: float = 0.95) -> tuple[Tensor, Tensor]:
    """(low, high) percentiles of the resampled `values` (R, ...) over dimension 0, ignoring nan."""
    tail = (1 - level) / 2
    quantiles = torch.tensor([tail, 1 - tail], dtype=torch.float64)
    low, high = torch.nanquantile(values.double(), quantiles, dim=0)
    return low, high


class FairnessSamples:
    """One split's decisions with groups, and its figures with bootstrap intervals: `observed` holds the figures
    of the split itself, `resampled` those of R stratified resamples (computed in chunks so memory stays bounded).

        >>> samples = FairnessSamples(torch.tensor([1, 0]), torch.tensor([1, 1]), torch.ones(2), ["a", "b"], 2)
        >>> samples.names, samples.observed["accuracy"].tolist()
        (['a', 'b'], [[1.0, 0.0]])
    """

    def __init__(
        self,
        decided: Tensor,
        targets: Tensor,
        confidence: Tensor,
        names: list[str],
        classes: int,
        correct_top: Tensor | None = None,
    ):
        self.names, codes = group_codes(names)
        order = torch.argsort(codes, stable=True)  # samples in group order, so resamples need no reordering
        self.codes = codes[order]
        self.decided, self.targets = decided.long().cpu()[order], targets.long().cpu()[order]
        self.confidence = confidence.double().cpu()[order]
        self.correct_top = None if correct_top is None else correct_top.cpu()[order]
        self.classes = classes
        self.observed = self._figures(None)

    def _figures(self, index: Tensor | None) -> dict[str, Tensor]:
        facts = (self.decided, self.targets, self.confidence, self.codes)
        return group_figures(*facts, len(self.names), self.classes, index, self.correct_top)

    def resampled(self, resamples: int, seed: int) -> dict[str, Tensor]:
        """The figures of `resamples` stratified resamples drawn from a generator seeded by `seed`: each (R, ...)."""
        generator = torch.Generator().manual_seed(seed)
        cells = len(self.names) * max(self.classes * self.classes, ECE_BINS)  # counted per resample
        chunk = max(1, 4_000_000 // max(len(self.codes), cells))  # tensors of at most ~4M entries at once
        parts: list[dict[str, Tensor]] = []
        for start in range(0, resamples, chunk):
            index = resample_index(self.codes, min(chunk, resamples - start), generator)
            parts.append(self._figures(index))
        return {key: torch.cat([part[key] for part in parts]) if key != "count" else parts[0][key] for key in parts[0]}
