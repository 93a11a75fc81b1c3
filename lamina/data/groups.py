"""Each sample's group (data.groups): read from a column of the rows, a regular expression on each file's path,
or a field of a metadata CSV joined by the file name or by an attribute read before; then kept in step with the
splits. The readers call `read_groups` on their samples in the order read and `split_groups` with the row indices
of each split, so a sample's group follows it through every split, reorder and filter.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path, PurePosixPath

import torch
from torch import Tensor

from lamina.core.errors import DataError, did_you_mean, resolved
from lamina.data.file_checks import read_utf8
from lamina.data.group_options import GroupOptions
from lamina.data.paths import data_path

__all__ = [
    "read_groups",
    "split_groups",
    "take_groups",
    "unseen_group_warnings",
    "group_sources",
    "relative_path",
]


def read_groups(
    options: list[GroupOptions],
    *,
    files: list[str] | None = None,
    columns: dict[str, list[str]] | None = None,
    described: str = "the data",
) -> dict[str, list[str]]:
    """Attribute → each sample's group, in the order of `files` (paths relative to data.path, `/`-separated) or
    of the rows of `columns` (column name or 0-based number → values); DataError naming what does not fit.

    Example:
        >>> from lamina.data.group_options import GroupOptions
        >>> read_groups([GroupOptions(name="speaker", pattern=r"_(?P<group>[a-z]+)_")], files=["0_ann_1.wav"])
        {'speaker': ['ann']}
    """
    groups: dict[str, list[str]] = {}
    for group in options:
        if group.column is not None:
            groups[group.name] = _column(group, columns or {}, described)
        elif group.pattern is not None:
            groups[group.name] = _pattern(group, files or [])
        else:
            values = groups[group.match] if group.match != "file" else None
            groups[group.name] = _metadata(group, files or [], values)
    return groups


def _column(group: GroupOptions, columns: dict, described: str) -> list[str]:
    if group.column not in columns:
        names = [str(name) for name in columns]
        guess = did_you_mean(str(group.column), names)
        raise DataError(
            f"data.groups {group.name}: {described} has no column {group.column!r}",
            (f"did you mean {guess!r}? " if guess else "") + f"columns: {', '.join(names)}",
        )
    return [str(value).strip() for value in columns[group.column]]


def _pattern(group: GroupOptions, files: list[str]) -> list[str]:
    expression = re.compile(group.pattern)
    names = []
    for file in files:
        found = expression.search(file)
        if found is None:
            raise DataError(
                f"data.groups {group.name}: the pattern {group.pattern!r} matches nothing in the file {file!r}",
                "fix the pattern (it is searched in each file's path relative to data.path), or move the file",
            )
        if "group" in expression.groupindex:
            names.append(found["group"])
        else:
            names.append(found[1] if expression.groups else found[0])
    return names


def _metadata(group: GroupOptions, files: list[str], values: list[str] | None) -> list[str]:
    table = _metadata_table(group)
    names = []
    for index, value in enumerate(values if values is not None else files):
        if values is None:  # match: file, with or without its extension
            name = PurePosixPath(value).name
            row = table.get(name) or table.get(PurePosixPath(name).stem)
            looked_up, shown = PurePosixPath(name).stem, f"the file {value}"
        else:
            row = table.get(value)
            looked_up, shown = value, f"the {group.match} of sample {index}"
        if row is None:
            raise DataError(
                f"data.groups {group.name}: {group.metadata} has no row whose {group.key!r} is {looked_up!r} ({shown})",
                f"add a row with {group.key} = {looked_up}, or remove the sample",
            )
        names.append(row)
    return names


def _metadata_table(group: GroupOptions) -> dict[str, str]:
    """key → field of the metadata CSV."""
    path = data_path(group.metadata)
    if not path.is_file():
        raise DataError(
            f"data.groups {group.name}: the metadata file {group.metadata!r} does not exist{resolved(path)}",
            "give a CSV file with a header line (paths are relative to where you run lamina)",
        )
    rows = list(csv.reader(io.StringIO(read_utf8(path, "metadata file ", strip_bom=True))))
    header = [name.strip() for name in rows[0]] if rows else []
    for option in ("key", "field"):
        name = getattr(group, option)
        if name not in header:
            guess = did_you_mean(name, header)
            raise DataError(
                f"data.groups {group.name}: the metadata file {path} has no column {name!r} ({option})",
                (f"did you mean {guess!r}? " if guess else "") + f"columns: {', '.join(header) or 'none'}",
            )
    key, field = header.index(group.key), header.index(group.field)
    return {row[key].strip(): row[field].strip() for row in rows[1:] if len(row) > max(key, field)}


def split_groups(groups: dict[str, list[str]], index: dict[str, Tensor]) -> dict[str, dict[str, list[str]]]:
    """Attribute → split → group of each sample of the split, from the groups of the samples as read and the
    indices of each split's samples among them (in the split's stored order)."""
    return {
        attribute: {split: [names[i] for i in rows.tolist()] for split, rows in index.items()}
        for attribute, names in groups.items()
    }


def take_groups(groups: dict[str, dict[str, list[str]]], split: str, index: Tensor, into: str | None = None) -> None:
    """In place: the groups of `split` become those of its samples at `index` (a boolean mask or positions),
    stored as split `into` (default: the same split)."""
    positions = index.nonzero().flatten().tolist() if index.dtype == torch.bool else index.tolist()
    for by_split in groups.values():
        if split in by_split:
            by_split[into or split] = [by_split[split][i] for i in positions]


def unseen_group_warnings(groups: dict[str, dict[str, list[str]]]) -> list[str]:
    """One line per attribute and held-out split naming its groups that train lacks."""
    warnings = []
    for attribute, by_split in groups.items():
        trained = set(by_split.get("train", []))
        for split in ("val", "test"):
            unseen = sorted(set(by_split.get(split, [])) - trained)
            if not unseen:
                continue
            names = ", ".join(repr(name) for name in unseen[:5]) + (
                f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
            )
            verb, whose = (
                ("is", "its metrics measure a group") if len(unseen) == 1 else ("are", "their metrics measure groups")
            )
            warnings.append(f"{attribute} {names} {verb} in {split} but not in train: {whose} the model never saw")
    return warnings


def group_sources(options: list[GroupOptions]) -> dict[str, str]:
    """Attribute → one line saying where its groups come from."""
    return {group.name: group.described() for group in options}


def relative_path(file: Path | str, root: Path) -> str:
    """A file's path relative to `root` with `/` separators (what data.groups patterns are searched in)."""
    try:
        return Path(file).relative_to(root).as_posix()
    except ValueError:
        return Path(file).as_posix()
