"""The report's "Known limits", written from the run's facts (test set size, class balance, unseen groups, energy
that was estimated, the doctor's warnings, the data's warnings), and the interval arithmetic they need."""

from __future__ import annotations

import math
from typing import Any

from lamina.report.document import entry, listed, number
from lamina.report.records import RunRecords

__all__ = ["wilson_interval", "class_counts", "accuracy_interval", "known_limits"]

WIDE = 0.05  # a 95 % interval wider than ± 5 points is called wide
SPREAD = 0.2  # per-class recalls further apart than this are a limit
IMBALANCED = 3.0  # largest class / smallest class from which the balance is a limit


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default): unlike ± 1.96·√(p(1−p)/n) it stays inside
    [0, 1] and is honest for small n and proportions near 0 or 1.

    Example:
        >>> low, high = wilson_interval(126, 156)
        >>> round(low, 4), round(high, 4)
        (0.7388, 0.8618)
        >>> wilson_interval(0, 0)
        (0.0, 1.0)
    """
    if trials <= 0:
        return 0.0, 1.0
    proportion = successes / trials
    denominator = 1 + z * z / trials
    centre = (proportion + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(proportion * (1 - proportion) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _matrix(value: Any) -> list[list[int]] | None:
    if isinstance(value, list) and value and all(isinstance(row, list) and len(row) == len(value) for row in value):
        return value
    return None


def class_counts(records: RunRecords) -> dict[str, list[int]]:
    """Samples per class of each split: data.json's facts, else (runs before them) the rows of val's and test's
    confusion matrices (rows: true class)."""
    counts = records.facts.get("class_counts")
    if isinstance(counts, dict) and counts:
        return {split: row for split, row in counts.items() if isinstance(row, list)}
    found = {}
    for split, values in records.metrics.items():
        matrix = _matrix(values.get("confusion_matrix"))
        if matrix is not None:
            found[split] = [sum(row) for row in matrix]
    return found


def accuracy_interval(records: RunRecords, split: str) -> tuple[int, int, float, float] | None:
    """(correct, samples, low, high) of the split's accuracy from its confusion matrix, with a Wilson interval."""
    matrix = _matrix(records.metrics.get(split, {}).get("confusion_matrix"))
    if matrix is None:
        return None
    correct, total = sum(matrix[i][i] for i in range(len(matrix))), sum(map(sum, matrix))
    return (correct, total, *wilson_interval(correct, total))


def known_limits(records: RunRecords) -> list[str]:
    """Sentences, one per limit the records show; none is claimed that the records do not hold."""
    limits: list[str] = []
    status = records.summary.get("status")
    budget = records.summary.get("budget")
    if status == "budget" and isinstance(budget, dict):
        limits.append(
            f"Training stopped when its {budget.get('reached', '?')} budget was reached, before its last epoch: resume "
            "it with a larger budget to finish it."
        )
    elif status != "completed":
        limits.append(f"The run's status is {status!r}, not 'completed': its figures are of unfinished weights.")
    split = "test" if "test" in records.metrics else "val"
    found = accuracy_interval(records, split)
    if found is not None and (found[3] - found[2]) / 2 > WIDE:
        correct, total, low, high = found
        limits.append(
            f"The {split} set is small ({total:,} samples): its accuracy {correct / total:.4f} has a 95 % interval of "
            f"[{low:.4f}, {high:.4f}] (Wilson); differences between runs smaller than that are within noise."
        )
    names = records.class_names
    for which, counts in class_counts(records).items():
        if which == "train" or (which == split and "train" not in class_counts(records)):
            present = [count for count in counts if count > 0]
            if present and min(present) > 0 and max(present) / min(present) >= IMBALANCED:
                largest, smallest = counts.index(max(present)), counts.index(min(present))
                limits.append(
                    f"The classes are imbalanced in {which}: {_name(names, largest)!r} has {max(present):,} samples, "
                    f"{_name(names, smallest)!r} {min(present):,} ({max(present) / min(present):.1f}×); accuracy "
                    "favours the large classes — read the per-class recall."
                )
            break
    limits += _recall_spread(records, split)
    limits += _group_limits(records.summary.get("groups"))
    limits += _leakage(records.facts.get("duplicates"))
    energy = records.summary.get("energy")
    if isinstance(energy, dict) and energy.get("label") == "estimated":
        limits.append(
            f"The energy ({number(energy.get('joules'), 1)} J) and CO2e are estimated ({energy.get('method')}), "
            "not measured: read them as an order of magnitude."
        )
    calibration = records.summary.get("calibration")
    if isinstance(calibration, dict):
        measured = entry(calibration, "splits", split)
        if isinstance(measured.get("ece"), int | float) and measured["ece"] > 0.05:
            limits.append(
                f"The probabilities are miscalibrated on {split} (ECE {measured['ece']:.4f}): a predicted "
                "probability is not the chance of being right."
            )
    for finding in records.doctor or []:
        if finding.get("severity") in ("error", "warning"):
            limits.append(f"The training doctor warns ({finding.get('kind')}): {finding.get('evidence')}")
    warnings = [*listed(records.data.get("warnings")), *listed(records.summary.get("warnings"))]
    limits += [f"Data warning: {warning}" for warning in dict.fromkeys(map(str, warnings))]
    return limits


def _name(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else str(index)


def _recall_spread(records: RunRecords, split: str) -> list[str]:
    """A class recalled far less often than another (by the most likely class): accuracy hides it."""
    matrix = _matrix(records.metrics.get(split, {}).get("confusion_matrix"))
    if matrix is None:
        return []
    recalls = {index: row[index] / sum(row) for index, row in enumerate(matrix) if sum(row)}
    if len(recalls) < 2:
        return []
    low, high = min(recalls, key=recalls.get), max(recalls, key=recalls.get)
    if recalls[high] - recalls[low] <= SPREAD:
        return []
    names = records.class_names
    return [
        f"On {split}, {_name(names, low)!r} is recalled {recalls[low]:.4f} of the time and {_name(names, high)!r} "
        f"{recalls[high]:.4f} (by the most likely class): the model errs mostly on some classes."
    ]


def _group_limits(groups: Any) -> list[str]:
    limits = []
    for attribute, record in (groups or {}).items() if isinstance(groups, dict) else []:
        if not isinstance(record, dict):
            continue
        unseen = listed(record.get("unseen"))
        if unseen:
            limits.append(
                f"{len(unseen)} {attribute} group(s) in test never appear in train ({', '.join(map(str, unseen))}): "
                "their scores measure generalization to new groups."
            )
        test = entry(record, "splits", "test")
        gap = entry(test, "gaps", "accuracy")
        if all(isinstance(gap.get(key), int | float) for key in ("value", "low", "high")) and gap["low"] > 0:
            worst = entry(test, "worst_group")
            limits.append(
                f"Accuracy differs across {attribute} groups in test by {gap['value']:.4f} (95 % interval "
                f"[{gap['low']:.4f}, {gap['high']:.4f}], above zero); the worst group is {worst.get('name')!r}."
            )
    return limits


def _leakage(duplicates: Any) -> list[str]:
    limits = []
    for split, record in (duplicates or {}).items() if isinstance(duplicates, dict) else []:
        if split != "train" and isinstance(record, dict) and record.get("count"):
            limits.append(
                f"{record['count']:,} of the {record.get('of', 0):,} {split} samples are copies of training samples: "
                f"the {split} scores partly measure memory."
            )
    return limits
