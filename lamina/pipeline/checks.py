"""Cross-field checks of a run: each a small function of (config, data, model) returning the problems it finds,
so `prepare` reports every problem at once (exit 2) before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lamina.config.schema import Config
from lamina.core.errors import LaminaError, Problem
from lamina.data.bundle import DataBundle
from lamina.insight.explain import modality_for, resolve_target
from lamina.models.normalization import GhostBatchNorm
from lamina.tasks import task_of
from lamina.training.balance import balance_problems
from lamina.training.options import metrics
from lamina.training.schedules import StepOptions
from lamina.training.semi_supervised import semi_supervised_problems
from lamina.training.transfer import check_prefixes

__all__ = ["CHECKS", "Check"]

Check = Callable[[Config, DataBundle, nn.Module], list[Problem]]


def validation_samples_exist(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """Training evaluates on the val split every epoch (metrics, best checkpoint, early stopping): it needs samples.
    An empty val split is fine for looking at data, not for training."""
    if len(data.splits.get("val", ())) > 0:
        return []
    total = sum(map(len, data.splits.values()))
    return [
        Problem(
            "data.val_fraction",
            f"leaves the val split empty ({total} samples in all)",
            "hold out a larger fraction, or use more data (fractions are taken per class and rounded)",
        )
    ]


def metrics_fit_the_task(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """Every metric in train.metrics is one of the data's task."""
    task = task_of(data.spec)
    wrong = [name for name in config.train.metrics if metrics.get(name).metadata["task"] != task.name]
    return [
        Problem(
            "train.metrics",
            f"{name!r} is a {metrics.get(name).metadata['task']} metric, the data is {task.name}",
            f"use {', '.join(task.defaults(data.spec)[1])}",
        )
        for name in wrong
    ]


def monitor_is_computed(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """train.monitor names a metric the run computes: any val metric, or what the train split reports."""
    monitor = config.train.monitor
    split, metric = monitor.split(".", 1)
    available = ["loss", *config.train.metrics] if split == "val" else task_of(data.spec).train_metrics()
    if metric in available:
        return []
    return [
        Problem(
            "train.monitor",
            f"{monitor!r} is not computed by this run",
            f"choose one of: {', '.join(f'{split}.{m}' for m in available)}",
        )
    ]


def milestones_before_the_end(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """A step schedule's milestones fall inside training (a milestone at or after the end never decays)."""
    schedule, epochs = config.train.schedule, config.train.epochs
    milestones = schedule.milestones if isinstance(schedule, StepOptions) else None
    if not milestones or config.train.max_steps is not None or milestones[-1] < epochs:
        return []
    return [
        Problem(
            "train.schedule.milestones",
            f"epoch {milestones[-1]} is not before the end of training "
            f"(train.epochs {epochs}), so it never decays the rate",
            f"use epochs below {epochs}, or more epochs",
        )
    ]


def norm_groups_divide_the_batch(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """Ghost batch norm splits each training batch into groups; a batch size it does not divide would make every
    batch fall back to plain batch statistics without a word."""
    sizes = {module.group_size for module in model.modules() if isinstance(module, GhostBatchNorm)}
    batch = config.train.batch_size
    problems = []
    for size in sorted(size for size in sizes if batch % size):
        divisor = max(d for d in range(1, size + 1) if batch % d == 0)
        fix = f"use a divisor of {batch} such as {divisor}, or " if divisor > 1 else ""
        problems.append(
            Problem(
                "model.norm_group_size",
                f"is {size}, which does not divide train.batch_size {batch}, so no batch would be split into groups",
                f"{fix}make train.batch_size a multiple of {size}",
            )
        )
    return problems


def modules_exist(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """train.freeze, train.unfreeze and train.learning_rate_factors name modules of the model."""
    settings = config.train
    return [
        *check_prefixes(model, settings.freeze, "train.freeze"),
        *check_prefixes(model, list(settings.unfreeze), "train.unfreeze"),
        *check_prefixes(model, list(settings.learning_rate_factors), "train.learning_rate_factors"),
    ]


def pretrained_tokens_match(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """Weights from a run trained on text (model.init_from) mean what they meant only with the same tokenizer: an
    embedding row is a token id, so another vocabulary would silently give every token another token's vector."""
    source, ours = config.model.init_from, data.preprocessing.get("tokenizer")
    record = Path(source).expanduser() / "data.json" if source else None
    if ours is None or record is None or not record.is_file():
        return []  # not text, not a run folder, or a resumed run whose source is gone
    try:
        theirs = json.loads(record.read_text())["preprocessing"]["tokenizer"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if theirs == ours:
        return []
    return [
        Problem(
            "model.init_from",
            f"{source!r} was trained on text tokenized otherwise than this data, so its embeddings would stand "
            "for other tokens",
            f"set data.tokenizer_from: {source} to tokenize this data as it did",
        )
    ]


def semi_supervised_options_fit(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """Reconstruction of unlabelled images needs them, a classification task and the training step to itself."""
    return semi_supervised_problems(config.model, config.data, data)


def explanations_fit(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """`explain:` names a method the run's kind of input has, a class it has, a split it has; and the run's task has
    something to explain (checked here, so that training does not end in an error)."""
    options = config.explain
    if not options.enabled:
        return []
    try:
        _, modality = modality_for(data.spec)
    except LaminaError as error:
        return [Problem("explain.enabled", error.message, error.hint)]
    problems = []
    if options.method is not None and options.method not in modality.methods:
        problems.append(
            Problem(
                "explain.method",
                f"{options.method!r} is not a method for {modality.kind} inputs",
                f"use one of: {', '.join(modality.methods)}",
            )
        )
    if options.split not in data.splits:
        problems.append(
            Problem("explain.split", f"this data has no {options.split} split", f"use {' or '.join(data.splits)}")
        )
    try:
        resolve_target(options.target, data.spec, torch.zeros(1, dtype=torch.long))
    except LaminaError as error:
        problems.append(Problem("explain.target", error.message, error.hint))
    return problems


def groups_to_balance_exist(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """train.balance_groups names an attribute of data.groups; loss_weights needs a loss per sample."""
    settings = config.train
    loss = settings.loss.name if settings.loss is not None else ""
    return balance_problems(settings.balance_groups, settings.balance_method, data, loss)


def calibration_fits(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """`train.calibrate` fits a temperature on the val split's class probabilities: it needs both."""
    if config.train.calibrate is None:
        return []
    if not task_of(data.spec).classes:
        return [
            Problem(
                "train.calibrate",
                f"is for classification runs, whose outputs are class probabilities; the data is a {data.spec.task} "
                "task",
                "remove train.calibrate",
            )
        ]
    if len(data.splits.get("val", ())) == 0:
        return [
            Problem(
                "train.calibrate",
                "fits the temperature on the val split, and this data has no val samples",
                "set data.val_fraction above 0, or remove train.calibrate",
            )
        ]
    return []


def group_thresholds_fit(config: Config, data: DataBundle, model: nn.Module) -> list[Problem]:
    """train.group_thresholds names an attribute of data.groups, and the run has one threshold to split: two
    classes."""
    attribute = config.train.group_thresholds
    if attribute is None:
        return []
    task = task_of(data.spec)
    if not task.chooses_threshold(data.spec):
        wrong = f"is {attribute!r}, but per-group thresholds need a two-class classification task; this data has "
        return [Problem("train.group_thresholds", wrong + task.describe(data.spec), "leave train.group_thresholds out")]
    if attribute not in data.groups:
        known = ", ".join(data.groups) or "none: data.groups is empty"
        wrong = f"is {attribute!r}, which is not an attribute of data.groups (attributes: {known})"
        return [
            Problem("train.group_thresholds", wrong, "name one of data.groups' attributes, or add it to data.groups")
        ]
    return []


CHECKS: list[Check] = [
    validation_samples_exist,
    metrics_fit_the_task,
    monitor_is_computed,
    semi_supervised_options_fit,
    milestones_before_the_end,
    norm_groups_divide_the_batch,
    modules_exist,
    pretrained_tokens_match,
    explanations_fit,
    groups_to_balance_exist,
    calibration_fits,
    group_thresholds_fit,
]
