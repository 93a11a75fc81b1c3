"""A bundle's scores → the dicts `Run.predict` gives (lamina/tasks/__init__.py Task.decode), in numpy: a class
with its probability and every class's, decided at a two-class run's threshold record; or a regression's values.

    >>> import numpy
    >>> record = {"positive_class": "spam", "positive_index": 1, "value": 0.2}
    >>> decide(record, numpy.array([[0.9, 0.1], [0.7, 0.3]]), ["ham", "spam"]).tolist()
    [0, 1]
"""

from __future__ import annotations

from typing import Any

import numpy

__all__ = ["decide", "positive_index", "decode"]


def positive_index(record: dict, class_names: list[str] | None) -> int:
    """The positive class of a threshold record (lamina/tasks/decisions.py positive_index): its index, or that of
    its class name; ValueError when neither fits a two-class run."""
    index = record.get("positive_index")
    if index is None and class_names and record.get("positive_class") in class_names:
        index = class_names.index(record["positive_class"])
    if index is None and str(record.get("positive_class")) in ("0", "1"):
        index = int(record["positive_class"])
    if type(index) is not int or index not in (0, 1):
        raise ValueError(f"positive class {record.get('positive_class')!r} is not one of the two classes")
    return index


def decide(record: dict, scores: numpy.ndarray, class_names: list[str] | None) -> numpy.ndarray:
    """Class indices (N,) from two-class `scores` (N, 2): the positive class where its probability is at least the
    threshold, the other class below it (lamina/tasks/decisions.py decide)."""
    positive = positive_index(record, class_names)
    called = scores[:, positive] >= record["value"]
    return numpy.where(called, positive, 1 - positive)


def decode(
    scores: numpy.ndarray, labels: list[str], classes: bool, class_names: list[str] | None, threshold: dict | None
) -> list[dict[str, Any]]:
    """One dict per sample. With `classes` (classification): {"input", "label", "probability", "probabilities"},
    plus "threshold" where a two-class run decides at its threshold record. Otherwise {"input", "prediction"}:
    one number, or a list for several targets."""
    if classes:
        names = class_names or [str(i) for i in range(scores.shape[1])]
        decided = scores.argmax(axis=1) if threshold is None else decide(threshold, scores, class_names)
        results = []
        for label, row, index in zip(labels, scores, decided.tolist(), strict=True):
            result = {
                "input": label,
                "label": names[index],
                "probability": float(row[index]),
                "probabilities": {name: round(float(p), 6) for name, p in zip(names, row, strict=True)},
            }
            results.append(result if threshold is None else {**result, "threshold": threshold["value"]})
        return results
    results = []
    for label, row in zip(labels, scores, strict=True):
        values = [float(v) for v in row]
        results.append({"input": label, "prediction": values[0] if len(values) == 1 else values})
    return results
