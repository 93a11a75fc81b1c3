"""Evaluation: run a whole split through the model once, then compute loss and metrics over all of it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lamina.data.bundle import Split, iterate_batches
from lamina.models.output import split_output
from lamina.train.losses import Objective
from lamina.train.metrics import Predictions, compute_metrics

__all__ = ["model_outputs", "evaluate_split", "plain"]


def plain(value: Tensor) -> float | list:
    """A logged tensor as JSON: a float, or a list for vectors such as tokens per expert."""
    return float(value) if value.numel() == 1 else value.flatten().tolist()


@torch.no_grad()
def model_outputs(
    model: nn.Module, split: Split, transform: Callable[[Tensor], Tensor], batch_size: int
) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """Raw outputs (N, ...) for every sample of `split`; auxiliary losses and statistics averaged over samples."""
    was_training = model.training
    model.eval()
    outputs: list[Tensor] = []
    sums: tuple[dict[str, Tensor], dict[str, Tensor]] = ({}, {})
    for inputs, _ in iterate_batches(split, batch_size):
        prediction, *logged = split_output(model(transform(inputs)))
        outputs.append(prediction.float())
        for total, values in zip(sums, logged, strict=True):
            for name, value in values.items():
                total[name] = total.get(name, 0.0) + value.detach().double() * len(inputs)
    model.train(was_training)
    auxiliary, statistics = ({name: value / len(split) for name, value in total.items()} for total in sums)
    return torch.cat(outputs), auxiliary, statistics


def evaluate_split(
    model: nn.Module,
    split: Split,
    transform: Callable[[Tensor], Tensor],
    objective: Objective,
    task: str,
    metric_names: list[str],
    batch_size: int,
) -> tuple[dict[str, float], Predictions]:
    """Loss and metrics over the whole split (not averaged per batch), plus the predictions behind them.
    The loss includes auxiliary losses, each also reported under its own name."""
    outputs, auxiliary, statistics = model_outputs(model, split, transform, batch_size)
    targets = split.targets
    with torch.no_grad():
        loss = float(objective.loss(outputs, targets)) + sum(float(value) for value in auxiliary.values())
        predictions = Predictions(task, objective.scores(outputs).cpu(), targets.cpu())
    logged = {name: plain(value) for name, value in {**auxiliary, **statistics}.items()}
    metrics = {"loss": loss, **logged, **compute_metrics(predictions, metric_names)}
    return metrics, predictions
