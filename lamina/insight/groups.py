"""The group audit of a run: per-group figures, gaps and worst group with bootstrap intervals for every split and
every group attribute (data.groups), and per-group decision thresholds (train.group_thresholds), chosen on val and
applied to every split. The math is in lamina/insight/fairness.py, the terminal text in group_lines.py, the chart
in group_plots.py, what `Run` calls in group_runs.py; the run layer and the pipeline
hand this module the predictions and each sample's group, and it never reads a config.

A summary's "groups" entry, per attribute (docs/insight.md, "Groups and fairness"):

    {"source": ..., "unseen": [...], "interval": {"method": "bootstrap percentile", "resamples": R, "level": 0.95},
     "decisions": ..., "splits": {split: {"groups": {name: {"count", "accuracy": {"value", "low", "high"}, ...}},
     "gaps": {...}, "worst_group": {"name", "accuracy"}}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lamina.insight.fairness import FairnessSamples, pair_difference, percentile_interval, widest_gap
from lamina.insight.group_plots import write_group_plots
from lamina.tasks.decisions import RULE, choose_threshold, positive_index, rates_at

__all__ = [
    "RESAMPLES",
    "SMALL_GROUP",
    "audit_groups",
    "audit_split",
    "decided_classes",
    "choose_group_thresholds",
    "group_threshold_effect",
    "group_sources",
    "group_summary",
]

RESAMPLES = 1000  # bootstrap resamples per split and attribute (≈0.4 s for 10,000 samples on one core)
LEVEL = 0.95
SMALL_GROUP = 5  # a group with fewer samples gets no interval and is left out of the gaps and the worst group
SMALL_NOTE = f"fewer than {SMALL_GROUP} samples: no interval; left out of the gaps and the worst group"
PER_GROUP = "per-group thresholds (train.group_thresholds)"


def decided_classes(
    scores: Tensor,
    class_names: list[str] | None,
    threshold: Mapping[str, Any] | None = None,
    group_thresholds: Mapping[str, Any] | None = None,
    names: list[str] | None = None,
) -> Tensor:
    """The run's decisions (N,): the most likely class; with a two-class `threshold` record, the positive class
    where its probability reaches it; with `group_thresholds` (and each sample's group in `names`), each sample at
    its group's threshold, or at the run's own for a group that has none."""
    if threshold is None:
        return scores.argmax(dim=1)
    positive = positive_index(threshold, class_names)
    values = torch.full((len(scores),), float(threshold["value"]), dtype=torch.float64)
    if group_thresholds is not None and names is not None:
        chosen = group_thresholds.get("values", {})
        values = torch.tensor([float(chosen.get(name, threshold["value"])) for name in names], dtype=torch.float64)
    called = scores[:, positive].double().cpu() >= values
    return torch.where(called, positive, 1 - positive)


def _figure(value: Tensor, low: Tensor, high: Tensor, index: Any) -> dict[str, float | None]:
    def number(tensor: Tensor) -> float | None:
        item = float(tensor[index])
        return None if item != item else round(item, 6)  # nan (nothing to divide by) → null

    return {"value": number(value), "low": number(low), "high": number(high)}


def audit_split(
    scores: Tensor,
    targets: Tensor,
    names: list[str],
    class_names: list[str] | None,
    decided: Tensor,
    positive: int | None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """One split's record for one attribute: each group's figures, the gaps and the worst group, each with its
    bootstrap interval. `decided`: the run's decisions (N,); `positive`: the positive class of a two-class run
    (its rates are reported), None for more classes (per-class recall, and one-vs-rest gaps)."""
    classes = scores.shape[1]
    confidence, top = scores.double().cpu().max(dim=1)
    targets = targets.long().cpu()
    samples = FairnessSamples(decided, targets, confidence, names, classes, correct_top=top == targets)
    observed, resampled = samples.observed, samples.resampled(resamples, seed)
    rates = {"accuracy": "accuracy", "ece": "ece"}
    if positive is not None:  # two classes: the positive class's one-vs-rest rates
        picked = {
            "true_positive_rate": ("recall", positive),
            "false_positive_rate": ("false_positive_rate", positive),
            "selection_rate": ("selection", positive),
        }
    else:
        labels = class_names or [str(index) for index in range(classes)]
        picked = {f"recall_{labels[index]}": ("recall", index) for index in range(classes)}

    def per_group(key: str, column: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        value, again = observed[key][0], resampled[key]
        if column is not None:
            value, again = value[:, column], again[:, :, column]
        return value, *percentile_interval(again), again

    figures = {name: per_group(key, None) for name, key in rates.items()}
    figures |= {name: per_group(key, column) for name, (key, column) in picked.items()}
    counts = observed["count"]
    eligible = counts >= SMALL_GROUP
    groups: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(samples.names):
        record: dict[str, Any] = {"count": int(counts[index])}
        for figure, (value, low, high, _) in figures.items():
            shown = _figure(value, low, high, index)
            record[figure] = shown if bool(eligible[index]) else shown["value"]
        if not bool(eligible[index]):
            record["note"] = SMALL_NOTE
        groups[name] = record
    components = [positive] if positive is not None else list(range(classes))
    odds = components + [classes + c for c in components]  # true then false positive rates
    labels = class_names or [str(index) for index in range(classes)]
    rates_of = [
        f"{rate} of {labels[c]!r}" for rate in ("true positive rate", "false positive rate") for c in components
    ]
    both = {
        key: torch.cat([figures_of["recall"], figures_of["false_positive_rate"]], dim=-1)
        for key, figures_of in (("observed", observed), ("resampled", resampled))
    }
    rows = {  # name: (split's figures (G, K), resampled (R, G, K), what each of the K components is)
        "accuracy": (observed["accuracy"][0].unsqueeze(1), resampled["accuracy"].unsqueeze(2), [None]),
        "demographic_parity_difference": (
            observed["selection"][0][:, components],
            resampled["selection"][:, :, components],
            [f"selection rate of {labels[c]!r}" for c in components],
        ),
        "equalized_odds_difference": (both["observed"][0][:, odds], both["resampled"][:, :, odds], rates_of),
    }
    gaps = {}
    for name, (value, again, parts) in rows.items():
        widest = widest_gap(value, eligible)
        if widest is None:  # fewer than two groups to compare
            gaps[name] = {"value": None, "low": None, "high": None}
            continue
        highest, lowest, component = widest
        gap = value[highest, component] - value[lowest, component]
        low, high = percentile_interval(pair_difference(again, highest, lowest, component))
        gaps[name] = _figure(gap.reshape(1), low.reshape(1), high.reshape(1), 0) | {
            "between": [samples.names[highest], samples.names[lowest]],
            **({"of": parts[component]} if parts[component] else {}),
        }
    accuracy, low, high, _ = figures["accuracy"]
    masked = torch.where(eligible, accuracy, torch.full_like(accuracy, float("inf")))
    worst = int(masked.argmin()) if bool(eligible.any()) else int(accuracy.argmin())
    small = [name for name, large in zip(samples.names, eligible.tolist(), strict=True) if not large]
    worst_figure = {"name": samples.names[worst], "accuracy": _figure(accuracy, low, high, worst)}
    return {"groups": groups, "gaps": gaps, "worst_group": worst_figure, **({"too_small": small} if small else {})}


def audit_groups(
    predictions: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, list[str]]],
    class_names: list[str] | None,
    threshold: Mapping[str, Any] | None = None,
    group_thresholds: Mapping[str, Any] | None = None,
    sources: Mapping[str, str] | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """summary.json's "groups": for every attribute in `groups` (attribute → split → each sample's group) and
    every split in `predictions` (split → Predictions) that the attribute covers, `audit_split` at the run's
    decisions — its `threshold` for two classes, and the `group_thresholds` record when the run has one."""
    result: dict[str, Any] = {}
    for attribute, by_split in groups.items():
        splits = {}
        for split, prediction in predictions.items():
            names = by_split.get(split)
            if names is None or len(names) != len(prediction.targets) or not len(names):
                continue
            decided = _decisions(prediction.scores, class_names, threshold, group_thresholds, groups, split)
            positive = positive_index(threshold, class_names) if threshold is not None else None
            if positive is None and prediction.scores.shape[1] == 2:
                positive = int(getattr(prediction, "positive", 1))
            splits[split] = audit_split(
                prediction.scores, prediction.targets, list(names), class_names, decided, positive, resamples, seed
            )
        if not splits:
            continue
        unseen = sorted(set(by_split.get("test", [])) - set(by_split.get("train", [])))
        result[attribute] = {
            "source": (sources or {}).get(attribute, "data.groups"),
            "unseen": unseen,
            "interval": {"method": "bootstrap percentile", "resamples": resamples, "level": LEVEL},
            "decisions": _decision_words(threshold, group_thresholds),
            "splits": splits,
        }
    return result


def _decisions(scores, class_names, threshold, group_thresholds, groups, split) -> Tensor:
    attribute = (group_thresholds or {}).get("attribute")
    names = groups.get(attribute, {}).get(split) if attribute else None
    return decided_classes(scores.cpu(), class_names, threshold, group_thresholds if names else None, names)


def _decision_words(threshold, group_thresholds) -> str:
    if group_thresholds is not None:
        return f"{PER_GROUP}, by {group_thresholds['attribute']}"
    return "the run's threshold" if threshold is not None else "the most likely class"


# ---- per-group thresholds (two classes) ------------------------------------------------------------------


def choose_group_thresholds(
    scores: Tensor,
    targets: Tensor,
    names: list[str],
    attribute: str,
    threshold: Mapping[str, Any],
    class_names: list[str] | None,
) -> dict[str, Any]:
    """summary.json's "group_thresholds": a threshold per group of `attribute`, chosen on val (`scores`, `targets`,
    each sample's group `names`) by the rule of the run's own `threshold`. A group with fewer than SMALL_GROUP
    samples or only one class in val gets none, and decides at the run's threshold (its "fallback"), as do groups
    val does not have."""
    positive = positive_index(threshold, class_names)
    values, without = {}, {}
    for name in sorted(set(names)):
        mask = torch.tensor([group == name for group in names])
        group_targets = targets[mask]
        if len(group_targets) < SMALL_GROUP:
            without[name] = f"only {len(group_targets)} in val"
        elif len(torch.unique(group_targets)) < 2:
            without[name] = "one class in val"
        else:
            values[name] = choose_threshold(scores[mask], group_targets, positive, class_names)["value"]
    return {
        "attribute": attribute,
        "positive_class": threshold.get("positive_class"),
        "chosen_on": "val",
        "rule": threshold.get("rule", RULE),
        "values": values,
        "fallback": {
            "value": threshold["value"],
            "groups": without,
            "note": f"groups without a threshold of their own (not in val, under {SMALL_GROUP} samples or one class "
            "there) decide at the run's threshold",
        },
    }


def group_threshold_effect(
    predictions: Mapping[str, Any],
    names: Mapping[str, list[str]],
    threshold: Mapping[str, Any],
    record: Mapping[str, Any],
    class_names: list[str] | None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Per split, what the per-group thresholds change: accuracy, sensitivity, specificity and the gaps between
    the attribute's groups at the run's threshold ("without") and at the per-group ones ("with"), and the split's
    groups that fall back to the run's threshold."""
    positive = positive_index(threshold, class_names)
    effect = {}
    for split, prediction in predictions.items():
        split_names = names.get(split)
        if split_names is None or len(split_names) != len(prediction.targets) or not len(split_names):
            continue
        scores, targets = prediction.scores.cpu(), prediction.targets.cpu()
        entry: dict[str, Any] = {}
        for label, chosen in (("without", None), ("with", record)):
            decided = decided_classes(scores, class_names, threshold, chosen, list(split_names))
            audit = audit_split(scores, targets, list(split_names), class_names, decided, positive, resamples, seed)
            called = (decided == positive).double()
            rates = rates_at(called, targets == positive, 0.5)
            entry[label] = {
                **{key: round(rates[key], 6) for key in ("accuracy", "sensitivity", "specificity")},
                "gaps": audit["gaps"],
            }
        entry["fallback_groups"] = sorted(set(split_names) - set(record["values"]))
        effect[split] = entry
    return effect


# ---- at the end of training --------------------------------------------------------------------------------


def group_sources(preprocessing: Mapping[str, Any]) -> dict[str, str]:
    """Where each attribute's groups come from, in one line, as the data set recorded it (data.json's
    preprocessing "groups": {attribute: text or {"source": text}}, or a list of {"name", ...} entries)."""
    recorded = preprocessing.get("groups") if isinstance(preprocessing, Mapping) else None
    if isinstance(recorded, list):
        recorded = {str(e.get("name")): e for e in recorded if isinstance(e, Mapping) and e.get("name")}
    if not isinstance(recorded, Mapping):
        return {}
    sources = {}
    for attribute, entry in recorded.items():
        if isinstance(entry, str):
            sources[str(attribute)] = entry
        elif isinstance(entry, Mapping):
            text = entry.get("source") or ", ".join(f"{k} {v}" for k, v in entry.items() if k != "name")
            sources[str(attribute)] = str(text)
    return sources


def group_summary(
    plots: Path,
    predictions: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, list[str]]],
    class_names: list[str] | None,
    threshold: Mapping[str, Any] | None,
    attribute: str | None = None,
    sources: Mapping[str, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary fields of the group audit at the end of training: "groups" (each attribute with its chart) and,
    when `attribute` names the groups of per-group thresholds (a two-class run with a `threshold`),
    "group_thresholds" chosen on val with their effect on every split."""
    fields: dict[str, Any] = {}
    chosen = None
    val_names = groups.get(attribute, {}).get("val") if attribute else None
    if threshold is not None and val_names and "val" in predictions:
        val = predictions["val"]
        names = list(val_names)
        chosen = choose_group_thresholds(val.scores.cpu(), val.targets.cpu(), names, attribute, threshold, class_names)
        effect = group_threshold_effect(predictions, groups[attribute], threshold, chosen, class_names, seed=seed)
        fields["group_thresholds"] = {**chosen, "splits": effect}
    audit = audit_groups(predictions, groups, class_names, threshold, chosen, sources, seed=seed)
    for name, path in write_group_plots(plots, audit).items():
        audit[name]["plot"] = path
    return {**fields, "groups": audit} if audit else fields
