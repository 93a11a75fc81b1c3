"""Learning-rate schedules as pure functions: (step, total steps) → a factor on each group's base rate.

A schedule's only state is the step count, which makes resuming exact. Every schedule accepts a linear warmup.

    >>> factor(CosineOptions(warmup_steps=10, min_factor=0.1), step=10, total_steps=110, steps_per_epoch=11)
    1.0
"""

import math
from typing import Literal

from pydantic import Field, field_validator

from lamina.core.options import Options
from lamina.core.registry import Registry

__all__ = ["schedules", "factor", "apply_schedule"]

schedules = Registry("schedule")  # this module is the list of built-in schedules; it does not import PyTorch


class ScheduleOptions(Options):
    """Options every schedule has."""

    warmup_steps: int = Field(0, ge=0)
    """Steps of linear warmup from 0 to the full learning rate before the schedule proper."""


def factor(config: ScheduleOptions, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based)."""
    warmup = config.warmup_steps
    if step < warmup:
        # (step + 1) / (warmup + 1): never exactly zero, so the first step already learns a little
        return (step + 1) / (warmup + 1)
    progress_steps = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / progress_steps)
    function = schedules.get(config.name, "train.schedule.name").function
    return function(config, progress, step, steps_per_epoch)


def apply_schedule(optimizer, config: ScheduleOptions, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Set every param group's learning rate for `step`; returns the factor used."""
    value = factor(config, step, total_steps, steps_per_epoch)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * value
    return value


@schedules.register("lamina.training.schedules:constant")
class ConstantOptions(ScheduleOptions):
    """The same learning rate throughout (after any warmup)."""

    name: Literal["constant"] = "constant"


def constant(config: ConstantOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Constant learning rate."""
    return 1.0


@schedules.register("lamina.training.schedules:step_decay")
class StepOptions(ScheduleOptions):
    """Multiply the learning rate by `gamma` every `every_epochs` epochs, or at each epoch in `milestones`."""

    name: Literal["step"] = "step"
    every_epochs: int = Field(10, ge=1)
    """Epochs between decays (ignored when `milestones` is given)."""
    milestones: list[int] | None = None
    """Multiply the rate by `gamma` after each of these many epochs, as PyTorch's MultiStepLR: [50, 75] with 100
    epochs trains 50 epochs at the full rate, 25 at `gamma` × and 25 at `gamma`² ×. Replaces `every_epochs`."""
    gamma: float = Field(0.1, gt=0)
    """Multiplier applied at each decay."""

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (any(epoch < 1 for epoch in value) or value != sorted(set(value))):
            raise ValueError(f"must be increasing epochs ≥ 1, received {value}; for example [50, 75]")
        return value


def step_decay(config: StepOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Step decay every N epochs, or at the given milestone epochs."""
    epoch = step // max(1, steps_per_epoch)
    if config.milestones is not None:
        return config.gamma ** sum(epoch >= milestone for milestone in config.milestones)
    return config.gamma ** (epoch // config.every_epochs)


@schedules.register("lamina.training.schedules:cosine")
class CosineOptions(ScheduleOptions):
    """Cosine decay from the full rate to `min_factor` × the rate at the end of training."""

    name: Literal["cosine"] = "cosine"
    min_factor: float = Field(0.0, ge=0, le=1)
    """Final learning rate as a fraction of the peak."""


def cosine(config: CosineOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Cosine annealing to min_factor."""
    return config.min_factor + (1 - config.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


@schedules.register("lamina.training.schedules:linear")
class LinearOptions(ScheduleOptions):
    """Linear decay from the full rate to `final_factor` × the rate."""

    name: Literal["linear"] = "linear"
    final_factor: float = Field(0.0, ge=0, le=1)
    """Final learning rate as a fraction of the peak."""


def linear(config: LinearOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Linear decay (with warmup_steps: the usual 'linear warmup, linear decay')."""
    return 1 - (1 - config.final_factor) * progress


@schedules.register("lamina.training.schedules:one_cycle")
class OneCycleOptions(ScheduleOptions):
    """One-cycle (Smith): ramp up to the peak rate, then cosine-anneal far below the start."""

    name: Literal["one_cycle"] = "one_cycle"
    peak_fraction: float = Field(0.25, gt=0, lt=1)
    """Fraction of training spent ramping up to the peak."""
    start_factor: float = Field(0.04, gt=0, le=1)
    """Starting rate as a fraction of the peak (PyTorch's OneCycleLR: 1/25)."""
    final_factor: float = Field(1e-4, ge=0, le=1)
    """Final rate as a fraction of the peak."""


def one_cycle(config: OneCycleOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """One-cycle policy (cosine up, cosine down)."""
    if progress < config.peak_fraction:
        phase = progress / config.peak_fraction
        low, high = config.start_factor, 1.0
        return high + (low - high) * 0.5 * (1 + math.cos(math.pi * phase))
    phase = (progress - config.peak_fraction) / (1 - config.peak_fraction)
    low = config.final_factor
    return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * phase))
