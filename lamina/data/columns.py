"""Cells of a table read as text (CSV, or a Parquet file or DataFrame turned into text): missing markers,
numbers, numeric columns checked cell by cell, and the target column → a task, targets and class names. Every
error names the column, the source and the row (`Source.at`: a file's line, a frame's row)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lamina.core.errors import DataError
from lamina.data.table_options import TableOptions
from lamina.tasks import tasks

__all__ = [
    "MISSING",
    "Source",
    "unique_header",
    "read_number",
    "is_missing",
    "mostly_numbers",
    "numbers_of",
    "targets_of",
]

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}


@dataclass(frozen=True)
class Source:
    """Where a table's rows come from, for messages: str() is its name (a path, or 'the DataFrame'), `described`
    says what it is ('CSV file data.csv'), and `at(place)` names a row: 'line 13' of a file as an editor counts
    lines, 'row 12' (from 0) of a Parquet file or DataFrame."""

    name: str
    kind: str = "CSV file"
    unit: str = "line"

    def __str__(self) -> str:
        return self.name

    @property
    def described(self) -> str:
        return f"{self.kind} {self.name}" if self.kind else self.name

    def at(self, place: int) -> str:
        return f"{self.unit} {place}"


def unique_header(header: list[str], described: str) -> list[str]:
    """`header`, or a DataError naming the first column name given twice and both of its 1-based positions."""
    first: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in first:
            raise DataError(
                f"{described} has two columns named {name!r}: columns {first[name]} and {position}",
                "rename one of them; column names must be unique",
            )
        first[name] = position
    return header


def read_number(text: str) -> float | None:
    """The float in `text`, NaN for a missing marker, None if it is not a number."""
    if text.strip().lower() in MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING


def mostly_numbers(values: list[str]) -> bool:
    """Whether a column is numeric: at least 90 % of its present cells are numbers (the others are errors to fix,
    not categories: one 'nine' among numbers must not make a one-hot column of every number)."""
    present = [value for value in values if not is_missing(value)]
    numbers = sum(read_number(value) is not None for value in present)
    return 10 * numbers >= 9 * len(present)


def numbers_of(name: str, values: list[str], lines: list[int], path: Source) -> list[float]:
    """A numeric column's cells as floats (NaN where missing); DataError naming the first cell that is not a
    finite number, and its line."""
    numbers = [read_number(value) for value in values]
    words = [i for i, number in enumerate(numbers) if number is None]
    if words:
        present = sum(not is_missing(value) for value in values)
        raise DataError(
            f"column {name!r} of {path} is numbers except {len(words)} of {present} cells; the first, "
            f"{values[words[0]]!r}, is on {path.at(lines[words[0]])}",
            "fix those cells, mark them missing (leave them empty or write NA), or list the column in "
            "data.categorical to treat every value as a category",
        )
    check_finite(name, values, numbers, lines, path)
    return numbers


def check_finite(name: str, values: list[str], numbers: list, lines: list[int], path: Source) -> None:
    infinite = next((i for i, number in enumerate(numbers) if number is not None and math.isinf(number)), None)
    if infinite is not None:
        raise DataError(
            f"column {name!r} of {path} holds {values[infinite]!r} on {path.at(lines[infinite])}, which is not a "
            "finite number",
            "replace it with a finite number, or leave the cell empty to mark it missing",
        )


def targets_of(
    values: list[str], config: TableOptions, path: Source, lines: list[int]
) -> tuple[str, torch.Tensor, list[str] | None]:
    numbers = [read_number(value) for value in values]
    numeric = all(number is not None for number in numbers)
    whole = numeric and all(float(number).is_integer() for number in numbers)
    task = config.task
    if task == "auto" and not numeric and mostly_numbers(values):
        word = next(i for i, number in enumerate(numbers) if number is None)
        raise DataError(
            f"target {config.target!r} of {path} is numbers except {numbers.count(None)} of {len(values)} cells; "
            f"the first, {values[word]!r}, is on {path.at(lines[word])}",
            "fix those cells or leave them empty (rows without a target are dropped), or set data.task: "
            "classification to make every value a class",
        )
    if task == "auto":
        task = "classification" if not numeric or (whole and len(set(values)) <= config.max_classes) else "regression"
    if not tasks.get(task).classes:
        if not numeric:
            word = next(i for i, number in enumerate(numbers) if number is None)
            raise DataError(
                f"data.task is regression but target {config.target!r} holds {values[word]!r} on "
                f"{path.at(lines[word])}",
                "use data.task: classification, or clean the target column",
            )
        check_finite(config.target, values, numbers, lines, path)
        return task, torch.tensor(numbers, dtype=torch.float32), None
    classes = sorted(set(values), key=lambda v: (float(v), v) if whole else (0.0, v))
    if len(classes) < 2:
        raise DataError(
            f"target {config.target!r} in {path} has a single class {classes[0]!r}",
            "classification needs at least two classes",
        )
    lookup = {name: i for i, name in enumerate(classes)}
    return task, torch.tensor([lookup[value] for value in values]), classes
