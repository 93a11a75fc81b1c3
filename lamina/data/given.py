"""Data passed from Python instead of files: `lamina.train(config, data=...)` with numpy arrays, torch tensors or
pandas DataFrames. `given_data` turns what the user passed into named splits of numpy arrays (or DataFrames),
with a fingerprint that a run keeps, so evaluating or resuming it later can check it is given the same data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy

from lamina.core.errors import DataError, RunError

__all__ = ["Given", "given_data", "matching_given", "as_array", "is_frame"]

SPLIT_NAMES = ("train", "val", "test")
FORMS = (
    "data=(x, y); data={'train': (x, y), 'test': (x2, y2)} (also 'val'); data=frame (a pandas DataFrame with "
    "data.target naming its target column); data=(features, target) (a DataFrame and a Series); x and y may be "
    "numpy arrays, torch tensors, lists or pandas objects"
)


@dataclass
class Given:
    """Named splits of what was passed: (inputs, labels) numpy arrays, or (frame, labels or None) for tables."""

    splits: dict[str, tuple[Any, Any]]
    tables: bool  # pandas DataFrames (the `dataframe` data set) rather than arrays (`arrays`)
    fingerprint: str  # sha256 of every array's dtype, shape and bytes (a frame's columns and values)
    target: str | None = None  # data=(features, target): the column the target Series became

    @property
    def defaults(self) -> dict[str, str]:
        """What the config's data section takes from this data where it says nothing: the data set's name, and
        the target column of data=(features, target)."""
        return {"name": "dataframe" if self.tables else "arrays", **({"target": self.target} if self.target else {})}

    def describe(self) -> str:
        """'train 800, test 200 samples passed from Python'."""
        counts = ", ".join(f"{name} {len(inputs):,}" for name, (inputs, _) in self.splits.items())
        return f"{counts} samples passed from Python"


def is_frame(value: Any) -> bool:
    """Whether `value` is a pandas DataFrame (without importing pandas)."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def as_array(value: Any, what: str) -> numpy.ndarray:
    """A numpy array from a numpy array, torch tensor, pandas Series or list; DataError otherwise."""
    if isinstance(value, numpy.ndarray):
        return value
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if type(value).__module__.startswith("pandas") and hasattr(value, "to_numpy"):
        return value.to_numpy()
    if isinstance(value, list | tuple):
        array = numpy.asarray(value)
        if array.dtype != object:
            return array
    raise DataError(f"{what} is a {type(value).__name__}, not an array", f"pass {FORMS}")


def given_data(data: Any) -> Given:
    """Normalize `data` (see FORMS) into a Given; DataError for any other shape of argument."""
    splits = data if isinstance(data, dict) else {"train": data}
    unknown = [name for name in splits if name not in SPLIT_NAMES]
    if unknown or "train" not in splits:
        raise DataError(
            f"data has the splits {', '.join(map(repr, splits))}"
            if unknown
            else "data has no 'train' split (its keys: " + ", ".join(map(repr, splits)) + ")",
            "name the splits 'train' (required), 'val' and 'test'",
        )
    target = None
    tables = any(is_frame(value) or (isinstance(value, tuple) and is_frame(value[0])) for value in splits.values())
    normalized, digest = {}, hashlib.sha256()
    for name in SPLIT_NAMES:
        if name not in splits:
            continue
        value, what = splits[name], f"data[{name!r}]" if isinstance(data, dict) else "data"
        if is_frame(value):
            inputs, labels = value, None
        elif isinstance(value, tuple | list) and len(value) == 2:
            inputs, labels = value
        else:
            raise DataError(f"{what} is a {type(value).__name__}", f"pass {FORMS}")
        if tables:
            if not is_frame(inputs):
                raise DataError(f"{what} holds a {type(inputs).__name__}, but other splits are DataFrames",
                                "pass every split the same way")  # fmt: skip
            if labels is not None:  # (features, target): the target joins the frame as a column
                target = str(getattr(labels, "name", None) or "target")
                if target in map(str, inputs.columns):
                    raise DataError(f"{what}[0] already has a column {target!r}, the name of the target beside it",
                                    "pass the frame alone with data.target naming that column, or rename one")  # fmt: skip
                inputs = inputs.assign(**{target: as_array(labels, f"{what}[1]")})
                labels = None
        else:
            inputs, labels = as_array(inputs, f"{what}[0] (the inputs)"), as_array(labels, f"{what}[1] (the labels)")
            if len(labels) != len(inputs):
                raise DataError(f"{what} holds {len(inputs)} inputs but {len(labels)} labels", "one label per sample")
        normalized[name] = (inputs, labels)
        digest.update(name.encode())
        for part in (inputs, labels):
            _digest(digest, part)
    return Given(normalized, tables, digest.hexdigest(), target)


def _digest(digest: Any, part: Any) -> None:
    if part is None:
        return
    if is_frame(part):
        import pandas  # only here when a DataFrame was passed

        digest.update(repr(list(part.columns)).encode())
        digest.update(pandas.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        return
    digest.update(f"{part.dtype.str}{part.shape}".encode())
    digest.update(numpy.ascontiguousarray(part).tobytes() if part.dtype != object else repr(part.tolist()).encode())


def matching_given(expected: dict | None, data: Any, kept: Given | None, run_dir: Any, purpose: str) -> Given | None:
    """The data passed from Python that the run in `run_dir` learned from: `data` when its fingerprint is the
    `expected` one the run keeps, else `kept` (what it was trained on in this process); None for a run that reads
    its data from files. `purpose` says what needs the data ("evaluating it")."""
    if expected is None:
        if data is not None:
            raise RunError(
                f"run {run_dir} reads its data from files; data= is for runs trained on data passed from Python",
                "leave data out",
            )
        return None
    if data is None and kept is not None:
        return kept
    if data is None:
        raise RunError(
            f"run {run_dir} learned from data passed from Python ({expected['described']}), so {purpose} "
            "needs that data again",
            f"from Python: lamina.load_run({str(run_dir)!r}).evaluate(data=...) or lamina.resume(RUN, data=...)",
        )
    given = data if isinstance(data, Given) else given_data(data)
    if given.fingerprint != expected["fingerprint"]:
        raise RunError(
            f"the data passed is not the data run {run_dir} learned from ({given.describe()}; the run's: "
            f"{expected['described']})",
            "pass the same arrays or frames, split the same way",
        )
    return given
