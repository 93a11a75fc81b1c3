"""A finished (or interrupted) run: its folder, config, metrics and model, for evaluation and prediction."""

from __future__ import annotations

import json
import platform
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lamina.artifacts.checkpoint import checkpoint_path, load_weights, save_weights
from lamina.artifacts.folder import RunFolder
from lamina.artifacts.plots import confusion_chart, line_chart
from lamina.errors import RunError

__all__ = ["Run", "load_run", "finish_run"]


class Run:
    """A run folder and what is in it.

    Attributes:
        dir: the run folder. metrics: {"val": {...}, "test": {...}} from summary.json.
        model: the trained nn.Module (final weights; the last checkpoint for an unfinished run).
    """

    def __init__(self, path: str | Path, model: nn.Module | None = None):
        self.folder = RunFolder.open(path)
        self.dir = self.folder.path
        if model is not None:
            self.__dict__["model"] = model

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, status={self.summary.get('status')!r})"

    @cached_property
    def config(self):
        from lamina.config import load_config

        return load_config(self.folder.config)

    @cached_property
    def data_record(self) -> dict:
        if not self.folder.data.is_file():
            raise RunError(f"{self.dir} has no data.json", "the run folder is incomplete; train again")
        return json.loads(self.folder.data.read_text())

    @property
    def spec(self):
        from lamina.data.spec import DataSpec

        return DataSpec.from_dict(self.data_record["spec"])

    def require_completed(self, purpose: str) -> None:
        """Raise RunError unless the run finished training (an interrupted or killed run predicts from its last
        checkpoint, which would silently weaken an ensemble or a teacher)."""
        status = self.summary.get("status", "unknown")
        if status != "completed":
            raise RunError(f"run {self.dir} is {status}, not completed; {purpose} needs finished runs",
                           f"finish it with 'lamina train --resume {self.dir}', or leave it out")  # fmt: skip

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
        from lamina.models import build_model

        model = build_model(self.config.model, self.spec)
        weights = self.folder.weights
        if not weights.is_file():
            found = checkpoint_path(self.folder.last)
            if found is None:
                raise RunError(f"run {self.dir} has no weights yet", "it stopped before its first checkpoint")
            weights = found / "model.safetensors"
        load_weights(model, weights)
        return model.eval()

    def objective(self):
        from lamina.train.losses import build_objective, losses
        from lamina.train.tasks import defaults_for

        loss = self.config.train.loss or losses.get(defaults_for(self.spec)[0]).config()
        return build_objective(loss, self.spec, None)

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """Loss and metrics of the run's weights on `split` (the data is read again with the run's seed)."""
        from lamina.data import build_data
        from lamina.train.evaluate import evaluate_split
        from lamina.train.tasks import defaults_for

        if split not in ("train", "val", "test"):
            raise RunError(f"unknown split {split!r}", "use train, val or test")
        config, spec = self.config, self.spec
        data = build_data(config.data, config.seed)
        if split not in data.splits:
            raise RunError(f"this run's data has no {split} split", f"use --split {' or '.join(data.splits)}")
        names = config.train.metrics or defaults_for(spec)[1]
        metrics, predictions = evaluate_split(self.model, data.splits[split], data.transform, self.objective(),
                                              spec.task, names, config.train.eval_batch_size)  # fmt: skip
        if spec.task == "classification":
            metrics["confusion_matrix"] = predictions.confusion().tolist()
        return metrics

    def predict(self, inputs: list[str | Path] | torch.Tensor) -> list[dict[str, Any]]:
        """Predictions for image files, CSV files of rows, or a tensor of inputs in stored form.

        Returns one dict per sample: {"input", "label", "probability", "probabilities"} for classification,
        {"input", "prediction"} for regression, {"input", "anomaly_score", "code"} for autoencoders.
        """
        from lamina.data.bundle import Split
        from lamina.data.inputs import read_inputs, transform_for
        from lamina.train.evaluate import model_outputs

        preprocessing = self.data_record["preprocessing"]
        if isinstance(inputs, torch.Tensor):
            stored, labels = inputs, [str(i) for i in range(len(inputs))]
        else:
            stored, labels = read_inputs(list(inputs), preprocessing)
        model = self.model
        device = next(iter(model.parameters()), torch.empty(0)).device  # a model just trained may sit on a GPU
        stored = stored.to(device)
        if self.spec.task == "reconstruction":  # autoencoders: an anomaly score and the latent code per image
            inputs = transform_for(preprocessing)(stored)
            with torch.no_grad():
                codes, scores = model.encode(inputs)[0].cpu(), model.anomaly_score(inputs, stored).cpu()
            return [{"input": label, "anomaly_score": float(score), "code": [round(float(v), 6) for v in code]}
                    for label, score, code in zip(labels, scores, codes, strict=True)]  # fmt: skip
        split = Split(stored, torch.zeros(len(stored), device=device))
        outputs, _, _ = model_outputs(model, split, transform_for(preprocessing), 256)
        scores = self.objective().scores(outputs).cpu()
        spec, results = self.spec, []
        for label, row in zip(labels, scores, strict=True):
            if spec.task == "classification":
                index = int(row.argmax())
                names = spec.class_names or [str(i) for i in range(len(row))]
                results.append({"input": label, "label": names[index], "probability": float(row[index]),
                                "probabilities": {n: round(float(p), 6) for n, p in zip(names, row, strict=True)}})  # fmt: skip
            else:
                values = [float(v) for v in row]
                results.append({"input": label, "prediction": values[0] if len(values) == 1 else values})
        return results


def load_run(path: str | Path) -> Run:
    """Open a run folder written by `lamina train`.

    Example:
        >>> run = load_run("runs/20260101-120000-cnn-digits")  # doctest: +SKIP
        >>> run.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    return Run(path)


def finish_run(folder: RunFolder, session, loop) -> Run:
    """After the last epoch: restore the best weights if asked, evaluate val and test, write model, plots, summary."""
    from lamina import __version__
    from lamina.train.evaluate import evaluate_split

    config, model = session.config, session.model
    stopping = config.train.early_stopping
    restored = False
    best = checkpoint_path(folder.best)
    if stopping is not None and stopping.restore_best and best is not None and loop.state.best:
        load_weights(model, best / "model.safetensors")
        restored = True
    elif loop.evaluation_model is not None:  # averaged weights are the model
        getattr(model, "_orig_mod", model).load_state_dict(loop.evaluation_model.state_dict())
    final: dict[str, Any] = {}
    predictions_of = {}
    for split in ("val", "test"):
        if split not in session.data.splits:  # e.g. a language model with nanoGPT's train/val split only
            continue
        metrics, predictions = evaluate_split(model, session.data.splits[split], session.data.transform,
                                              session.objective, session.data.spec.task, session.metric_names,
                                              config.train.eval_batch_size)  # fmt: skip
        if session.data.spec.task == "classification":
            metrics["confusion_matrix"] = predictions.confusion().tolist()
        for name, value in session.data.spec.extra.get("baselines", {}).get(split, {}).items():
            metrics[f"naive_{name}"] = value  # a baseline's score beside the model's (forecasting)
        final[split], predictions_of[split] = metrics, predictions
    threshold = None
    spec = session.data.spec
    if (
        spec.task == "classification"
        and spec.num_classes == 2
        and {"val", "test"} <= predictions_of.keys()
        and len(predictions_of["val"].targets)
    ):
        from lamina.train.thresholds import threshold_report

        threshold, val_rates, test_rates = threshold_report(predictions_of["val"], predictions_of["test"],
                                                            spec.extra.get("positive_class", 1), spec.class_names)  # fmt: skip
        for split, rates in (("val", val_rates), ("test", test_rates)):
            final[split].update({f"{name}_at_threshold": value for name, value in rates.items()})
    temporary = folder.weights.with_name(".model.safetensors.partial")
    save_weights(model, temporary)
    temporary.replace(folder.weights)
    _plots(folder, loop.state.history, final, session)
    history = loop.state.history
    speeds = [row["samples_per_second"] for row in history if row.get("samples_per_second")]
    summary = folder.update_summary(
        status="completed",
        metrics=final,
        epochs=loop.state.epoch,
        steps=loop.state.step,
        wall_seconds=round(loop.state.wall_seconds, 3),
        best=loop.state.best,
        restored_best=restored,
        **({"threshold": threshold} if threshold else {}),
        stopped_early=loop.stop_reason or None,
        samples_per_second=round(sum(speeds) / len(speeds), 1) if speeds else None,
        device=str(session.device),
        threads=torch.get_num_threads(),
        forward_flops_per_sample=session.sample_flops,
        versions={"lamina": __version__, "torch": torch.__version__, "python": platform.python_version()},
    )
    assert summary["status"] == "completed"
    return Run(folder.path, model=model.eval())


def _plots(folder: RunFolder, history: list[dict], final: dict, session) -> None:
    if not history:
        return
    epochs = [row["epoch"] for row in history]
    panels = {"loss": {"train": (epochs, [r["train.loss"] for r in history]),
                       "val": (epochs, [r["val.loss"] for r in history])}}  # fmt: skip
    main = session.monitor.split(".", 1)[1]
    if main != "loss":
        panels[main] = {"val": (epochs, [r.get(f"val.{main}", float("nan")) for r in history])}
        if f"train.{main}" in history[0]:
            panels[main]["train"] = (epochs, [r[f"train.{main}"] for r in history])
    line_chart(folder.plots / "learning_curves.png", panels)
    spec = session.data.spec
    if spec.task == "classification" and "confusion_matrix" in final.get("test", {}):
        confusion_chart(folder.plots / "confusion_matrix.png", final["test"]["confusion_matrix"],
                        spec.class_names or [], "test confusion matrix")  # fmt: skip
