"""The reliability diagram of a classification run: per confidence bin, the accuracy against the mean confidence of
val and test (on the diagonal: calibrated), before and after temperature scaling when a temperature was fitted,
and beside them how many samples each bin holds (a histogram drawn as outlined bars).

`reliability_figure` returns the Figure (plain values, read by tests); the caller saves it with `save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lamina.artifacts.plots import Figure, Panel, line_panel

__all__ = ["reliability_figure", "DIAGONAL"]

DIAGONAL = "perfectly calibrated"
UNIT = ((0.0, 1.0), (-0.02, 1.02))


def _curve_panel(title: str, tables: Mapping[str, dict], errors: Mapping[str, float]) -> Panel:
    """Accuracy against mean confidence of the non-empty bins of each split, the diagonal for reference."""
    series = {}
    for split, table in tables.items():
        points = [(c, a) for c, a, n in zip(table["confidence"], table["accuracy"], table["count"], strict=True) if n]
        series[f"{split} (ECE {errors[split]:.3f})"] = ([p[0] for p in points], [p[1] for p in points])
    series[DIAGONAL] = ([0.0, 1.0], [0.0, 1.0])
    panel = line_panel(title, series, "mean confidence in the bin", False, UNIT)
    for line in panel.series:
        if line.label == DIAGONAL:
            line.color, line.dash, line.dots = "#999999", (2, 4), False
        else:
            line.dots = True  # one dot per bin: where the samples are
    panel.title = f"{title}: accuracy per bin"
    return panel


def _counts_panel(tables: Mapping[str, dict]) -> Panel:
    """The share of each split's samples in each bin, as outlined bars (a step line over the bin edges)."""
    series = {}
    for split, table in tables.items():
        total = sum(table["count"]) or 1
        xs, ys = [table["lower"][0]], [0.0]
        for lower, upper, count in zip(table["lower"], table["upper"], table["count"], strict=True):
            xs += [lower, upper]
            ys += [count / total, count / total]
        series[split] = (xs + [table["upper"][-1]], ys + [0.0])
    highest = max((y for xs, ys in series.values() for y in ys), default=1.0)
    bounds = ((0.0, 1.0), (0.0, max(0.05, math.ceil(highest * 20) / 20)))
    panel = line_panel("share of samples per bin", series, "confidence", False, bounds)
    for line in panel.series:
        line.dots = False
    return panel


def reliability_figure(
    before: Mapping[str, dict],
    before_errors: Mapping[str, float],
    after: Mapping[str, dict] | None = None,
    after_errors: Mapping[str, float] | None = None,
    temperature: float | None = None,
) -> Figure:
    """Panels side by side: the reliability curve of each split (`before`: {split: reliability_bins table}, with
    its ECE in the legend); with a fitted temperature, the same `after` it; and the share of samples per bin of
    the probabilities the run gives (after, when fitted)."""
    if after is None:
        return Figure([_curve_panel("reliability", before, before_errors), _counts_panel(before)])
    return Figure(
        [
            _curve_panel("before temperature scaling", before, before_errors),
            _curve_panel(f"after temperature {temperature:.3g}", after, after_errors or {}),
            _counts_panel(after),
        ]
    )
