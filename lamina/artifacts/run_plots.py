"""The figures of a run, built from what it recorded: learning curves by epoch (and by step where metrics.jsonl
has step rows: language models train few, long epochs), per-layer gradient norms, and for two-class runs the
ROC and precision-recall curves of val and test with the operating point of the threshold chosen on val.

Each `…_figure` function returns the Figure (plain values, read by tests); `write_run_plots` saves them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lamina.artifacts.plots import Figure, confusion_chart, line_panel, save_figure
from lamina.tasks.decisions import average_precision, positive_index, precision_recall_curve, rates_at, roc_curve
from lamina.training.metrics import Predictions, roc_auc

__all__ = [
    "learning_curves_figure",
    "gradient_norms_figure",
    "roc_figure",
    "precision_recall_figure",
    "write_run_plots",
    "MOST_LAYERS",
]

MOST_LAYERS = 12  # gradient norms of at most this many layers: the first and the last halves
UNIT = ((-0.02, 1.02), (-0.02, 1.02))  # rates and probabilities, with room for points on the edges


def learning_curves_figure(history: list[dict], steps: list[dict], monitor: str) -> Figure:
    """Loss by epoch, the monitored metric by epoch (unless it is the loss), and — with at least two step rows —
    the loss by step: each logged training step's loss, and val at the step each epoch ended."""
    epochs = [row["epoch"] for row in history]

    def column(key: str) -> list[float]:
        return [row.get(key, math.nan) for row in history]

    panels = [line_panel("loss", {"train": (epochs, column("train.loss")), "val": (epochs, column("val.loss"))})]
    main = monitor.split(".", 1)[1]
    if main != "loss":
        series = {"train": (epochs, column(f"train.{main}"))} if f"train.{main}" in history[0] else {}
        panels.append(line_panel(main, {**series, "val": (epochs, column(f"val.{main}"))}))
    if len(steps) >= 2:
        by_step = {
            "train (logged steps)": ([row["step"] for row in steps], [row.get("loss", math.nan) for row in steps]),
            "val": ([row.get("step", math.nan) for row in history], column("val.loss")),
        }
        panels.append(line_panel("loss by step", by_step, x_label="step"))
    return Figure(panels)


def gradient_norms_figure(rows: list[dict]) -> Figure:
    """log10 of each layer's gradient norm over the logged steps; at most MOST_LAYERS layers (the first and the
    last halves), each with a look of its own."""
    layers = list(rows[-1]["layers"])
    half = MOST_LAYERS // 2
    shown = layers if len(layers) <= MOST_LAYERS else layers[:half] + layers[-half:]
    series = {
        layer: (
            [row["step"] for row in rows if layer in row["layers"]],
            [math.log10(max(row["layers"][layer], 1e-12)) for row in rows if layer in row["layers"]],
        )
        for layer in shown
    }
    title = "log10 gradient norm per layer" + (f" ({len(shown)} of {len(layers)})" if len(shown) < len(layers) else "")
    return Figure([line_panel(title, series, x_label="step")])


def _positive_scores(predictions: Predictions, record: Mapping, class_names: list[str] | None):
    positive = positive_index(record, class_names)
    return predictions.scores[:, positive], predictions.targets == positive


def _threshold_note(record: Mapping) -> str:
    return f"threshold {record['value']:.3f} for {record['positive_class']!r} (chosen on val)"


def roc_figure(predictions: Mapping[str, Predictions], record: Mapping, class_names: list[str] | None) -> Figure:
    """Sensitivity against 1 - specificity of each split, ROC-AUC in the legend, the threshold's point marked."""
    series, marks = {}, {}
    for split, split_predictions in predictions.items():
        scores, positives = _positive_scores(split_predictions, record, class_names)
        false_rate, true_rate, _ = roc_curve(scores, positives)
        label = f"{split} (AUC {roc_auc(scores, positives):.3f})"
        series[label] = (false_rate.tolist(), true_rate.tolist())
        rates = rates_at(scores, positives, record["value"])
        marks[label] = [(1 - rates["specificity"], rates["sensitivity"])]
    series["chance"] = ([0.0, 1.0], [0.0, 1.0])
    title = f"ROC: sensitivity to {record['positive_class']!r}"
    panel = line_panel(title, series, "1 - specificity", False, UNIT, marks, [_threshold_note(record)])
    return Figure([panel])


def precision_recall_figure(
    predictions: Mapping[str, Predictions], record: Mapping, class_names: list[str] | None
) -> Figure:
    """Precision against recall (sensitivity) of each split, average precision in the legend, the threshold's
    point marked."""
    series, marks = {}, {}
    for split, split_predictions in predictions.items():
        scores, positives = _positive_scores(split_predictions, record, class_names)
        precision, recall, _ = precision_recall_curve(scores, positives)
        label = f"{split} (AP {average_precision(scores, positives):.3f})"
        series[label] = (recall.tolist(), precision.tolist())
        rates = rates_at(scores, positives, record["value"])
        marks[label] = [(rates["sensitivity"], rates["precision"])] if rates["precision"] == rates["precision"] else []
    title = f"precision and recall of {record['positive_class']!r}"
    panel = line_panel(title, series, "recall (sensitivity)", False, UNIT, marks, [_threshold_note(record)])
    return Figure([panel])


def write_run_plots(
    folder: Path,
    history: list[dict],
    steps: list[dict],
    monitor: str,
    final: Mapping[str, dict],
    predictions: Mapping[str, Predictions],
    facts: Mapping[str, Any],
    class_names: list[str] | None,
) -> None:
    """plots/learning_curves.png; confusion_matrix.png of test (two classes: the decisions at the threshold);
    for two-class runs roc_curve.png and precision_recall_curve.png of val and test."""
    if history:
        save_figure(learning_curves_figure(history, steps, monitor), folder / "learning_curves.png")
    test = final.get("test", {})
    record = facts.get("threshold")
    if "confusion_matrix_at_threshold" in test:
        title = f"test: decisions at {_threshold_note(record)}"
        matrix = test["confusion_matrix_at_threshold"]
        confusion_chart(folder / "confusion_matrix.png", matrix, class_names or [], title, columns="decided")
    elif "confusion_matrix" in test:
        confusion_chart(
            folder / "confusion_matrix.png", test["confusion_matrix"], class_names or [], "test confusion matrix"
        )
    if record is not None:
        save_figure(roc_figure(predictions, record, class_names), folder / "roc_curve.png")
        save_figure(precision_recall_figure(predictions, record, class_names), folder / "precision_recall_curve.png")
