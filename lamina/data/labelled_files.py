"""Reading labelled texts: TSV, CSV and JSONL files, one text per line (lamina/data/lines.py says what a line is).

Tab-separated files are split on tabs only (quotes are text: messages hold them); CSV files follow the csv module
(a quoted field may span lines); a JSONL line is one JSON object whose `text_column` and `label_column` fields
are read. With `header: auto`, each delimited file's first line is a header when the columns are named and it
holds the names, or when its label occurs on no other line while the labels repeat; a note says which was assumed.
Every error names the file and the line an editor shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lamina.core.errors import DataError, did_you_mean
from lamina.data.file_checks import read_utf8
from lamina.data.lines import delimited_rows, separator_hint, split_lines
from lamina.data.paths import data_files
from lamina.data.text_options import LabelledTextOptions

__all__ = ["LabelledTexts", "read_labelled", "class_targets", "is_jsonl"]

JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass
class LabelledTexts:
    """Texts, their labels as written, where each was read ('file, line N') and notes for the user."""

    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)  # data.groups column → each text's value


def is_jsonl(path: Path, format: str) -> bool:
    return format == "jsonl" or (format == "auto" and path.suffix.lower() in JSONL_SUFFIXES)


def read_labelled(config: LabelledTextOptions) -> LabelledTexts:
    """Every labelled text of the files `config.path` names, in order."""
    read = LabelledTexts()
    headers: dict[bool, list[str]] = {True: [], False: []}  # header: auto's decisions, for one note each
    paths = data_files(config.path, "data.path")
    for path in paths:
        lines = split_lines(read_utf8(path, strip_bom=True))
        if is_jsonl(path, config.format):
            _read_jsonl(path, lines, config, read)
        else:
            headed = _read_delimited(path, lines, config, read)
            if config.header == "auto":
                headers[headed].append(path.name)
    if headers[True]:
        read.notes.append(
            f"header: auto read the first line of {_names(headers[True])} as column names; "
            "set data.header: false if it is a text"
        )
    if headers[False]:
        read.notes.append(
            f"header: auto found no header line in {_names(headers[False])} (its first label occurs on other "
            "lines too); set data.header: true if the first line names the columns"
        )
    if config.lowercase:
        read.texts = [text.lower() for text in read.texts]
    if len(read.texts) < 4:
        raise DataError(
            f"{_names([str(path) for path in paths])} {'holds' if len(paths) == 1 else 'hold'} "
            f"{len(read.texts)} labelled texts",
            "a classifier needs at least a few per class",
        )
    return read


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more files" if len(names) > 3 else "")


def _read_jsonl(path: Path, lines: list[str], config: LabelledTextOptions, read: LabelledTexts) -> None:
    for option in ("text_column", "label_column"):
        if isinstance(getattr(config, option), int):
            raise DataError(
                f"data.{option} is the column number {getattr(config, option)}, but {path} is JSONL",
                f"name the field instead, e.g. data.{option}: {option.split('_')[0]}",
            )
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, strict=False)  # strict=False: control characters inside strings are text
        except ValueError as error:
            raise DataError(f"{path}, line {number} is not JSON: {error}", "one JSON object per line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number} holds a {type(record).__name__}, not a JSON object", None)
        values = []
        for option in ("text_column", "label_column"):
            name = getattr(config, option)
            if name not in record:
                guess = did_you_mean(name, list(record))
                raise DataError(
                    f"{path}, line {number} has no field {name!r}",
                    (f"did you mean {guess!r}? " if guess else "") + f"fields: {', '.join(record)} (data.{option})",
                )
            values.append(record[name])
        text, label = values
        for column in _group_columns(config):
            if column not in record:
                raise DataError(
                    f"data.groups: {path}, line {number} has no field {column!r}",
                    f"fields: {', '.join(record)}; give every line the group field, or fix data.groups",
                )
            read.groups.setdefault(column, []).append(str(record[column]).strip())
        if not isinstance(text, str) or isinstance(label, bool) or not isinstance(label, str | int):
            raise DataError(
                f"{path}, line {number}: the text must be a string and the label a string or a whole number "
                f"(found {type(text).__name__} and {type(label).__name__})",
                None,
            )
        _add(read, text, str(label).strip(), f"{path}, line {number}")


def _read_delimited(path: Path, lines: list[str], config: LabelledTextOptions, read: LabelledTexts) -> bool:
    """Reads one delimited file into `read`; returns whether its first line was a header."""
    separator = config.separator or ("," if path.suffix.lower() == ".csv" else "\t")
    if separator == "\t":  # tabs only: quotes are part of the text
        numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
        rows, starts = [line.split("\t") for _, line in numbered], [number for number, _ in numbered]
    else:
        rows, starts = delimited_rows(lines, separator, path)
    if not rows:
        raise DataError(f"{path} is empty", "one labelled text per line")
    header = _has_header(rows, config)
    names = [name.strip() for name in rows[0]] if header else []
    text_index, label_index = (
        _column(config, option, names, path, separator) for option in ("text_column", "label_column")
    )
    grouped = {column: _index(column, "groups", config, names, path, separator) for column in _group_columns(config)}
    needed = max(text_index, label_index, *grouped.values()) + 1
    width = len(names) if header else needed
    for start, row in list(zip(starts, rows, strict=True))[int(header) :]:
        if len(row) < needed:
            raise DataError(
                f"{path}, line {start}: {len(row)} fields, expected at least {needed}",
                separator_hint(lines[start - 1], separator, needed)
                or f"the text{', the label or a group' if grouped else ' or the label'} is missing on that line: add it, "
                "or remove the line",
            )
        text = row[text_index]
        if len(row) > width and text_index == width - 1:  # the separator also occurs inside the last column
            text = separator.join(row[text_index:])
        for column, position in grouped.items():
            read.groups.setdefault(column, []).append(row[position].strip())
        _add(read, text, row[label_index].strip(), f"{path}, line {start}")
    return header


def _has_header(rows: list[list[str]], config: LabelledTextOptions) -> bool:
    if config.header != "auto":
        return config.header
    columns = [config.text_column, config.label_column]
    first = [cell.strip() for cell in rows[0]]
    if any(isinstance(column, str) for column in columns):
        return all(column in first for column in columns if isinstance(column, str))
    label = config.label_column
    labels = [row[label].strip() for row in rows[1:] if len(row) > label]
    if len(first) <= label:
        return False
    return first[label] not in labels and len(set(labels)) < len(labels)


def _group_columns(config: LabelledTextOptions) -> list[str | int]:
    return [group.column for group in config.groups if group.column is not None]


def _column(config: LabelledTextOptions, option: str, header: list[str], path: Path, separator: str) -> int:
    return _index(getattr(config, option), option, config, header, path, separator)


def _index(
    column: str | int, option: str, config: LabelledTextOptions, header: list[str], path: Path, separator: str
) -> int:
    if isinstance(column, int):
        return column
    if column in header:
        return header.index(column)
    if not header:
        why = (
            "its first line is a text, not a header (data.header: auto)"
            if config.header == "auto"
            else "the file has no header (data.header: false)"
        )
        raise DataError(
            f"data.{option}: {path} has no column {column!r}", f"{why}: give the column's 0-based number instead"
        )
    guess = did_you_mean(column, header)
    hint = separator_hint(header[0], separator, 2) if len(header) == 1 else None
    raise DataError(
        f"data.{option}: {path} has no column {column!r}",
        hint or (f"did you mean {guess!r}? " if guess else "") + f"columns: {', '.join(header)}",
    )


def _add(read: LabelledTexts, text: str, label: str, place: str) -> None:
    if not label:
        raise DataError(f"{place}: the label is empty", "give every text a label, or remove the line")
    read.texts.append(text)
    read.labels.append(label)
    read.places.append(place)


def class_targets(read: LabelledTexts, class_names: list[str] | None) -> tuple[list[int], list[str]]:
    """(class index of each text, class names). Without `class_names`, the classes are the labels sorted. With
    them, labels are names in that list, or — when none is — whole numbers indexing it."""
    if class_names is None:
        names = sorted(set(read.labels))
        lookup = {name: index for index, name in enumerate(names)}
        return [lookup[label] for label in read.labels], names
    lookup = {name: index for index, name in enumerate(class_names)}
    if not set(read.labels) & set(lookup) and all(label.isdigit() for label in read.labels):
        lookup = {str(index): index for index in range(len(class_names))}
    for label, place in zip(read.labels, read.places, strict=True):
        if label not in lookup:
            guess = did_you_mean(label, class_names)
            raise DataError(
                f"{place}: the label {label!r} is not one of data.class_names ({', '.join(class_names)})"
                if not lookup.keys() - set(class_names)
                else f"{place}: the label {label!r} is not a class number 0–{len(class_names) - 1}",
                (f"did you mean {guess!r}? " if guess else "") + "fix the label, or add its class to data.class_names",
            )
    return [lookup[label] for label in read.labels], list(class_names)
