"""A finished (or interrupted) run: its folder, config, metrics and model, for evaluation and prediction.

`run_data` builds a run's data exactly as training did, pseudo-labels from teacher runs included: training,
evaluation and ensembles all read their data through it.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lamina.artifacts.checkpoint import checkpoint_path, load_weights
from lamina.artifacts.folder import RunFolder
from lamina.config.loading import load_config
from lamina.config.schema import Config
from lamina.core.errors import RunError
from lamina.data.build import build_data
from lamina.data.bundle import DataBundle, Split
from lamina.data.given import Given, matching_given
from lamina.data.inputs import stored_form, transform_for
from lamina.data.options import ImageOptions
from lamina.data.spec import DataSpec
from lamina.insight.calibration import recalibrate, refuse_uncalibratable, stored_temperature
from lamina.insight.doctor import Finding, diagnose
from lamina.insight.explain import Explanation, modality_for
from lamina.insight.gather import chosen_inputs, explain_data, split_texts
from lamina.insight.group_runs import bundle_audit, group_decisions
from lamina.models.registry import build_model
from lamina.tasks import task_of
from lamina.tasks.decisions import positive_index
from lamina.training.calibration import temperature_scaled
from lamina.training.evaluate import evaluate_split, model_outputs
from lamina.training.losses import Objective, build_objective
from lamina.training.metrics import Predictions, compute_metrics
from lamina.training.options import losses
from lamina.training.semi_supervised import pseudo_labeller

__all__ = ["Run", "load_run", "run_data", "SPLITS"]

SPLITS = ("train", "val", "test")


class Run:
    """A run folder and what is in it.

    Attributes:
        dir: the run folder. metrics: {"val": {...}, "test": {...}} from summary.json.
        model: the trained nn.Module (final weights; the last checkpoint for an unfinished run).

    Example:
        >>> import tempfile, lamina
        >>> trained = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 1}},
        ...                        runs_dir=tempfile.mkdtemp(), progress="quiet")
        >>> run = Run(trained.dir)
        >>> run.summary["status"], run.spec.num_classes, type(run.model).__name__
        ('completed', 10, 'MLP')
    """

    def __init__(self, path: str | Path, model: nn.Module | None = None, given: Given | None = None):
        self.folder = RunFolder.open(path)
        self.dir = self.folder.path
        self.given = given  # the data passed from Python that the run learned from, when it was trained here
        if model is not None:
            self.__dict__["model"] = model

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, status={self.summary.get('status')!r})"

    @cached_property
    def config(self) -> Config:
        return load_config(self.folder.config)

    @cached_property
    def data_record(self) -> dict:
        if not self.folder.data.is_file():
            raise RunError(f"{self.dir} has no data.json", "the run folder is incomplete; train again")
        try:
            record = json.loads(self.folder.data.read_text())
        except (OSError, ValueError) as error:
            record = error
        if not isinstance(record, dict) or not isinstance(record.get("preprocessing"), dict):
            raise RunError(f"the data.json of {self.dir} is damaged", "copy the run folder again, or train again")
        return record

    @property
    def spec(self) -> DataSpec:
        try:
            return DataSpec.from_dict(self.data_record["spec"])
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(
                f"the data.json of {self.dir} is damaged: {error!r}", "copy the run folder again, or train again"
            ) from None

    def require_completed(self, purpose: str, alternative: str = "or leave it out") -> None:
        """Raise RunError unless the run finished training (an interrupted or killed run predicts from its last
        checkpoint, which would silently weaken an ensemble or a teacher, or a score)."""
        status = self.status
        if status == "diverged":
            raise RunError(
                f"run {self.dir} diverged; {purpose} needs finished runs",
                f"train again with a fixed config, {alternative}",
            )
        if status != "completed":
            raise RunError(
                f"run {self.dir} is {status}, not completed; {purpose} needs finished runs",
                f"finish it with 'lamina train --resume {self.dir}', {alternative}",
            )

    @property
    def status(self) -> str:
        """completed, running (a live process holds its lock), stopped (it says running, but nothing is),
        interrupted, diverged, failed, damaged."""
        status = str(self.summary.get("status", "unknown"))
        return "stopped" if status == "running" and not self.folder.training_now() else status

    @property
    def weights_used(self) -> str:
        """Which weights `model` holds: the final ones, or the last checkpoint of an unfinished run."""
        if self.folder.weights.is_file():
            return f"the final weights ({self.folder.weights})"
        found = checkpoint_path(self.folder.last)
        try:
            state = json.loads((found / "state.json").read_text())["train_state"]
            if state["batch"]:
                where = f"at step {state['step']}, part-way through epoch {state['epoch'] + 1}"
            else:
                where = f"at the end of epoch {state['epoch']}"
        except (TypeError, OSError, ValueError, KeyError):
            where = "at a position it does not record"
        return f"its last checkpoint ({found}, {where})"

    @property
    def summary(self) -> dict[str, Any]:
        return self.folder.summary()

    @property
    def metrics(self) -> dict[str, Any]:
        return self.summary.get("metrics", {})

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.folder.history()

    @cached_property
    def model(self) -> nn.Module:
        model = build_model(self.config.model, self.spec)
        weights = self.folder.weights
        if not weights.is_file():
            found = checkpoint_path(self.folder.last)
            if found is None:
                raise RunError(f"run {self.dir} has no weights yet", "it stopped before its first checkpoint")
            weights = found / "model.safetensors"
        load_weights(model, weights)
        return model.eval()

    def doctor(self) -> list[Finding]:
        """The training doctor's findings on this run (lamina/insight/doctor.py), errors first: read from its
        metrics, summary, data facts and config, so a diverged or failed run is diagnosed too.

        Example:
            >>> import tempfile, lamina
            >>> trained = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 3}},
            ...                        runs_dir=tempfile.mkdtemp(), progress="quiet")
            >>> [finding.kind for finding in trained.doctor() if finding.severity != "info"]
            []
        """
        record = self.data_record if self.folder.data.is_file() else {}
        return diagnose(self.folder.rows(), self.summary, record, self.config.model_dump(mode="json"))

    def objective(self, calibrated: bool = True) -> Objective:
        """The run's loss and how its outputs become scores, at the temperature the run was calibrated with: the
        one place a run's probabilities come from (evaluate, predict, explain, ensembles, teachers).
        `calibrated=False`: the model's own probabilities."""
        loss = self.config.train.loss or losses.get(task_of(self.spec).loss).options()
        objective = build_objective(loss, self.spec, None)
        temperature = stored_temperature(self.summary, self.folder.summary_path, self.dir) if calibrated else None
        return objective if temperature is None else temperature_scaled(objective, temperature)

    def calibrate(self, data: Any = None) -> dict[str, Any]:
        """Fit a temperature on the val split's uncalibrated probabilities, as `train.calibrate: temperature` does
        after training, and record it in summary.json: ECE, MCE, Brier and NLL before and after on val and test,
        the metrics of the calibrated probabilities, plots/reliability.png; a two-class run's threshold moves to the
        same decisions (lamina/insight/calibration.py). Returns summary.json's "calibration" record.

        Example:
            >>> import tempfile, lamina
            >>> run = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 2}},
            ...                    runs_dir=tempfile.mkdtemp(), progress="quiet")
            >>> record = run.calibrate()
            >>> record["temperature"]["fitted_on"], sorted(record["splits"]), record["temperature"]["value"] > 0
            ('val', ['test', 'val'], True)
        """
        self.require_completed("calibrating")
        refuse_uncalibratable(self.dir, self.spec)
        data = run_data(self.config, self.given_data(data, "calibrating it"))
        splits = [split for split in ("val", "test") if len(data.splits.get(split, ()))]
        raw = {split: self._evaluate(data, split, False)[1] for split in splits}
        names = self.config.train.metrics or task_of(self.spec).defaults(self.spec)[1]
        summary = self.folder.update_summary(**recalibrate(self.dir, raw, self.spec, self.summary, names))
        self.__dict__.pop("decision_threshold", None)
        return summary["calibration"]

    def given_data(self, data: Any, purpose: str) -> Given | None:
        """The data passed from Python that this run learned from — `data` (checked against the fingerprint the
        run keeps) or what it was trained on in this process; None for a run that reads its data from files."""
        return matching_given(self.data_record.get("given"), data, self.given, self.dir, purpose)

    def evaluate(self, split: str = "test", allow_unfinished: bool = False, data: Any = None) -> dict[str, Any]:
        """Loss, metrics and the task's report (e.g. a confusion matrix) of the run's weights on `split`; the
        data is read again as training read it (a run trained on data passed from Python needs it again as
        `data`, unless it was trained in this process). A two-class run decides at its stored `threshold` (the
        rates and confusion matrix `…_at_threshold`, and the record itself under "threshold"), as its summary
        does; with data.groups, "groups" holds the split's group audit. An unfinished run is refused unless
        `allow_unfinished` (its last checkpoint is then scored; `weights_used` says which).

        Example:
            >>> import tempfile, lamina
            >>> run = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 2}},
            ...                    runs_dir=tempfile.mkdtemp(), progress="quiet")
            >>> metrics = run.evaluate("test")
            >>> metrics["accuracy"] == run.metrics["test"]["accuracy"], len(metrics["confusion_matrix"])
            (True, 10)
        """
        if split not in SPLITS:
            raise RunError(f"unknown split {split!r}", f"use {', '.join(SPLITS)}")
        if not allow_unfinished:
            self.require_completed("evaluating", "or pass --allow-unfinished to score its last checkpoint")
        data = run_data(self.config, self.given_data(data, "evaluating it"))
        if split not in data.splits:
            raise RunError(f"this run's data has no {split} split", f"use --split {' or '.join(data.splits)}")
        metrics, predictions = self._evaluate(data, split)
        threshold = self._decision_threshold(data)
        task = task_of(self.spec)
        added, facts = task.report({split: predictions}, self.spec, None, threshold)
        calibration = compute_metrics(predictions, ["ece", "mce", "brier"]) if task.classes else {}
        if data.groups and task.classes:  # docs/insight.md, "Groups and fairness"
            facts["groups"] = bundle_audit(split, predictions, data, threshold, self.summary, self.config.seed)
        return {**metrics, **calibration, **added[split], **facts}

    @property
    def threshold(self) -> dict[str, Any] | None:
        """The decision record of a two-class run ({"positive_class", "positive_index", "value", "chosen_on",
        "rule"}), as training chose it on the val split and stored it in summary.json; None for other runs. A
        run folder that stores none (an unfinished run, or one trained before thresholds were stored) gets one
        chosen now on its val split by the same rule (this reads the run's data), marked by a "note".

        Example:
            >>> import tempfile, lamina
            >>> run = lamina.train({"data": "breast_cancer", "model": "mlp", "train": {"epochs": 2}},
            ...                    runs_dir=tempfile.mkdtemp(), progress="quiet")
            >>> run.threshold == run.summary["threshold"], run.threshold["positive_class"]
            (True, 'benign')
        """
        return self._decision_threshold(None)

    def _decision_threshold(self, data: DataBundle | None) -> dict[str, Any] | None:
        if "decision_threshold" in self.__dict__:
            return self.__dict__["decision_threshold"]
        spec = self.spec
        task = task_of(spec)
        record = self.summary.get("threshold")
        if not task.chooses_threshold(spec):
            record = None
        elif record is not None:
            record = self._checked_threshold(record)
        else:
            data = data or run_data(self.config, self.given_data(None, "choosing its decision threshold"))
            if "val" in data.splits and len(data.splits["val"]):
                _, predictions = self._evaluate(data, "val")
                _, facts = task.report({"val": predictions}, spec)
                record = {**facts["threshold"], "note": "chosen now on val: the run folder stores no threshold"}
        self.__dict__["decision_threshold"] = record
        return record

    def _checked_threshold(self, record: Any) -> dict[str, Any]:
        """The stored record, or a RunError saying what is wrong with it (an edited or damaged summary.json)."""
        try:
            if not isinstance(record, dict):
                raise ValueError(f"it is {record!r}")
            value = record.get("value")
            if type(value) not in (int, float) or not 0 <= value <= 1:
                raise ValueError(f"its value {value!r} is not a probability")
            record = {**record, "positive_index": positive_index(record, self.spec.class_names)}
        except ValueError as error:
            raise RunError(
                f"the decision threshold in {self.folder.summary_path} is damaged: {error}",
                "copy the run folder again, or delete the 'threshold' entry to choose it again on the val split",
            ) from None
        return record

    def _evaluate(self, data: DataBundle, split: str, calibrated: bool = True) -> tuple[dict[str, float], Predictions]:
        """Loss and metrics of the run's weights on one split of `data`, and the predictions behind them."""
        config, spec = self.config, self.spec
        names = config.train.metrics or task_of(spec).defaults(spec)[1]
        return evaluate_split(
            self.model,
            data.splits[split],
            data.transform,
            self.objective(calibrated),
            spec.task,
            names,
            config.train.eval_batch_size,
            spec.positive_index,
        )

    def predict(self, inputs: Any, allow_unfinished: bool = False, groups: Any = None) -> list[dict[str, Any]]:
        """Predictions for image files, audio files, CSV or Parquet files of rows, text files, .npy/.npz files,
        or a tensor of inputs in stored form — for runs trained on arrays, a numpy array or tensor shaped as the
        training arrays; for runs trained on a table, a pandas DataFrame. One dict per sample, as the run's task
        decodes it: {"input", "label", "probability", "probabilities"} for classification (two classes: decided
        at the run's `threshold`, whose value each result also holds as "threshold"), {"input", "prediction"} for
        regression, {"input", "anomaly_score", "code"} for autoencoders, {"input", "label"} for transcriptions.
        With per-group thresholds (train.group_thresholds), each input at its group's: `groups` names them (else a
        DataFrame's data.groups column). An unfinished run is refused unless `allow_unfinished`.

        Example:
            >>> import tempfile, lamina, torch
            >>> run = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 1}},
            ...                    runs_dir=tempfile.mkdtemp(), progress="quiet")
            >>> [sorted(result) for result in run.predict(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))]
            [['input', 'label', 'probabilities', 'probability'], ['input', 'label', 'probabilities', 'probability']]
        """
        if not allow_unfinished:
            self.require_completed("predicting", "or pass --allow-unfinished to predict with its last checkpoint")
        preprocessing = self.data_record["preprocessing"]
        stored, labels = stored_form(inputs, self.data_record["preprocessing"])
        model = self.model
        device = next(iter(model.parameters()), torch.empty(0)).device  # a model just trained may sit on a GPU
        stored = stored.to(device)
        transform = transform_for(preprocessing)
        split = Split(stored, torch.zeros(len(stored), device=device))
        outputs, _, _ = model_outputs(model, split, transform, 256)
        scores = self.objective().scores(outputs).cpu()
        task = task_of(self.spec)
        threshold = self.threshold
        results = task.decode(scores, self.spec, labels, model, transform(stored), stored, threshold=threshold)
        entries = getattr(self.config.data, "groups", None)  # data.groups: where a table's group column is
        return group_decisions(results, self.summary, threshold, inputs, groups, entries)

    def explain(
        self,
        inputs: Any = None,
        method: str | None = None,
        target: str | int | None = None,
        split: str | None = None,
        count: int = 16,
        layer: str | None = None,
        output: str | Path | None = None,
        data: Any = None,
    ) -> Explanation:
        """Attributions of the run's predictions for `inputs` (files or stored inputs, as `predict` reads them) or
        for `count` inputs of `split` (default: test, or val for data without one, as a language model's; the first
        of a random order seeded by 0), with `method` (None: the default
        for the kind of input) towards `target` (the predicted class, or a class name or index); Grad-CAM's
        `layer` by name. Checked for faithfulness and written into `output` (default:
        RUN/explanations/<method>-<split or files>/): pictures and explanation.json (lamina/insight/explain.py).

        Example:
            >>> import tempfile, lamina
            >>> run = lamina.train({"data": "digits", "model": "cnn", "train": {"epochs": 2}},
            ...                    runs_dir=tempfile.mkdtemp(), progress="quiet")
            >>> result = run.explain(count=4)
            >>> result.record["method"], len(result.items), result.files[-1].name
            ('integrated_gradients', 4, 'explanation.json')
        """
        self.require_completed("explaining")
        bundle = run_data(self.config, self.given_data(data, "explaining it"))
        if inputs is None:
            split = split or ("test" if "test" in bundle.splits else "val")
            if split not in bundle.splits:
                raise RunError(f"this run's data has no {split} split", f"use --split {' or '.join(bundle.splits)}")
            stored, labels, truth, facts = chosen_inputs(bundle.splits[split], split, count)
        else:
            stored, labels = stored_form(inputs, self.data_record["preprocessing"])
            truth, facts = None, {"split": "files"}
        method = method or modality_for(self.spec)[1].methods[0]
        where = Path(output) if output else self.dir / "explanations" / f"{method}-{facts['split']}"
        facts, texts = {"run": str(self.dir), **facts}, split_texts(bundle, labels) if inputs is None else None
        chosen = (stored, labels, where, method, target, truth, layer, facts, self.config.train.monitor, self.spec)
        return explain_data(self.model, bundle, self.objective().scores, *chosen, texts=texts)


def load_run(path: str | Path) -> Run:
    """Open a run folder written by `lamina train` (the same as `Run(path)`, whose examples show what it holds)."""
    return Run(path)


def run_data(config: Config, given: Given | None = None) -> DataBundle:
    """The data of a run with this config, as training reads it (teacher runs' pseudo-labels included; `given`:
    the data passed from Python, for the arrays and dataframe data sets)."""
    labeller = None
    if isinstance(config.data, ImageOptions) and config.data.pseudo_labels is not None:
        seed = config.data.seed if config.data.seed is not None else config.seed
        labeller = pseudo_labeller(config.data, seed, load_run)
    return build_data(config.data, config.seed, labeller, given)
