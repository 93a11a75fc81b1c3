"""Evaluation: run a whole split through the model once, then compute loss and metrics over all of it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lamina.data.bundle import Split, iterate_batches
from lamina.models.output import split_output
from lamina.training.losses import Objective
from lamina.training.metrics import Predictions, compute_metrics

__all__ = ["model_outputs", "evaluate_split", "plain"]


def plain(value: Tensor) -> float | list:
    """A logged tensor as JSON: a float, or a list for vectors such as tokens per expert."""
    return float(value) if value.numel() == 1 else value.flatten().tolist()


@torch.no_grad()
def model_outputs(
    model: nn.Module,
    split: Split,
    transform: Callable[[Tensor], Tensor],
    batch_size: int,
    summarize: Callable[[Tensor, Tensor], tuple[Tensor, ...]] | None = None,
) -> tuple[Tensor | tuple[Tensor, ...], dict[str, Tensor], dict[str, Tensor]]:
    """Raw outputs (N, ...) for every sample of `split`; auxiliary losses and statistics averaged over samples.
    With `summarize`, each batch's (outputs, targets) is reduced to the tensors it returns, concatenated per
    position: for outputs too large to keep for a whole split (a language model's tokens × vocabulary)."""
    was_training = model.training
    model.eval()
    outputs: list = []
    sums: tuple[dict[str, Tensor], dict[str, Tensor]] = ({}, {})
    for inputs, targets in iterate_batches(split, batch_size):
        prediction, *logged = split_output(model(transform(inputs)))
        outputs.append(summarize(prediction, targets) if summarize else prediction.float())
        for total, values in zip(sums, logged, strict=True):
            for name, value in values.items():
                total[name] = total.get(name, 0.0) + value.detach().double() * len(inputs)
    model.train(was_training)
    auxiliary, statistics = ({name: value / len(split) for name, value in total.items()} for total in sums)
    joined = tuple(torch.cat(parts) for parts in zip(*outputs, strict=True)) if summarize else torch.cat(outputs)
    return joined, auxiliary, statistics


def evaluate_split(
    model: nn.Module,
    split: Split,
    transform: Callable[[Tensor], Tensor],
    objective: Objective,
    task: str,
    metric_names: list[str],
    batch_size: int,
    positive: int = 1,
) -> tuple[dict[str, float], Predictions]:
    """Loss and metrics over the whole split (not averaged per batch), plus the predictions behind them;
    `positive`: the positive class of two-class data (spec.positive_index).
    The loss includes auxiliary losses, each also reported under its own name. For objectives that summarize
    each batch (language models), the loss is the mean of the per-token losses: padding never counts."""
    outputs, auxiliary, statistics = model_outputs(model, split, transform, batch_size, objective.summarize)
    with torch.no_grad():
        if objective.summarize is not None:
            token_losses, token_targets = outputs
            loss = float(token_losses.double().mean())
            predictions = Predictions(task, token_losses.cpu(), token_targets.cpu())
        else:
            loss = float(objective.loss(outputs, split.targets))
            predictions = Predictions(task, objective.scores(outputs).cpu(), split.targets.cpu(), positive)
        loss += sum(float(value) for value in auxiliary.values())
    logged = {name: plain(value) for name, value in {**auxiliary, **statistics}.items()}
    metrics = {"loss": loss, **logged, **compute_metrics(predictions, metric_names)}
    return metrics, predictions
