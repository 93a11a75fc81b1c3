"""The model card's results: metrics of val and test (accuracy with a Wilson interval), the two-class threshold,
confusion matrices with class names, per-class recall and precision, per-group figures with their intervals and
gaps, and calibration."""

from __future__ import annotations

from typing import Any

from lamina.report.document import Absent, Paragraph, Picture, Section, Table, entry, interval, number
from lamina.report.limits import accuracy_interval
from lamina.report.records import RunRecords
from lamina.tasks import tasks

__all__ = ["results"]

SPLIT_ORDER = {"test": 0, "val": 1, "train": 2}  # per-group tables: test first
LABELS = {"ece": "ECE", "mce": "MCE", "brier": "Brier", "nll": "NLL"}  # the calibration figures, as printed
SHOWN_CLASSES = 40  # a confusion matrix with more classes is left to plots/confusion_matrix.png


def _classifies(records: RunRecords) -> bool:
    task = records.spec.get("task")
    return task in tasks.names() and tasks.get(task).classes


def results(records: RunRecords) -> list[Section]:
    metrics = records.metrics
    if not metrics:
        return [Section("Results", [Absent("Val and test metrics", "the run did not finish")])]
    splits = [split for split in ("val", "test") if split in metrics] or list(metrics)
    names = list(dict.fromkeys(name for split in splits for name, value in metrics[split].items() if _scalar(value)))
    rows = [[name] + [number(metrics[split].get(name)) for split in splits] for name in names]
    intervals = [accuracy_interval(records, split) for split in splits]
    if any(found is not None for found in intervals):
        rows.append(
            ["accuracy, 95 % interval (Wilson)"]
            + [f"[{found[2]:.4f}, {found[3]:.4f}] of {found[1]:,}" if found else "-" for found in intervals]
        )
    blocks: list = [Table(["metric", *splits], rows, "Metrics")]
    threshold = records.summary.get("threshold")
    if isinstance(threshold, dict):
        blocks.append(Paragraph(_threshold_sentence(threshold)))
    sections = [Section("Results", blocks)]
    if _classifies(records):
        sections.append(Section("Confusion matrix and per-class figures", _per_class(records, splits[-1]), level=3))
    for stem in ("roc_curve", "precision_recall_curve"):
        if stem in records.plots:
            sections[-1].blocks.append(Picture(records.plots[stem], stem.replace("_", " ")))
    sections.append(Section("Groups and fairness", _fairness(records), level=3))
    if _classifies(records):
        sections.append(Section("Calibration", _calibration(records), level=3))
    return sections


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _threshold_sentence(record: dict) -> str:
    value = record.get("value")
    shown = f"{value:.4f}" if isinstance(value, int | float) else str(value)
    return (
        f"Two classes: the decision threshold is {shown} on the probability of {record.get('positive_class')!r} "
        f"(chosen on {record.get('chosen_on', 'val')}, {record.get('rule', 'max Youden’s J')}); the *_at_threshold "
        "rows above are decided at it, the other rows by the most likely class."
        + (f" {record['note']}" if record.get("note") else "")
    )


def _per_class(records: RunRecords, split: str) -> list:
    values, names = records.metrics.get(split, {}), records.class_names
    matrix = values.get("confusion_matrix")
    if not isinstance(matrix, list) or not matrix:
        return [Absent(f"The {split} confusion matrix")]
    labels = [names[index] if index < len(names) else str(index) for index in range(len(matrix))]
    blocks: list = []
    if len(matrix) <= SHOWN_CLASSES:
        blocks.append(_confusion(matrix, labels, f"{split}: rows the true class, columns the most likely class"))
        decided = values.get("confusion_matrix_at_threshold")
        if isinstance(decided, list) and decided:
            blocks.append(_confusion(decided, labels, f"{split} at the threshold: columns the decided class"))
    elif "confusion_matrix" in records.plots:
        blocks.append(Picture(records.plots["confusion_matrix"], f"{split} confusion matrix"))
    rows = []
    for index, label in enumerate(labels):
        true = sum(matrix[index])
        predicted = sum(row[index] for row in matrix)
        recall = matrix[index][index] / true if true else None
        precision = matrix[index][index] / predicted if predicted else None
        rows.append([label, number(true), number(recall), number(precision)])
    blocks.append(Table(["class", "samples", "recall", "precision"], rows, f"Per class ({split})"))
    return blocks


def _confusion(matrix: list[list[int]], labels: list[str], caption: str) -> Table:
    rows = [[labels[index], *map(number, row)] for index, row in enumerate(matrix)]
    return Table(["true \\ predicted", *labels], rows, caption)


def _fairness(records: RunRecords) -> list:
    groups = records.summary.get("groups")
    if not isinstance(groups, dict) or not groups:
        return [Absent("Per-group metrics, intervals and gaps", "set data.groups to audit them")]
    blocks: list = []
    for attribute, record in groups.items():
        if not isinstance(record, dict):
            continue
        about = record.get("interval") if isinstance(record.get("interval"), dict) else {}
        blocks.append(
            Paragraph(
                f"{attribute}: intervals are {about.get('method', 'bootstrap')} {about.get('level', 0.95):.0%} "
                f"intervals over {number(about.get('resamples'))} resamples, shown as value [low, high]."
            )
        )
        splits = entry(record, "splits")
        for split in sorted(splits, key=lambda name: SPLIT_ORDER.get(name, len(SPLIT_ORDER))):
            blocks += _group_tables(attribute, split, splits[split])
        if f"groups-{attribute}" in records.plots:
            blocks.append(Picture(records.plots[f"groups-{attribute}"], f"accuracy per {attribute} group"))
    return blocks


def _group_tables(attribute: str, split: str, record: Any) -> list:
    if not isinstance(record, dict):
        return []
    per_group = {name: values for name, values in entry(record, "groups").items() if isinstance(values, dict)}
    figures = list(dict.fromkeys(key for values in per_group.values() for key in values if key != "count"))
    # one recall per class: with more than a few classes, a table of its own (classes × groups), values only
    recalls = [key for key in figures if key.startswith("recall_")] if len(figures) > 8 else []
    figures = [key for key in figures if key not in recalls]
    rows = [
        [name, number(values.get("count")), *(interval(values.get(key)) for key in figures)]
        for name, values in per_group.items()
    ]
    tables = [Table([attribute, "count", *figures], rows, f"{split}: per {attribute} group")]
    if recalls:
        rows = [
            [key.removeprefix("recall_"), *(number(_value(values.get(key))) for values in per_group.values())]
            for key in recalls
        ]
        caption = f"{split}: recall of each class per {attribute} group (intervals in summary.json)"
        tables.append(Table(["class", *per_group], rows, caption))
    gaps = entry(record, "gaps")
    gap_rows = [[name.replace("_", " ") + _between(value), interval(value)] for name, value in gaps.items()]
    worst = record.get("worst_group")
    if isinstance(worst, dict):
        gap_rows.append([f"worst group: {worst.get('name')}", f"accuracy {interval(worst.get('accuracy'))}"])
    if gap_rows:
        tables.append(Table(["gap", "value [95 % interval]"], gap_rows, f"{split}: gaps across {attribute} groups"))
    return tables


def _calibration(records: RunRecords) -> list:
    calibration = records.summary.get("calibration")
    if not isinstance(calibration, dict):
        return [Absent("Calibration (ECE, MCE, Brier score, reliability diagram)")]
    keys = tuple(LABELS)
    splits = entry(calibration, "splits")
    rows = [[split, *(number(entry(splits, split).get(key)) for key in keys)] for split in splits]
    blocks: list = [
        Paragraph(f"Expected and maximum calibration error over {calibration.get('bins', 15)} equal-width bins."),
        Table(["split", *LABELS.values()], rows, "Calibration"),
    ]
    temperature = calibration.get("temperature")
    if isinstance(temperature, dict):
        blocks.append(
            Paragraph(
                f"Temperature scaling: T = {number(temperature.get('value'))}, fitted on "
                f"{temperature.get('fitted_on', 'val')}; predictions divide the logits by T."
            )
        )
        before, after = entry(temperature, "before"), entry(temperature, "after")
        rows = [
            [f"{split} {LABELS[key]}", number(entry(before, split).get(key)), number(entry(after, split).get(key))]
            for split in before
            for key in keys
            if key in entry(before, split)
        ]
        blocks.append(Table(["figure", "before", "after"], rows, "Before and after temperature scaling"))
    plot = calibration.get("plot")
    path = records.folder.path / plot if isinstance(plot, str) else None
    if path is not None and path.is_file() and path.resolve().is_relative_to(records.folder.path.resolve()):
        blocks.append(Picture(path, "reliability diagram"))
    elif "reliability" in records.plots:
        blocks.append(Picture(records.plots["reliability"], "reliability diagram"))
    return blocks


def _value(figure: Any) -> Any:
    """A figure's value: {"value", "low", "high"} or a plain number."""
    return figure.get("value") if isinstance(figure, dict) else figure


def _between(figure: Any) -> str:
    """' (theo − george)': the two groups a gap is the difference of, when the record names them."""
    pair = figure.get("between") if isinstance(figure, dict) else None
    return f" ({pair[0]} − {pair[1]})" if isinstance(pair, list) and len(pair) == 2 else ""
