"""What the group audit shows in the terminal, from its summary.json record (no PyTorch: the CLI imports it):
the line per attribute at the end of `lamina train` and `lamina evaluate`, and the table of one split's groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["interval_text", "worst_group_line", "group_table"]


def interval_text(figure: Any) -> str:
    """'0.820 [0.710, 0.910]' for a figure with its interval, '0.333' for a plain number, 'n/a' for none."""
    if not isinstance(figure, dict):
        return "n/a" if figure is None else f"{figure:.3f}"
    value, low, high = figure.get("value"), figure.get("low"), figure.get("high")
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


def worst_group_line(attribute: str, record: Mapping[str, Any], split: str) -> str:
    """'groups by speaker (test, 6 groups): worst theo, accuracy 0.820 [0.710, 0.910]; accuracy gap 0.150
    [0.030, 0.270]' — one line per attribute at the end of `lamina train` and `lamina evaluate`."""
    entry = record["splits"][split]
    worst = entry["worst_group"]
    line = (
        f"groups by {attribute} ({split}, {len(entry['groups'])} groups): worst {worst['name']}, accuracy "
        f"{interval_text(worst['accuracy'])}; accuracy gap {interval_text(entry['gaps']['accuracy'])}"
    )
    if record.get("unseen"):
        line += f"; not in train: {', '.join(record['unseen'])}"
    return line


def group_table(entry: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one split's groups for the terminal: count and each figure with its interval; with more
    than two classes, the lowest per-class recall of each group stands for its recall_<class> figures."""
    first = next(iter(entry["groups"].values()))
    figures = [key for key in first if key not in ("count", "note") and not key.startswith("recall_")]
    recalls = [key for key in first if key.startswith("recall_")]
    rows = []
    for name, record in entry["groups"].items():
        row = [name, str(record["count"]), *(interval_text(record.get(key)) for key in figures)]
        if recalls:
            known = [(_value(record[key]), key) for key in recalls if _value(record[key]) is not None]
            value, key = min(known) if known else (None, "")
            row.append(f"{interval_text(record[key])} ({key.removeprefix('recall_')})" if known else "n/a")
        rows.append(row)
    return ["group", "count", *figures, *(["lowest recall (class)"] if recalls else [])], rows


def _value(figure: Any) -> float | None:
    return figure.get("value") if isinstance(figure, dict) else figure
