"""The report as plain values: sections of blocks (paragraphs, lists, tables, pictures, code), built once from a
run's records and written as HTML or Markdown by lamina/report/html.py and markdown.py. Every string here is plain
text; the writers escape it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Paragraph",
    "Items",
    "Table",
    "Picture",
    "Code",
    "Absent",
    "Block",
    "Section",
    "Document",
    "number",
    "interval",
    "NOT_RECORDED",
    "entry",
    "listed",
]

NOT_RECORDED = "not recorded for this run"


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Items:
    """A bulleted list."""

    entries: list[str]


@dataclass(frozen=True)
class Table:
    """Rows of cells; the first cell of each row is its label (shown as a header cell)."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Picture:
    """A PNG file of the run folder, embedded (HTML: a data URI) or copied beside the report (Markdown)."""

    path: Path
    caption: str


@dataclass(frozen=True)
class Code:
    """Verbatim text (the config); `folded`: shown closed until clicked, in HTML."""

    text: str
    title: str
    folded: bool = True


@dataclass(frozen=True)
class Absent:
    """What the run's records do not hold: '<what>: not recorded for this run' and, when useful, how to get it."""

    what: str
    how: str = ""

    def text(self) -> str:
        return f"{self.what}: {NOT_RECORDED}" + (f" ({self.how})" if self.how else "") + "."


Block = Paragraph | Items | Table | Picture | Code | Absent


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2  # 2: a section of the card, 3: a part of one

    @property
    def anchor(self) -> str:
        return "-".join("".join(c if c.isalnum() else " " for c in self.title.lower()).split())


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]


def entry(value: Any, *keys: str) -> dict:
    """The mapping at `keys` inside `value`; {} where a step is missing or not a mapping (a summary edited by hand
    or from another version reads as absent, never as an error).

    Example:
        >>> entry({"a": {"b": {"c": 1}}}, "a", "b"), entry({"a": [1]}, "a"), entry(None)
        ({'c': 1}, {}, {})
    """
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def listed(value: Any) -> list:
    """`value` if it is a list, else []."""
    return value if isinstance(value, list) else []


def number(value: Any, digits: int = 4) -> str:
    """A figure as the report prints it: whole numbers with thousands separators, others to `digits` decimals
    (small ones in scientific notation), anything else as text.

    Example:
        >>> number(77234), number(0.80769230), number(2.5e-07), number(None), number(True)
        ('77,234', '0.8077', '2.5e-07', '-', 'yes')
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and abs(value) < 10 ** (-digits + 1):
            return f"{value:.3g}"
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def interval(value: Any, digits: int = 4) -> str:
    """A figure that may carry a 95 % interval ({"value", "low", "high"}) as '0.8125 [0.7010, 0.9000]'.

    Example:
        >>> interval({"value": 0.8125, "low": 0.701, "high": 0.9}), interval(3), interval({"value": 0.5})
        ('0.8125 [0.7010, 0.9000]', '3', '0.5000')
    """
    if isinstance(value, dict) and "value" in value:
        shown = number(value["value"], digits)
        if value.get("low") is not None and value.get("high") is not None:
            shown += f" [{number(value['low'], digits)}, {number(value['high'], digits)}]"
        return shown
    return number(value, digits)
