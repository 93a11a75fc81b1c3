"""Tables that arrive as pandas DataFrames: a Parquet file (read with pandas and pyarrow, the optional `tables`
extra) or a DataFrame passed from Python. Each cell becomes text and the table then follows the CSV rules
(lamina/data/tabular.py): the same missing markers, numeric checks, categories and targets, with errors naming
the row."""

from __future__ import annotations

import math
import sys
from typing import Any

from lamina.core.errors import DataError, resolved
from lamina.data.bundle import DataBundle
from lamina.data.columns import Source, unique_header
from lamina.data.given import Given
from lamina.data.paths import data_path
from lamina.data.table_options import DataFrameOptions, ParquetOptions
from lamina.data.tabular import table_from_columns

__all__ = ["parquet", "dataframe", "frame_columns", "read_parquet"]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise DataError(
            "reading Parquet files needs pandas and pyarrow, which are not installed",
            f"install them: {sys.executable} -m pip install 'lamina[tables]' (or pandas pyarrow)",
        ) from None
    return pandas


def read_parquet(path_text: str, option: str = "data.path") -> tuple[Any, Source]:
    """(DataFrame, Source) of a Parquet file; DataError for a missing or unreadable file or a missing pyarrow."""
    path = data_path(path_text)
    if not path.is_file():
        raise DataError(f"{option}: Parquet file {path_text!r} does not exist{resolved(path_text)}",
                        "check the path (relative to where you run lamina)")  # fmt: skip
    pandas = _pandas()
    try:
        frame = pandas.read_parquet(path)
    except ImportError as error:
        raise DataError(f"cannot read {path}: {error}", f"{sys.executable} -m pip install pyarrow") from None
    except Exception as error:  # pyarrow raises its own kinds for damaged files  # noqa: BLE001
        raise DataError(f"{path} is not a readable Parquet file ({type(error).__name__}: {error})",
                        "write it again, e.g. frame.to_parquet(path)") from None  # fmt: skip
    return frame, Source(str(path), "Parquet file", "row")


def _cell(value: Any) -> str:
    """A cell as the text a CSV would hold: '' for missing values; floats exactly (repr round-trips)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if type(value).__name__ in ("NAType", "NaTType"):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def frame_columns(frame: Any, source: Source) -> tuple[list[str], dict[str, list[str]], list[int]]:
    """(header, columns as text, row positions) of a DataFrame; DataError for column names given twice."""
    header = unique_header([str(name) for name in frame.columns], source.described)
    columns = {name: [_cell(value) for value in frame.iloc[:, i].tolist()] for i, name in enumerate(header)}
    return header, columns, list(range(len(frame)))


def parquet(config: ParquetOptions, seed: int) -> DataBundle:
    """A Parquet table: classification or regression on numeric and categorical columns, as for CSV."""
    frame, source = read_parquet(config.path)
    header, columns, places = frame_columns(frame, source)
    if not places:
        raise DataError(f"{source.described} has no rows", "write the table with its rows")
    return table_from_columns(config, header, columns, places, source, seed, {"dataset": "parquet"})


def dataframe(config: DataFrameOptions, seed: int, given: Given | None = None) -> DataBundle:
    """DataFrames passed from Python (one per split given; the others are held out from 'train')."""
    if given is None or not given.tables:
        raise DataError(
            "data set 'dataframe' takes a pandas DataFrame passed from Python",
            "lamina.train(config, data=frame) — from a file, use data.name: csv or parquet",
        )
    if config.target is None:
        raise DataError("data.target is not set: which column of the DataFrame is the target?",
                        "set data.target, or pass data=(features, target)")  # fmt: skip
    header: list[str] = []
    columns: dict[str, list[str]] = {}
    places: list[int] = []
    split_of: list[str] = []
    for name, (frame, _) in given.splits.items():
        source = Source(f"the {name} DataFrame", "")
        part_header, part_columns, part_places = frame_columns(frame, source)
        if header and part_header != header:
            raise DataError(f"{source} has the columns {', '.join(part_header)}, the train DataFrame "
                            f"{', '.join(header)}", "give every split the same columns")  # fmt: skip
        header = part_header
        for column in header:
            columns.setdefault(column, []).extend(part_columns[column])
        places += part_places
        split_of += [name] * len(part_places)
    source = Source("the DataFrame", "", "row")
    return table_from_columns(config, header, columns, places, source, seed, {"dataset": "dataframe"}, split_of)
