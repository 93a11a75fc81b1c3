"""Telling a diverged run from a working one: a non-finite loss, a loss far above where it started, or non-finite
weights or buffers (batch-norm statistics overflow before the loss says so). Checked at every logged step and
before every checkpoint, so a diverged state is never saved over the last good one."""

from __future__ import annotations

import math

import torch
from torch import nn

from lamina.core.errors import TrainingDiverged
from lamina.training.gradients import layer_of

__all__ = ["TrainingDiverged", "first_non_finite", "check_loss", "check_weights", "GROWTH_LIMIT"]

GROWTH_LIMIT = 100.0  # a loss this many times its first value (or times 1, if that was smaller) has diverged


def first_non_finite(model: nn.Module) -> str | None:
    """The name of the first parameter or buffer holding a NaN or infinity, in the model's order; None if all are
    finite.

    Example:
        >>> layer = nn.BatchNorm1d(2)
        >>> first_non_finite(layer) is None
        True
        >>> _ = layer.running_var.fill_(float("inf"))
        >>> first_non_finite(layer)
        'running_var'
    """
    for name, tensor in getattr(model, "_orig_mod", model).state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def check_weights(model: nn.Module, where: str) -> None:
    """Raise TrainingDiverged naming the first non-finite layer; `where` says when ('after step 12 (epoch 1)')."""
    name = first_non_finite(model)
    if name is not None:
        raise TrainingDiverged(f"the layer {layer_of(name)} holds non-finite values ({name}) {where}")


def check_loss(loss: float, first: float | None, where: str) -> None:
    """Raise TrainingDiverged for a non-finite loss, or one at or over GROWTH_LIMIT × the run's first loss (the
    first loss counted as at least 1, so a run that starts near zero, fine-tuning, may still move about).

    Example:
        >>> check_loss(2.0, first=2.3, where="at step 5")
        >>> check_loss(250.0, first=2.3, where="at step 5")
        Traceback (most recent call last):
        lamina.core.errors.TrainingDiverged: training diverged: the training loss rose to 250 at step 5, ...
    """
    if not math.isfinite(loss):
        raise TrainingDiverged(f"the training loss became {loss} {where}")
    if first is not None and loss >= GROWTH_LIMIT * max(first, 1.0):
        raise TrainingDiverged(
            f"the training loss rose to {loss:.4g} {where}, over {GROWTH_LIMIT:g} times its first value {first:.4g}"
        )
