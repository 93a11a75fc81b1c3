"""Losses by name. Each builds an `Objective`: the loss on raw model outputs, and how outputs become scores
(class probabilities, or predictions in the targets' own units) for metrics and `lamina predict`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lamina.core.errors import ConfigError, Problem
from lamina.core.options import Options
from lamina.data.spec import DataSpec
from lamina.training.options import BCEOptions, CrossEntropyOptions, HuberOptions, losses

__all__ = ["Objective", "build_objective"]


@dataclass
class Objective:
    """What the trainer minimizes and how it reads the model's outputs."""

    loss: Callable[[Tensor, Tensor], Tensor]  # (outputs, targets) → scalar
    scores: Callable[[Tensor], Tensor]  # outputs → (N, C) probabilities or (N, T) predictions
    output_size: int
    # for outputs too large to keep for a whole split (language models): one batch's (outputs, targets) →
    # (per-token losses, per-token values for metrics), evaluated batch by batch (lamina.training.evaluate)
    summarize: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None
    # (outputs, targets) → (N,) each sample's loss, for per-sample weights (train.balance_groups: loss_weights);
    # None where a loss has no per-sample form
    per_sample: Callable[[Tensor, Tensor], Tensor] | None = None


def build_objective(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Build the named loss for this data; a ConfigError if the loss does not suit the task."""
    entry = losses.get(config.name, "train.loss.name")
    needs = entry.metadata["task"]
    if needs != spec.task:
        allowed = [other.name for other in losses.values() if other.metadata["task"] == spec.task]
        raise ConfigError(
            [
                Problem(
                    "train.loss.name",
                    f"loss {config.name!r} is for {needs}, but the data is a {spec.task} task",
                    f"use one of: {', '.join(allowed)}",
                )
            ]
        )
    return entry.function(config, spec, train_targets)


# ---- classification -----------------------------------------------------------------------------------


def _class_weights(option, spec: DataSpec, train_targets: Tensor) -> Tensor | None:
    if option is None or train_targets is None:  # no targets: building for inference, weights are moot
        return None
    if option == "balanced":
        counts = torch.bincount(train_targets.long(), minlength=spec.num_classes).double()
        return (counts.sum() / (spec.num_classes * counts.clamp(min=1))).float()
    if len(option) != spec.num_classes:
        raise ConfigError(
            [
                Problem(
                    "train.loss.class_weights",
                    f"has {len(option)} weights but the data has {spec.num_classes} classes",
                    f"give one weight per class ({', '.join(spec.class_names or [])}) or 'balanced'",
                )
            ]
        )
    return torch.tensor(option, dtype=torch.float32)


def cross_entropy(config: CrossEntropyOptions, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Softmax cross-entropy (multi-class classification), with label smoothing and class weights."""
    weight = _class_weights(config.class_weights, spec, train_targets)
    smoothing = config.label_smoothing

    def loss(outputs: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        w = weight.to(outputs.device) if weight is not None else None
        return F.cross_entropy(outputs, targets, weight=w, label_smoothing=smoothing, reduction=reduction)

    def per_sample(outputs: Tensor, targets: Tensor) -> Tensor:
        return loss(outputs, targets, "none")

    return Objective(loss, lambda outputs: outputs.float().softmax(dim=1), spec.num_classes, per_sample=per_sample)


def binary_cross_entropy(config: BCEOptions, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Binary cross-entropy on sigmoid outputs: one logit for two classes, one per class (one-vs-rest) otherwise."""
    binary = spec.num_classes == 2
    if config.pos_weight is not None and not binary:
        raise ConfigError(
            [Problem("train.loss.pos_weight", f"needs 2 classes; the data has {spec.num_classes}", "remove it")]
        )
    pos_weight = torch.tensor([config.pos_weight]) if config.pos_weight else None

    def loss(outputs: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        if binary:
            # (N, 1) logit of class 1
            goal = targets.to(outputs.dtype).unsqueeze(1)
        else:
            goal = F.one_hot(targets, spec.num_classes).to(outputs.dtype)
        weight = pos_weight.to(outputs.device) if pos_weight is not None else None
        return F.binary_cross_entropy_with_logits(outputs, goal, pos_weight=weight, reduction=reduction)

    def per_sample(outputs: Tensor, targets: Tensor) -> Tensor:
        return loss(outputs, targets, "none").mean(dim=1)  # (N, 1 or C) → (N,)

    def scores(outputs: Tensor) -> Tensor:
        probability = outputs.float().sigmoid()
        return torch.cat([1 - probability, probability], dim=1) if binary else probability

    return Objective(loss, scores, 1 if binary else spec.num_classes, per_sample=per_sample)


# ---- regression: the model learns standardized targets; scores come back in the targets' units ---------


def _regression(spec: DataSpec, elementwise: Callable[[Tensor, Tensor], Tensor]) -> Objective:
    mean = torch.tensor(spec.target_mean or [0.0] * spec.output_size)
    std = torch.tensor(spec.target_std or [1.0] * spec.output_size)

    def loss(outputs: Tensor, targets: Tensor) -> Tensor:
        goal = (targets - mean.to(targets.device)) / std.to(targets.device)
        return elementwise(outputs, goal)

    def scores(outputs: Tensor) -> Tensor:
        return outputs.float() * std.to(outputs.device) + mean.to(outputs.device)

    return Objective(loss, scores, spec.output_size)


def mse(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Mean squared error (regression)."""
    return _regression(spec, F.mse_loss)


def mae(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Mean absolute error, L1 (regression)."""
    return _regression(spec, F.l1_loss)


def huber(config: HuberOptions, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Huber loss (regression): MSE near the target, MAE far from it."""
    return _regression(spec, lambda outputs, goal: F.huber_loss(outputs, goal, delta=config.delta))
