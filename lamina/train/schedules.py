"""Learning-rate schedules as pure functions: (step, total steps) → a factor on each group's base rate.

A schedule's only state is the step count, which makes resuming exact. Every schedule accepts a linear warmup.

    >>> factor(CosineOptions(warmup_steps=10, min_factor=0.1), step=10, total_steps=110, steps_per_epoch=11)
    1.0
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from lamina.config.base import Options
from lamina.registry import Registry

__all__ = ["schedules", "factor", "apply_schedule"]

schedules = Registry("schedule")


class ScheduleOptions(Options):
    warmup_steps: int = Field(0, ge=0)
    """Steps of linear warmup from 0 to the full learning rate before the schedule proper."""


def factor(config: Options, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based)."""
    warmup = getattr(config, "warmup_steps", 0)
    if step < warmup:
        # (step + 1) / (warmup + 1): never exactly zero, so the first step already learns a little
        return (step + 1) / (warmup + 1)
    progress_steps = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / progress_steps)
    function = schedules.get(config.name, "train.schedule.name").function
    return function(config, progress, step, steps_per_epoch)


def apply_schedule(optimizer, config: Options, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Set every param group's learning rate for `step`; returns the factor used."""
    value = factor(config, step, total_steps, steps_per_epoch)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * value
    return value


class ConstantOptions(ScheduleOptions):
    """The same learning rate throughout (after any warmup)."""


@schedules.register("constant", config=ConstantOptions)
def constant(config: ConstantOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Constant learning rate."""
    return 1.0


class StepOptions(ScheduleOptions):
    """Multiply the learning rate by `gamma` every `every_epochs` epochs, or at each epoch in `milestones`."""

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


@schedules.register("step", config=StepOptions)
def step_decay(config: StepOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Step decay every N epochs, or at the given milestone epochs."""
    epoch = step // max(1, steps_per_epoch)
    if config.milestones is not None:
        return config.gamma ** sum(epoch >= milestone for milestone in config.milestones)
    return config.gamma ** (epoch // config.every_epochs)


class CosineOptions(ScheduleOptions):
    """Cosine decay from the full rate to `min_factor` × the rate at the end of training."""

    min_factor: float = Field(0.0, ge=0, le=1)
    """Final learning rate as a fraction of the peak."""


@schedules.register("cosine", config=CosineOptions)
def cosine(config: CosineOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Cosine annealing to min_factor."""
    return config.min_factor + (1 - config.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class LinearOptions(ScheduleOptions):
    """Linear decay from the full rate to `final_factor` × the rate."""

    final_factor: float = Field(0.0, ge=0, le=1)
    """Final learning rate as a fraction of the peak."""


@schedules.register("linear", config=LinearOptions)
def linear(config: LinearOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """Linear decay (with warmup_steps: the usual 'linear warmup, linear decay')."""
    return 1 - (1 - config.final_factor) * progress


class OneCycleOptions(ScheduleOptions):
    """One-cycle (Smith): ramp up to the peak rate, then cosine-anneal far below the start."""

    peak_fraction: float = Field(0.25, gt=0, lt=1)
    """Fraction of training spent ramping up to the peak."""
    start_factor: float = Field(0.04, gt=0, le=1)
    """Starting rate as a fraction of the peak (PyTorch's OneCycleLR: 1/25)."""
    final_factor: float = Field(1e-4, ge=0, le=1)
    """Final rate as a fraction of the peak."""


@schedules.register("one_cycle", config=OneCycleOptions)
def one_cycle(config: OneCycleOptions, progress: float, step: int, steps_per_epoch: int) -> float:
    """One-cycle policy (cosine up, cosine down)."""
    if progress < config.peak_fraction:
        phase = progress / config.peak_fraction
        low, high = config.start_factor, 1.0
        return high + (low - high) * 0.5 * (1 + math.cos(math.pi * phase))
    phase = (progress - config.peak_fraction) / (1 - config.peak_fraction)
    low = config.final_factor
    return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * phase))
