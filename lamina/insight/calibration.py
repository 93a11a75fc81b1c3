"""How far to trust a run's probabilities: the calibration figures of val and test (ECE, MCE, Brier, NLL), the
reliability diagram, and temperature scaling fitted on val (Guo et al., 2017).

Two callers share one code path: the end of training (`calibrate_at_end`, with `train.calibrate: temperature`
fitting the temperature there) and `lamina calibrate RUN` (`recalibrate`, on an already finished run, from its
uncalibrated scores). Both return what summary.json records under "calibration":

    {"bins": 15, "splits": {split: {"ece", "mce", "brier", "nll"}}, "plot": "plots/reliability.png",
     "temperature": {"value": T, "fitted_on": "val", "fitted_by": ..., "before": {split: {...}},
                     "after": {split: {...}}}}

"splits" holds the figures of the probabilities the run gives (after the temperature, when one is fitted). The math
is in lamina/training/calibration.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lamina.artifacts.plots import save_figure
from lamina.artifacts.reliability import reliability_figure
from lamina.artifacts.run_plots import precision_recall_figure, roc_figure
from lamina.core.errors import RunError
from lamina.tasks import task_of
from lamina.tasks.decisions import positive_index
from lamina.training.calibration import (
    BINS,
    calibration_figures,
    fit_temperature,
    reliability_bins,
    temperature_scaled,
    with_temperature,
)
from lamina.training.losses import Objective
from lamina.training.metrics import Predictions, compute_metrics

__all__ = [
    "calibrate_at_end",
    "calibrated_objective",
    "recalibrate",
    "refuse_uncalibratable",
    "stored_temperature",
    "moved_threshold",
]

PLOT = "plots/reliability.png"
SUMMARY_METRICS = ("ece", "mce", "brier")  # the figures every classification run's metrics[split] holds


def calibration_step(
    predictions: Mapping[str, Predictions], fit: bool, run_dir: Path, fitted_by: str
) -> tuple[dict[str, Any], dict[str, Predictions]]:
    """The calibration record of these (uncalibrated) predictions and the predictions the run gives after it;
    `fit`: fit a temperature on val first. Draws RUN/plots/reliability.png."""
    before = {split: calibration_figures(p.scores, p.targets, BINS) for split, p in predictions.items()}
    tables = {split: reliability_bins(p.scores, p.targets, BINS) for split, p in predictions.items()}
    record: dict[str, Any] = {"bins": BINS, "splits": before, "plot": PLOT}
    if not fit:
        figure = reliability_figure(tables, _errors(before))
        save_figure(figure, run_dir / PLOT)
        return record, dict(predictions)
    validation = predictions["val"]
    temperature = fit_temperature(validation.scores, validation.targets)
    calibrated = {split: replace(p, scores=with_temperature(p.scores, temperature)) for split, p in predictions.items()}
    after = {split: calibration_figures(p.scores, p.targets, BINS) for split, p in calibrated.items()}
    after_tables = {split: reliability_bins(p.scores, p.targets, BINS) for split, p in calibrated.items()}
    record["splits"] = after
    record["temperature"] = {
        "value": temperature,
        "fitted_on": "val",
        "fitted_by": fitted_by,
        "method": "minimum negative log-likelihood on val (golden-section search on log T in [0.05, 20])",
        "before": before,
        "after": after,
    }
    figure = reliability_figure(tables, _errors(before), after_tables, _errors(after), temperature)
    save_figure(figure, run_dir / PLOT)
    return record, calibrated


def _errors(figures: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    return {split: values["ece"] for split, values in figures.items()}


def _add_metrics(
    final: dict[str, dict[str, Any]], predictions: Mapping[str, Predictions], metric_names: list[str]
) -> None:
    """metrics[split] gets ECE, MCE and Brier, and `metric_names` computed again (probabilities changed)."""
    for split, split_predictions in predictions.items():
        final.setdefault(split, {}).update(compute_metrics(split_predictions, metric_names))
        final[split].update(compute_metrics(split_predictions, list(SUMMARY_METRICS)))


def calibrate_at_end(
    final: dict[str, dict[str, Any]],
    predictions: dict[str, Predictions],
    spec: Any,
    option: str | None,
    metric_names: list[str],
    run_dir: Path,
) -> tuple[dict[str, Any] | None, dict[str, Predictions]]:
    """The end of training, before the task's report: for a classification run, the calibration record and
    reliability diagram, with `train.calibrate: temperature` a temperature fitted on val; `final` (split → metrics)
    gains ECE, MCE and Brier (and, after a temperature, the metrics of the calibrated probabilities). Returns the
    record (None for other tasks) and the predictions the run's report and threshold are to read."""
    if not task_of(spec).classes or not predictions:
        return None, predictions
    fit = option == "temperature"
    record, calibrated = calibration_step(predictions, fit, run_dir, "train.calibrate")
    _add_metrics(final, calibrated, metric_names if fit else [])
    return record, calibrated


def calibrated_objective(objective: Objective, record: Mapping[str, Any] | None) -> Objective:
    """The objective whose scores are the run's probabilities: at the record's temperature, when one was fitted."""
    temperature = (record or {}).get("temperature")
    return objective if temperature is None else temperature_scaled(objective, temperature["value"])


def stored_temperature(summary: Mapping[str, Any], path: Path, run_dir: Path) -> float | None:
    """The temperature a run's summary (at `path`) records; None for an uncalibrated run; a RunError when the entry
    is damaged."""
    record = summary.get("calibration")
    if not isinstance(record, dict) or record.get("temperature") is None:
        return None
    value = record["temperature"].get("value") if isinstance(record["temperature"], dict) else None
    if type(value) not in (int, float) or not value > 0:
        raise RunError(
            f"the calibration in {path} is damaged: its temperature {value!r} is not a number above 0",
            f"run 'lamina calibrate {run_dir}' to fit it again, or delete the 'calibration' entry",
        )
    return float(value)


def refuse_uncalibratable(run_dir: Path, spec: Any) -> None:
    """A RunError unless the run is a classification run (its scores are class probabilities)."""
    if not task_of(spec).classes:
        raise RunError(
            f"run {run_dir} is a {spec.task} run; calibration is for classification runs, whose outputs are class "
            "probabilities",
            "calibrate a classification run (image, table, text or audio classes)",
        )


def moved_threshold(value: float, positive: int, temperature: float) -> float:
    """A two-class threshold on the positive class's probability, moved to the same decisions after scaling by
    `temperature` (monotonic for two classes: p ≥ t exactly when p' ≥ t'); 0 and 1 stay where they are."""
    if not 0 < value < 1:
        return value
    row = torch.tensor([[value, 1 - value] if positive == 0 else [1 - value, value]], dtype=torch.float64)
    return float(with_temperature(row, temperature)[0, positive])


def recalibrate(
    run_dir: Path, raw: dict[str, Predictions], spec: Any, summary: Mapping[str, Any], metric_names: list[str]
) -> dict[str, Any]:
    """`lamina calibrate`: fit the temperature again on the val split of a finished run's uncalibrated predictions
    (`raw`), and return the summary fields to write: "calibration", "metrics" of val and test from the calibrated
    probabilities, and for a two-class run its threshold, moved through the change of temperature so that it makes
    the same decisions (a run without a stored threshold gets one chosen on the calibrated val split)."""
    if "val" not in raw:
        raise RunError(
            f"run {run_dir} has no val samples to fit a temperature on",
            "train it again with data.val_fraction above 0 (calibration fits on val, then reports on test)",
        )
    record, calibrated = calibration_step(raw, True, run_dir, "lamina calibrate")
    metrics = {split: dict(values) for split, values in summary.get("metrics", {}).items()}
    _add_metrics(metrics, calibrated, metric_names)
    task, fields = task_of(spec), {"calibration": record}
    stored = summary.get("threshold")
    if task.chooses_threshold(spec) and isinstance(stored, dict):
        previous = stored_temperature(summary, run_dir / "summary.json", run_dir) or 1.0
        temperature = record["temperature"]["value"]
        try:
            positive = positive_index(stored, spec.class_names)
        except ValueError as error:
            raise RunError(
                f"the decision threshold in {run_dir / 'summary.json'} is damaged: {error}",
                "copy the run folder again, or delete the 'threshold' entry to choose it again on the val split",
            ) from None
        value = moved_threshold(stored["value"], positive, temperature / previous)
        note = f"moved from {stored['value']:.4f} to the same decisions at temperature {temperature:.3g}"
        stored = {**stored, "value": value, "note": note}
    stored = stored if task.chooses_threshold(spec) else None
    added, facts = task.report(calibrated, spec, "val", stored)
    for split, values in added.items():
        metrics[split].update(values)
    fields["metrics"] = metrics
    if "threshold" in facts:
        fields["threshold"] = facts["threshold"]
        plots = {"roc_curve.png": roc_figure, "precision_recall_curve.png": precision_recall_figure}
        for name, draw in plots.items():
            save_figure(draw(calibrated, facts["threshold"], spec.class_names), run_dir / "plots" / name)
    return fields
