"""Evaluation: run a whole split through the model once, then compute loss and metrics over all of it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lamina.data.bundle import Split, iterate_batches
from lamina.models.output import split_output
from lamina.train.losses import Objective
from lamina.train.metrics import Predictions, compute_metrics

__all__ = ["model_outputs", "evaluate_split"]


@torch.no_grad()
def model_outputs(
    model: nn.Module, split: Split, transform: Callable[[Tensor], Tensor], batch_size: int
) -> tuple[Tensor, dict[str, float]]:
    """Raw outputs (N, ...) for every sample of `split`, and auxiliary losses averaged over samples."""
    was_training = model.training
    model.eval()
    outputs, auxiliary = [], {}
    for inputs, _ in iterate_batches(split, batch_size):
        prediction, extra = split_output(model(transform(inputs)))
        outputs.append(prediction.float())
        for name, value in extra.items():
            auxiliary[name] = auxiliary.get(name, 0.0) + float(value) * len(inputs)
    model.train(was_training)
    return torch.cat(outputs), {name: total / len(split) for name, total in auxiliary.items()}


def evaluate_split(
    model: nn.Module,
    split: Split,
    transform: Callable[[Tensor], Tensor],
    objective: Objective,
    task: str,
    metric_names: list[str],
    batch_size: int,
) -> tuple[dict[str, float], Predictions]:
    """Loss and metrics over the whole split (not averaged per batch), plus the predictions behind them."""
    outputs, auxiliary = model_outputs(model, split, transform, batch_size)
    targets = split.targets
    with torch.no_grad():
        loss = float(objective.loss(outputs, targets)) + sum(auxiliary.values())
        predictions = Predictions(task, objective.scores(outputs).cpu(), targets.cpu())
    metrics = {"loss": loss, **auxiliary, **compute_metrics(predictions, metric_names)}
    return metrics, predictions
