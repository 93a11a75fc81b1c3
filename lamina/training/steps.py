"""Step functions: what one training step computes. The loop calls one with the model, a batch and a context,
and does the rest (backward pass, clipping, optimizer step); lamina/training/semi_supervised.py has the others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from lamina.data.bundle import DataBundle
from lamina.models.output import split_output
from lamina.training.losses import Objective

__all__ = ["StepContext", "StepFunction", "supervised_step"]


@dataclass
class StepContext:
    """What a step function may read besides the model and its batch."""

    objective: Objective
    data: DataBundle  # e.g. an 'unlabelled' split to draw from, and the per-batch transform
    seed: int
    step: int = 0  # optimizer steps taken before this one: draws seeded by (seed, step) replay on resume
    evaluation_model: nn.Module | None = None  # the weights validation uses (an average), when not the model
    sample_weights: Tensor | None = None  # (B,) the batch's loss weights (train.balance_groups), None: all alike


# (model, (inputs, targets), context) → (loss, prediction, values to log)
StepFunction = Callable[[nn.Module, tuple[Tensor, Tensor], StepContext], tuple[Tensor, Tensor, dict[str, Tensor]]]


def supervised_step(model: nn.Module, batch: tuple[Tensor, Tensor], context: StepContext):
    """Forward and loss for one batch → (loss, prediction, values to log). Pass another to the Loop to change a
    step. Auxiliary losses are added to the loss; they and the model's statistics are logged under their names."""
    inputs, targets = batch
    prediction, auxiliary, statistics = split_output(model(inputs))
    if context.sample_weights is None:
        loss = context.objective.loss(prediction, targets)
    else:  # each sample's loss times its weight (mean 1 over the train split)
        loss = (context.objective.per_sample(prediction, targets) * context.sample_weights).mean()
    for value in auxiliary.values():
        loss = loss + value
    return loss, prediction, {**auxiliary, **statistics}
