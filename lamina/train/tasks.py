"""What each kind of learning problem trains with by default. A data set declares its task in its DataSpec;
new families add tasks here (e.g. reconstruction, language modeling) with `register_task`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Task", "register_task", "task_for", "defaults_for"]


@dataclass(frozen=True)
class Task:
    name: str
    loss: str  # default loss
    metrics: tuple[str, ...]  # default metrics on val/test
    monitor: str  # default '<split>.<metric>' that picks the best checkpoint
    binary_metrics: tuple[str, ...] = ()  # added when the data has exactly two classes


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    _TASKS[task.name] = task
    return task


def task_for(name: str) -> Task:
    if name not in _TASKS:
        raise KeyError(f"no task {name!r} is registered; known: {', '.join(_TASKS)}")
    return _TASKS[name]


def defaults_for(spec) -> tuple[str, list[str], str]:
    """(loss name, metric names, monitor) for a DataSpec."""
    task = task_for(spec.task)
    metrics = list(task.metrics) + (list(task.binary_metrics) if spec.num_classes == 2 else [])
    return task.loss, metrics, task.monitor


register_task(Task("classification", "cross_entropy", ("accuracy", "macro_f1", "precision", "recall"),
                   "val.accuracy", binary_metrics=("roc_auc",)))  # fmt: skip
register_task(Task("regression", "mse", ("mse", "rmse", "mae", "r2"), "val.loss"))
register_task(Task("language_modeling", "token_cross_entropy", ("perplexity", "bits_per_character"), "val.loss"))
register_task(Task("transcription", "ctc", ("sequence_accuracy", "token_error_rate"), "val.sequence_accuracy"))
