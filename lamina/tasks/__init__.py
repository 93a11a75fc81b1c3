"""Tasks: the kinds of learning problem lamina trains, each one registered object.

A data set names its task in its DataSpec (`spec.task`); everything that depends on the kind of problem asks the
task instead of comparing names: what a target is (a class, values, the input itself, the next token, a label
sequence), the defaults (loss, metrics, the monitored metric and its goal), what a report adds beside the metrics
(a confusion matrix, a decision threshold, a naive baseline) and how scores become predictions for a user.

    >>> task = tasks.get("classification")
    >>> task.loss, task.monitor, task.goal, task.classes
    ('cross_entropy', 'val.accuracy', 'max', True)

A new task is one `Task(...)` passed to `register_task`. Its facts are plain values, so the layers below
training (data sets, models) can ask them without importing PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lamina.core.errors import RunError
from lamina.core.registry import Registry

__all__ = ["Task", "tasks", "register_task", "task_of"]

Targets = Literal["classes", "values", "inputs", "next_tokens", "label_sequences"]


@dataclass(frozen=True)
class Task:
    """A kind of learning problem and everything that follows from it."""

    name: str
    targets: Targets  # what a sample's target is
    loss: str  # default loss
    metrics: tuple[str, ...]  # default metrics on val and test
    monitor: str  # default '<split>.<metric>' that picks the best checkpoint and drives early stopping
    goal: Literal["min", "max"]  # whether the monitored metric should go down or up
    binary_metrics: tuple[str, ...] = ()  # added to `metrics` when the data has exactly two classes
    ensembles: bool = False  # several runs' scores can be averaged into one prediction

    # ---- facts ------------------------------------------------------------------------------------------

    @property
    def classes(self) -> bool:
        """Targets are class indices: stratified splits, accuracy while training, confusion matrices."""
        return self.targets == "classes"

    @property
    def per_step(self) -> bool:
        """One output per input step (a language model's next tokens, a transcription's CTC frames)."""
        return self.targets in ("next_tokens", "label_sequences")

    @property
    def causal(self) -> bool:
        """Each output predicts the next input step, so a model must not see later steps, and its outputs range
        over the input vocabulary (weights may be tied)."""
        return self.targets == "next_tokens"

    @property
    def reconstructs(self) -> bool:
        """The targets are the inputs themselves (autoencoders)."""
        return self.targets == "inputs"

    def defaults(self, spec: Any) -> tuple[str, list[str], str]:
        """(loss name, metric names, monitor) for a DataSpec of this task."""
        binary = list(self.binary_metrics) if spec.num_classes == 2 else []
        return self.loss, [*self.metrics, *binary], self.monitor

    def train_metrics(self) -> list[str]:
        """What the training split reports during each epoch (running sums over its batches)."""
        return ["loss", "accuracy"] if self.classes else ["loss"]

    def describe(self, spec: Any) -> str:
        """The targets in words: '10 classes', '12 targets', 'a vocabulary of 65 tokens'."""
        return {
            "classes": f"{spec.num_classes} classes",
            "values": f"{spec.num_targets} targets",
            "inputs": "the inputs themselves",
            "next_tokens": f"a vocabulary of {spec.num_classes} tokens",
            "label_sequences": f"sequences of {spec.num_classes} classes",
        }[self.targets]

    def output_mismatch(self, shape: tuple[int, ...], expected: int) -> tuple[str, str] | None:
        """(what is wrong, how to fix it) when a model's outputs for one sample (`shape`) do not suit this task
        and a loss expecting `expected` outputs per sample (per step); None when they do."""
        if self.per_step and len(shape) != 2:
            return (
                f"gives {shape} outputs per sample; {self.name} needs (steps, {expected})",
                "use a sequence family (rnn, transformer)",
            )
        if self.targets in ("classes", "values") and shape[-1] != expected:
            return (
                f"gives {shape[-1]} outputs per sample, the loss needs {expected}",
                "the model must size its head from spec.output_size",
            )
        return None

    def target_summary(self, targets: Any, spec: Any) -> str:
        """One line about a split's targets: class counts, or the targets' mean and spread."""
        if self.classes:
            counts = targets.cpu().bincount(minlength=spec.num_classes).tolist()
            return " ".join(f"{spec.class_names[i] if spec.class_names else i}:{c}" for i, c in enumerate(counts))
        if self.reconstructs:
            return "the images themselves"
        values = targets.double()
        return f"mean {values.mean():.4g}, std {values.std():.4g}"

    # ---- reports and predictions --------------------------------------------------------------------------

    def chooses_threshold(self, spec: Any) -> bool:
        """Whether a decision threshold is chosen on validation data: two-class classification."""
        return self.classes and spec.num_classes == 2

    def report(
        self,
        predictions: Mapping[str, Any],
        spec: Any,
        threshold_from: str | None = "val",
        threshold: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """What this task adds beside the metrics of each split in `predictions` (split → Predictions): a
        confusion matrix per split; for two classes, the decisions at one threshold — `threshold` (a run's stored
        record) when given, else one chosen on the `threshold_from` split's predictions (when given and present) —
        as rates and a confusion matrix per split; a naive forecast's errors where the data set computed them.
        Returns ({split: {name: value}}, run-level facts such as {"threshold": {...}})."""
        from lamina.tasks.decisions import (
            at_threshold,
            choose_threshold,
            confusion_matrix,
        )  # PyTorch: not on every CLI path

        added: dict[str, dict[str, Any]] = {split: {} for split in predictions}
        facts: dict[str, Any] = {}
        if self.classes:
            for split, split_predictions in predictions.items():
                labels, targets = split_predictions.scores.argmax(dim=1), split_predictions.targets
                added[split]["confusion_matrix"] = confusion_matrix(labels, targets, spec.num_classes).tolist()
        for split in predictions:
            for name, value in spec.extra.get("baselines", {}).get(split, {}).items():
                added[split][f"naive_{name}"] = value  # a baseline's score beside the model's (forecasting)
        if not self.chooses_threshold(spec):
            return added, facts
        chooser = predictions.get(threshold_from) if threshold_from is not None else None
        if threshold is None and chooser is not None and len(chooser.targets):
            threshold = choose_threshold(chooser.scores, chooser.targets, self.positive_class(spec), spec.class_names)
        if threshold is not None:
            facts["threshold"] = dict(threshold)
            for split, split_predictions in predictions.items():
                scores, targets = split_predictions.scores, split_predictions.targets
                added[split].update(at_threshold(threshold, scores, targets, spec.class_names))
        return added, facts

    @staticmethod
    def positive_class(spec: Any) -> int:
        """The index of a two-class data set's positive class: data.positive_class as the data set resolved it,
        else class 1."""
        return int(spec.extra.get("positive_class", 1))

    def decode(
        self,
        scores: Any,
        spec: Any,
        labels: list[str],
        model: Any,
        inputs: Any,
        stored: Any,
        threshold: Mapping[str, Any] | None = None,
    ) -> list[dict]:
        """Predictions for a user, one dict per sample: `scores` from the objective, the `model`, its `inputs`
        and the inputs as `stored` (for tasks that need them). A two-class run decides by its `threshold` record
        (the positive class where its probability reaches the threshold), which each result then names."""
        if self.classes:
            from lamina.tasks.decisions import decide  # PyTorch: not on every CLI path

            names = spec.class_names or [str(i) for i in range(scores.shape[1])]
            decided = scores.argmax(dim=1) if threshold is None else decide(threshold, scores, spec.class_names)
            results = []
            for label, row, index in zip(labels, scores, decided.tolist(), strict=True):
                probabilities = {name: round(float(p), 6) for name, p in zip(names, row, strict=True)}
                result = {
                    "input": label,
                    "label": names[index],
                    "probability": float(row[index]),
                    "probabilities": probabilities,
                }
                results.append(result if threshold is None else {**result, "threshold": threshold["value"]})
            return results
        if self.reconstructs:  # an anomaly score (mean squared pixel error in [0, 1] units) and the latent code
            import torch  # PyTorch: not on every CLI path

            with torch.no_grad():
                codes = model.encode(inputs)[0].cpu()
            pixels = stored.float().div(255.0).flatten(1).cpu()
            errors = (scores.float() - pixels).pow(2).mean(dim=1)
            return [
                {"input": label, "anomaly_score": float(error), "code": [round(float(v), 6) for v in code]}
                for label, error, code in zip(labels, errors, codes, strict=True)
            ]
        if self.targets == "label_sequences":
            from lamina.tasks.decisions import greedy_ctc_decode  # PyTorch: not on every CLI path

            names = spec.class_names or [str(i) for i in range(spec.num_classes)]
            joiner = "" if all(len(name) == 1 for name in names) else " "
            decoded = greedy_ctc_decode(scores, blank=scores.shape[-1] - 1)
            return [
                {"input": label, "label": joiner.join(names[i] for i in sequence)}
                for label, sequence in zip(labels, decoded, strict=True)
            ]
        if self.causal:
            raise RunError("a language model predicts the next token of a text", "use 'lamina generate RUN --prompt'")
        results = []
        for label, row in zip(labels, scores, strict=True):
            values = [float(v) for v in row]
            results.append({"input": label, "prediction": values[0] if len(values) == 1 else values})
        return results


tasks: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    """Register a task under its name."""
    return tasks.add(task.name, task)


def task_of(spec: Any) -> Task:
    """The Task of a DataSpec (or of a task name)."""
    return tasks.get(spec if isinstance(spec, str) else spec.task, "task")


register_task(
    Task(
        "classification",
        "classes",
        "cross_entropy",
        ("accuracy", "macro_f1", "precision", "recall"),
        "val.accuracy",
        "max",
        binary_metrics=("roc_auc",),
        ensembles=True,
    )
)
register_task(Task("regression", "values", "mse", ("mse", "rmse", "mae", "r2"), "val.loss", "min", ensembles=True))
register_task(Task("reconstruction", "inputs", "pixel_bce", ("pixel_mse", "pixel_mae", "psnr"), "val.loss", "min"))
register_task(
    Task(
        "language_modeling",
        "next_tokens",
        "token_cross_entropy",
        ("perplexity", "bits_per_character"),
        "val.loss",
        "min",
    )
)
register_task(
    Task(
        "transcription",
        "label_sequences",
        "ctc",
        ("sequence_accuracy", "token_error_rate"),
        "val.sequence_accuracy",
        "max",
    )
)
