"""What `Run` (lamina/run.py) asks of the group audit: the audit of a split it evaluated, and predictions decided
at per-group thresholds — each input at its group's threshold when the input's group is known (given, or a
DataFrame's data.groups column), else at the run's own, which each result then says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lamina.insight.groups import audit_groups, group_sources

__all__ = ["bundle_audit", "input_groups", "with_group_thresholds", "group_decisions"]


def input_groups(inputs: Any, groups: Any, entries: Any, attribute: str) -> list[str] | None:
    """Each input's group of `attribute` for per-group thresholds: `groups` as given (one name per input), else a
    DataFrame's column that data.groups (`entries`) reads the attribute from; None when neither says."""
    if groups is not None:
        return [str(name) for name in groups]
    for entry in entries or []:
        read = entry if isinstance(entry, Mapping) else getattr(entry, "__dict__", {})
        column = read.get("column")
        if read.get("name") == attribute and column and hasattr(inputs, "columns") and column in inputs.columns:
            return [str(name) for name in inputs[column]]
    return None


def with_group_thresholds(results: list[dict], record: Mapping[str, Any], names: list[str] | None) -> list[dict]:
    """Two-class predictions decided at each input's group threshold (`record`: summary.json's
    "group_thresholds"); each result names its "group". Without the inputs' groups (`names` None) the results keep
    the run's threshold, and each says so in a "note"."""
    if names is None:
        note = f"decided at the run's threshold: the input's {record['attribute']} is not known (pass groups=)"
        return [{**result, "note": note} for result in results]
    if len(names) != len(results):
        raise ValueError(f"{len(names)} groups for {len(results)} inputs")
    positive, decided = record.get("positive_class"), []
    for result, name in zip(results, names, strict=True):
        value = record["values"].get(name, record["fallback"]["value"])
        other = next(name for name in result["probabilities"] if name != positive)
        label = positive if result["probabilities"][positive] >= value else other
        decided.append(
            {**result, "label": label, "probability": result["probabilities"][label], "threshold": value, "group": name}
        )
    return decided


def group_decisions(
    results: list[dict], summary: Mapping[str, Any], threshold: Any, inputs: Any, groups: Any, entries: Any
) -> list[dict]:
    """`Run.predict`'s results, decided at each input's group threshold when the run has per-group thresholds (its
    `summary`'s "group_thresholds") and a two-class `threshold`; unchanged otherwise."""
    record = summary.get("group_thresholds")
    if not record or threshold is None:
        return results
    return with_group_thresholds(results, record, input_groups(inputs, groups, entries, record["attribute"]))


def bundle_audit(
    split: str, predictions: Any, data: Any, threshold: Mapping[str, Any] | None, summary: Mapping[str, Any], seed: int
) -> dict[str, Any]:
    """The audit of one split's `predictions` by every attribute of `data.groups` (a DataBundle), at the run's
    decisions (its `threshold`, and the "group_thresholds" its `summary` holds): `Run.evaluate`'s "groups"."""
    sources = group_sources(data.preprocessing)
    class_names, chosen = data.spec.class_names, summary.get("group_thresholds")
    return audit_groups({split: predictions}, data.groups, class_names, threshold, chosen, sources, seed=seed)
