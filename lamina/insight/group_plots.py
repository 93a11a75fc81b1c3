"""The chart of the group audit: each group's accuracy with its 95 % bootstrap interval, one PNG per attribute
(plots/groups-<attribute>.png), drawn as a `Figure` (lamina/artifacts/plots.py) from the summary's record."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lamina.artifacts.plots import Figure, line_panel, save_figure

__all__ = ["group_figure", "write_group_plots"]


def group_figure(attribute: str, entry: Mapping[str, Any], split: str) -> Figure:
    """Accuracy per group with its 95 % interval as a whisker (a circle at the value), groups along x in the
    order of the legend; groups too small for an interval show only their circle."""
    series, marks = {}, {}
    for index, (name, record) in enumerate(entry["groups"].items(), start=1):
        figure = record["accuracy"]
        value = figure["value"] if isinstance(figure, dict) else figure
        low = figure.get("low") if isinstance(figure, dict) else None
        high = figure.get("high") if isinstance(figure, dict) else None
        label = f"{index} {name} (n={record['count']})"
        ends = [low, high] if low is not None and high is not None else [value, value]
        series[label] = ([index, index], [float("nan") if v is None else v for v in ends])
        marks[label] = [] if value is None else [(index, value)]
    count = len(entry["groups"])
    lowest = min((y for _, ys in series.values() for y in ys if y == y), default=0.0)
    floor = max(0.0, int((lowest - 0.05) * 10) / 10)  # a tenth below the lowest whisker, so small gaps show
    panel = line_panel(
        f"{split} accuracy by {attribute}",
        series,
        x_label="group",
        bounds=((0.5, count + 0.5), (floor, 1.0)),
        marks=marks,
        notes=["accuracy; line: 95 % bootstrap interval"],
    )
    for item in panel.series:
        item.dots = False
    return Figure([panel])


def write_group_plots(plots: Path, audit: Mapping[str, Any]) -> dict[str, str]:
    """plots/groups-<attribute>.png for each audited attribute (its test split, else val); {attribute: path
    relative to the run folder}."""
    written = {}
    for attribute, record in audit.items():
        split = "test" if "test" in record["splits"] else next(iter(record["splits"]))
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in attribute)
        path = plots / f"groups-{safe}.png"
        save_figure(group_figure(attribute, record["splits"][split], split), path)
        written[attribute] = f"{plots.name}/{path.name}"
    return written
