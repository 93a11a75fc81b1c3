"""What training costs: FLOPs per training sample (counted once, before training), and during training the FLOPs,
CPU time and energy so far (in TrainState, over all sessions of a run), checked against `runtime.budget`.

The count runs one step — forward, loss, backward — of a few training samples through PyTorch's FLOP counter,
on a copy of the model with the random streams put back afterwards, so the run's weights and random numbers are
exactly those of an uncounted run.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from lamina.data.bundle import DataBundle, batch_bounds
from lamina.models.flops import counting
from lamina.training.callbacks import Callback
from lamina.training.energy import EnergyMeter
from lamina.training.steps import StepContext, StepFunction

__all__ = ["training_flops", "budget_reached", "Accounting", "measure_peak_flops", "COUNTED_SAMPLES"]

COUNTED_SAMPLES = 16  # the samples the count runs (fewer if the batch is smaller): FLOPs grow linearly with them


def training_flops(
    model: nn.Module, data: DataBundle, step_function: StepFunction, context: StepContext, batch_size: int
) -> int:
    """FLOPs of one training step (forward, loss, backward) per training sample, counted on a copy of `model`
    in training mode with the run's step function; the random streams are as they were before.

    The backward pass costs about twice the forward pass (the gradients of the weights and of each layer's inputs;
    the first layer needs no input gradient), and dropout and batch normalization run as in training."""
    train = data.splits["train"]
    count = max(1, min(COUNTED_SAMPLES, batch_size, len(train)))
    inputs, targets = train.inputs[:count], train.targets[:count]
    copied = copy.deepcopy(model).train()  # batch normalization's running statistics change only in the copy
    with torch.random.fork_rng(devices=[]), counting() as counter:  # dropout draws from the forked stream
        loss, _, _ = step_function(copied, (data.transform(inputs), targets), context)
        loss.backward()
    return int(counter.get_total_flops()) // count


def budget_reached(budget: Any, seconds: float, joules: float, flops: float) -> str | None:
    """The first limit of `budget` (BudgetOptions or None) that training has reached: 'minutes', 'kwh' or 'flops'.

    Example:
        >>> from lamina.training.runtime_options import BudgetOptions
        >>> budget_reached(BudgetOptions(minutes=1, flops=1e9), seconds=30, joules=0, flops=2e9)
        'flops'
    """
    if budget is None:
        return None
    spent = {"minutes": seconds / 60, "kwh": joules / 3.6e6, "flops": flops}
    for name in ("minutes", "kwh", "flops"):
        limit = getattr(budget, name)
        if limit is not None and spent[name] >= limit:
            return name
    return None


class Accounting(Callback):
    """After each step: TrainState.flops += the step's training FLOPs (per sample × its samples),
    TrainState.cpu_seconds and energy_joules from this session's start (added to the sessions before); then the
    budget. A budget reached asks the loop to stop after this step (as Ctrl-C does, with a checkpoint) and names
    the limit in `reached`."""

    def __init__(self, sample_flops: int, meter: EnergyMeter, budget: Any = None):
        self.sample_flops, self.meter, self.budget = sample_flops, meter, budget
        self.reached: str | None = None
        self.bounds: list[tuple[int, int]] = []
        self.base: dict[str, float] = {}
        self.started = {"wall": 0.0, "cpu": 0.0}

    def fit_start(self, loop) -> None:
        state = loop.state  # a resumed run's state is restored before fit_start
        self.bounds = batch_bounds(len(loop.data.splits["train"]), loop.settings.batch_size)
        self.base = {"cpu": state.cpu_seconds, "joules": state.energy_joules, "wall": state.wall_seconds}
        self.meter.start()
        self.started = {"wall": time.perf_counter(), "cpu": time.process_time()}

    def step_end(self, loop, loss: float | None) -> None:
        state = loop.state
        start, end = self.bounds[state.batch - 1]
        state.flops += float(self.sample_flops * (end - start))
        state.cpu_seconds = self.base["cpu"] + time.process_time() - self.started["cpu"]
        state.energy_joules = self.base["joules"] + self.meter.joules()
        if self.budget is None:
            return
        self.reached = budget_reached(self.budget, self.wall_seconds(loop), state.energy_joules, state.flops)
        if self.reached:
            loop.interrupt_requested = True

    def epoch_end(self, loop, row: dict[str, Any]) -> None:
        self.base["wall"], self.started["wall"] = loop.state.wall_seconds, time.perf_counter()

    def fit_end(self, loop, status: str) -> None:
        self.finish(loop)

    def finish(self, loop) -> None:
        """The last reading of this session (also when it stops part-way through an epoch)."""
        state = loop.state
        state.cpu_seconds = self.base["cpu"] + time.process_time() - self.started["cpu"]
        state.energy_joules = self.base["joules"] + self.meter.joules(force=True)

    def wall_seconds(self, loop) -> float:
        """Training wall time over all sessions so far (the loop adds to TrainState's only at each epoch end)."""
        return self.base["wall"] + time.perf_counter() - self.started["wall"]


def measure_peak_flops(device: torch.device, seconds: float = 1.0) -> float:
    """This machine's fp32 matrix-multiply speed (FLOP/s) with the current thread count: the best of repeated
    products of two square matrices (1024² on CPU, 8192² on a GPU) within about `seconds` (the fastest is the
    least disturbed by other processes)."""
    size = 8192 if device.type == "cuda" else 1024
    generator = torch.Generator().manual_seed(0)  # its own stream: the run's random numbers stay untouched
    a = torch.randn(size, size, generator=generator).to(device)
    b = torch.randn(size, size, generator=generator).to(device)
    torch.mm(a, b)  # warm-up
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == float("inf"):
        _synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
