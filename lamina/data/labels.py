"""Labels given as arrays → class indices (or regression targets), one rule for every split: strings are class
names; whole numbers are classes when there are few of them (`max_classes`), else regression targets; one-hot rows
are read as the class they mark. What was assumed is said in a note."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy
import torch
from torch import Tensor

from lamina.core.errors import DataError
from lamina.data.spec import DataSpec
from lamina.tasks import tasks

__all__ = ["encode_labels", "regression_spec"]


def regression_spec(spec: DataSpec, targets: Tensor) -> DataSpec:
    """`spec` for regression on `targets` (N,) or (N, T): standardized with their train mean and std."""
    train = targets.double().reshape(len(targets), -1)  # (N, T)
    return replace(
        spec,
        num_targets=train.shape[1],
        output_size=train.shape[1],
        target_mean=train.mean(dim=0).tolist(),
        target_std=train.std(dim=0).nan_to_num(1.0).clamp(min=1e-12).tolist(),
    )


def encode_labels(labels: dict[str, numpy.ndarray], config: Any) -> tuple[str, dict[str, Tensor], list | None, list]:
    """(task, targets per split, class names or None, notes) from each split's label array. `config` gives
    task (auto, classification, regression), max_classes and class_names."""
    notes: list[str] = []
    flat = {split: _flatten(split, values, notes) for split, values in labels.items()}
    everything = numpy.concatenate([values for values in flat.values()])
    text = everything.dtype.kind in "USO"
    if text:
        task = _task(config, "classification", "the labels are strings")
        return task, *_named_classes(flat, config), notes
    if everything.dtype.kind not in "uifb":
        raise DataError(f"the labels hold {everything.dtype} values", "labels are whole numbers, strings or floats")
    values = everything.astype(numpy.float64)
    bad = numpy.flatnonzero(~numpy.isfinite(values))
    if bad.size:
        raise DataError(f"the labels hold {values[bad[0]]} (sample {bad[0]})", "every label must be a finite number")
    whole = bool(numpy.all(values == numpy.round(values)))
    distinct = numpy.unique(values)
    if config.task == "auto":
        classes = whole and everything.ndim == 1 and len(distinct) <= config.max_classes
        task = "classification" if classes else "regression"
        reason = f"{len(distinct)} distinct {'whole numbers' if whole else 'values'}"
        notes.append(f"labels read as {'classes' if classes else 'regression targets'} ({reason}; "
                     "set data.task if that is wrong)")  # fmt: skip
    else:
        task = config.task
    if not tasks.get(task).classes:
        return task, {split: torch.from_numpy(v.astype(numpy.float32)) for split, v in flat.items()}, None, notes
    if not whole or everything.ndim != 1:
        raise DataError("data.task is classification, but the labels are not whole numbers (one per sample)",
                        "give class indices 0, 1, … or class names")  # fmt: skip
    if config.class_names is not None:
        count = len(config.class_names)
        if distinct[0] < 0 or distinct[-1] >= count:
            raise DataError(
                f"the labels go from {int(distinct[0])} to {int(distinct[-1])}, but data.class_names names {count} "
                f"classes (labels 0–{count - 1})",
                "name every class in data.class_names, in label order",
            )
        lookup = {value: value for value in range(count)}
        names = list(config.class_names)
    elif distinct[0] >= 0 and distinct[-1] < config.max_classes:  # indices already: keep them
        lookup = {value: value for value in range(int(distinct[-1]) + 1)}
        names = [str(value) for value in lookup]
    else:
        lookup = {int(value): index for index, value in enumerate(distinct)}
        names = [str(int(value)) for value in distinct]
        notes.append(f"labels {', '.join(names[:5])}{', …' if len(names) > 5 else ''} numbered 0–{len(names) - 1}")
    targets = {
        split: torch.tensor([lookup[int(value)] for value in v.astype(numpy.int64)], dtype=torch.long)
        for split, v in flat.items()
    }
    return task, targets, names, notes


def _flatten(split: str, values: numpy.ndarray, notes: list[str]) -> numpy.ndarray:
    """(N,) labels from (N,) or (N, 1); one-hot (N, K) rows → the class each marks; (N, K) floats stay."""
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if values.ndim == 2 and values.dtype.kind in "uifb" and len(values):
        binary = numpy.isin(values, (0, 1)).all() and bool((values.sum(axis=1) == 1).all())
        if binary:
            if split == "train":
                notes.append(f"labels are one-hot ({values.shape[1]} columns): read as class indices")
            return values.argmax(axis=1)
        return values
    if values.ndim != 1:
        raise DataError(f"the {split} labels have shape {values.shape}", "labels are (N,), (N, 1) or one-hot (N, K)")
    return values


def _task(config: Any, task: str, reason: str) -> str:
    """`task` (classification), unless data.task asks for a task without classes."""
    if config.task != "auto" and not tasks.get(config.task).classes:
        raise DataError(f"data.task is {config.task}, but {reason}", f"set data.task: {task}, or fix the labels")
    return task


def _named_classes(flat: dict[str, numpy.ndarray], config: Any) -> tuple[dict[str, Tensor], list[str]]:
    strings = {split: numpy.array([str(value) for value in values]) for split, values in flat.items()}
    found = sorted(set().union(*(set(values.tolist()) for values in strings.values())))
    names = list(config.class_names) if config.class_names is not None else found
    unknown = [name for name in found if name not in names]
    if unknown:
        raise DataError(
            f"the label {unknown[0]!r} is not in data.class_names ({', '.join(names)})",
            "name every class in data.class_names, or fix the labels",
        )
    lookup = {name: index for index, name in enumerate(names)}
    return {split: torch.tensor([lookup[v] for v in values.tolist()], dtype=torch.long) for split, values in
            strings.items()}, names  # fmt: skip
