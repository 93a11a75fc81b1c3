"""Tables: the breast cancer data built into scikit-learn and a user's CSV file.

Numeric columns are standardized and categorical ones one-hot encoded, with statistics and categories taken
from the train split only; the same `TableEncoder` turns new rows into model inputs in `lamina predict`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy
import torch

from lamina.core.errors import DataError, did_you_mean, resolved
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.columns import Source, is_missing, mostly_numbers, numbers_of, read_number, targets_of, unique_header
from lamina.data.file_checks import read_utf8
from lamina.data.groups import read_groups, split_groups
from lamina.data.lines import delimited_rows, separator_hint, split_lines
from lamina.data.options import BreastCancerOptions, SplitOptions
from lamina.data.paths import data_path
from lamina.data.spec import DataSpec
from lamina.data.table_options import CSVOptions, TableOptions
from lamina.tasks import tasks

__all__ = [
    "TableEncoder",
    "Source",
    "read_table",
    "read_table_lines",
    "table_bundle",
    "table_from_columns",
    "breast_cancer",
    "csv_table",
]

# scikit-learn's copy of the Wisconsin data, read without importing scikit-learn (and SciPy)
BREAST_CANCER_FILE = "package:sklearn/datasets/data/breast_cancer.csv"
_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
BREAST_CANCER_FEATURES = (
    [f"mean {m}" for m in _MEASURES] + [f"{m} error" for m in _MEASURES] + [f"worst {m}" for m in _MEASURES]
)


class TableEncoder:
    """Columns → float32 features. Numeric: (x - mean) / std, missing → train median. Categorical: one-hot of
    the train categories; a category unseen in training encodes as all zeros."""

    def __init__(self, numeric: dict[str, dict], categorical: dict[str, list[str]]):
        self.numeric, self.categorical = numeric, categorical

    @classmethod
    def fit(cls, columns: dict[str, list], numeric_names: list[str], categorical_names: list[str]) -> TableEncoder:
        numeric = {}
        for name in numeric_names:
            values = numpy.asarray(columns[name], dtype=numpy.float64)
            present = values[~numpy.isnan(values)]
            if present.size == 0:
                raise DataError(f"column {name!r} has no values in the train split", "drop it with data.ignore")
            std = float(present.std())
            numeric[name] = {
                "mean": float(present.mean()),
                "std": std if std > 0 else 1.0,
                "median": float(numpy.median(present)),
            }
        categorical = {
            name: sorted({value for value in columns[name] if not is_missing(value)}) for name in categorical_names
        }
        return cls(numeric, categorical)

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        for name, categories in self.categorical.items():
            names += [f"{name}={category}" for category in categories]
        return names

    def transform(self, columns: dict[str, list]) -> torch.Tensor:
        """(N, F) float32 features from raw columns (numbers, or strings as read from a CSV)."""
        parts = []
        for name, stats in self.numeric.items():
            values = numpy.asarray([_as_float(value, name) for value in columns[name]], dtype=numpy.float64)
            values = numpy.where(numpy.isnan(values), stats["median"], values)
            parts.append(((values - stats["mean"]) / stats["std"])[:, None])
        for name, categories in self.categorical.items():
            lookup = {category: i for i, category in enumerate(categories)}
            one_hot = numpy.zeros((len(columns[name]), len(categories)))
            for row, value in enumerate(columns[name]):
                if value in lookup:
                    one_hot[row, lookup[value]] = 1.0
            parts.append(one_hot)
        return torch.from_numpy(numpy.concatenate(parts, axis=1)).float()

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, data: dict) -> TableEncoder:
        return cls(data["numeric"], data["categorical"])


def _as_float(value, column: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    number = read_number(str(value))
    if number is None or math.isinf(number):
        raise DataError(
            f"column {column!r} holds {value!r}, which is not a finite number", "fix the value or leave it empty"
        )
    return number


def read_table(path: Path, separator: str = ",") -> tuple[list[str], dict[str, list[str]]]:
    """Header and columns (as strings) of a CSV file; DataError for a missing file or ragged rows."""
    header, columns, _ = read_table_lines(path, separator)
    return header, columns


def read_table_lines(path: Path, separator: str = ",") -> tuple[list[str], dict[str, list[str]], list[int]]:
    """Header, columns (as strings) and the file's line number of each row. Blank rows are left out but
    counted, so a line number is the one an editor shows. DataError for a missing or non-UTF-8 file, repeated
    column names or ragged rows."""
    if not path.is_file():
        raise DataError(
            f"CSV file {str(path)!r} does not exist{resolved(path)}",
            "check data.path (relative to where you run lamina)",
        )
    file_lines = split_lines(read_utf8(path, "CSV file ", strip_bom=True))
    rows, lines = delimited_rows(file_lines, separator, path, "CSV file ")
    if len(rows) < 2:
        raise DataError(f"CSV file {path} has no data rows", "the first line must be a header, then one row per sample")
    header = unique_header([name.strip() for name in rows[0]], f"CSV file {path}")
    for line, row in zip(lines[1:], rows[1:], strict=True):
        if len(row) != len(header):
            raise DataError(
                f"CSV file {path}, line {line}: {len(row)} fields, but the header has {len(header)}",
                separator_hint(file_lines[line - 1], separator, len(header))
                or (
                    "a field holds the separator without quotes around it: quote that field"
                    if len(row) > len(header)
                    else "a value is missing on that line: add it (an empty field keeps its separator)"
                ),
            )
    return header, {name: [row[i].strip() for row in rows[1:]] for i, name in enumerate(header)}, lines[1:]


def check_column(
    name: str, header: list[str], source: Path | Source, option: str, separator: str | None = None
) -> None:
    """A DataError when `name` is not a column; the hint names the separator when the header of a delimited file
    (`separator` given) is one column that splits at another."""
    if name not in header:
        suggestion = did_you_mean(name, header)
        guess = f"did you mean {suggestion!r}? " if suggestion else ""
        described = source.described if isinstance(source, Source) else f"CSV file {source}"
        hint = separator_hint(header[0], separator, 2) if separator is not None and len(header) == 1 else None
        raise DataError(f"{option}: {described} has no column {name!r}", hint or f"{guess}columns: {', '.join(header)}")


def table_bundle(
    columns: dict[str, list],
    targets: torch.Tensor,
    task: str,
    numeric: list[str],
    categorical: list[str],
    config: SplitOptions,
    seed: int,
    class_names: list[str] | None,
    source: dict,
    notes: list[str] | None = None,
    split_of: list[str] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> DataBundle:
    """Split rows, fit the encoder on the train rows and encode every split. `split_of` names each row's split
    where splits were given ('train', 'val', 'test'); the held-out splits not given are drawn from 'train'.
    `groups`: attribute → each row's group (data.groups), split with the rows."""
    split_of = split_of or ["train"] * len(targets)
    given = {name: torch.tensor([i for i, of in enumerate(split_of) if of == name], dtype=torch.long)
             for name in ("train", "val", "test") if name in split_of}  # fmt: skip
    fractions = {name: getattr(config, f"{name}_fraction") for name in ("test", "val") if name not in given}
    classes = tasks.get(task).classes
    rows = given["train"]
    drawn = split_indices(targets[rows] if classes else None, len(rows), fractions, seed, config.stratify)
    index = {**given, **{name: rows[positions] for name, positions in drawn.items()}}

    def take(rows: torch.Tensor) -> dict[str, list]:
        positions = rows.tolist()
        return {name: [columns[name][i] for i in positions] for name in numeric + categorical}

    encoder = TableEncoder.fit(take(index["train"]), numeric, categorical)
    splits = {name: Split(encoder.transform(take(rows)), targets[rows]) for name, rows in index.items()}
    spec = DataSpec(
        kind="tabular", task=task, input_shape=(len(encoder.feature_names),), feature_names=encoder.feature_names
    )
    if classes:
        spec = replace(spec, num_classes=len(class_names), class_names=class_names, output_size=len(class_names))
    else:
        splits = {name: Split(split.inputs, split.targets.reshape(len(split), -1)) for name, split in splits.items()}
        train_targets = splits["train"].targets.double()  # (N, T)
        spec = replace(
            spec,
            num_targets=train_targets.shape[1],
            output_size=train_targets.shape[1],
            target_mean=train_targets.mean(dim=0).tolist(),
            target_std=train_targets.std(dim=0).clamp(min=1e-12).tolist(),
        )
    preprocessing = {"type": "table", "encoder": encoder.to_dict(), "source": source}
    bundle = DataBundle(spec, {k: splits[k] for k in ("train", "val", "test")}, preprocessing, _identity, notes or [])
    bundle.groups = split_groups(groups or {}, {k: index[k] for k in ("train", "val", "test")})
    return bundle


def _identity(inputs: torch.Tensor) -> torch.Tensor:
    return inputs


def breast_cancer(config: BreastCancerOptions, seed: int) -> DataBundle:
    """Built-in tabular clinical data: 569 samples, 30 features, 2 classes."""
    with data_path(BREAST_CANCER_FILE).open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))  # as scikit-learn's load_breast_cancer reads it
    header, body = rows[0], rows[1:]  # header: samples, features, then the class names
    values = numpy.array([row[:-1] for row in body], dtype=numpy.float64)
    names = BREAST_CANCER_FEATURES
    columns = {name: values[:, i].tolist() for i, name in enumerate(names)}
    targets = torch.tensor([int(row[-1]) for row in body]).long()
    class_names = header[2:]
    return table_bundle(
        columns, targets, "classification", names, [], config, seed, class_names, {"dataset": "breast_cancer"}
    )


def csv_table(config: CSVOptions, seed: int) -> DataBundle:
    """A CSV table: classification or regression on numeric and categorical columns."""
    path = data_path(config.path)
    header, columns, lines = read_table_lines(path, config.separator)
    return table_from_columns(config, header, columns, lines, Source(str(path)), seed, {"dataset": "csv"})


def table_from_columns(
    config: TableOptions,
    header: list[str],
    columns: dict[str, list[str]],
    places: list[int],
    source: Source,
    seed: int,
    record: dict,
    split_of: list[str] | None = None,
) -> DataBundle:
    """A table given as columns of strings (each row's line or row number in `places`, its split in `split_of`
    where splits were given) → a DataBundle: rows without a target dropped, missing values handled as
    data.missing says, numeric columns checked."""
    separator = getattr(config, "separator", None)  # delimited files only
    check_column(config.target, header, source, "data.target", separator)
    for name in [*(config.features or []), *config.ignore, *(config.categorical or [])]:
        check_column(name, header, source, "data.features/ignore/categorical", separator)
    grouping = [group.column for group in config.groups if group.column is not None]
    for name in grouping:
        check_column(name, header, source, "data.groups", separator)
    left_out = [config.target, *config.ignore, *grouping]
    features = config.features or [name for name in header if name not in left_out]
    if config.target in features:
        raise DataError(f"data.features includes the target column {config.target!r}", "remove it from data.features")
    if set(grouping) & set(features):
        raise DataError(
            f"data.features includes the group column {sorted(set(grouping) & set(features))[0]!r}",
            "a group column is not a model feature: remove it from data.features",
        )
    if not features:
        raise DataError(f"{source.described} has no feature columns besides the target", "check data.ignore")
    notes, keep = [], [i for i, value in enumerate(columns[config.target]) if not is_missing(value)]
    if len(keep) < len(columns[config.target]):
        notes.append(f"dropped {len(columns[config.target]) - len(keep)} rows with no target value")
    incomplete = [i for i in keep if any(is_missing(columns[name][i]) for name in features)]
    if incomplete and config.missing == "error":
        raise DataError(
            f"{source.described} has missing values in {len(incomplete)} rows (first on "
            f"{source.at(places[incomplete[0]])})",
            "set data.missing: impute or drop",
        )
    if incomplete and config.missing == "drop":
        dropped = set(incomplete)
        keep = [i for i in keep if i not in dropped]
        notes.append(f"dropped {len(dropped)} rows with missing feature values")
    elif incomplete:
        notes.append(f"imputed missing values in {len(incomplete)} rows (train medians / 'missing' category)")
    columns = {name: [columns[name][i] for i in keep] for name in header}
    places = [places[i] for i in keep]
    split_of = [split_of[i] for i in keep] if split_of else None
    if config.categorical is not None:
        categorical = [name for name in features if name in config.categorical]
    else:
        categorical = [name for name in features if not mostly_numbers(columns[name])]
    numeric = [name for name in features if name not in categorical]
    for name in numeric:
        columns[name] = numbers_of(name, columns[name], places, source)
    task, targets, class_names = targets_of(columns[config.target], config, source, places)
    source_record = {**record, "target": config.target}
    groups = read_groups(config.groups, columns=columns, described=source.described)
    return table_bundle(
        columns, targets, task, numeric, categorical, config, seed, class_names, source_record, notes, split_of, groups
    )
