"""Extending the loop by observing it. Six events, called in this order:

    fit_start → (epoch_start → step_end × N → evaluate_end → epoch_end) × epochs → fit_end

A callback may set `loop.should_stop = True` to end training after the current epoch. Its `state_dict()` is
saved in every checkpoint under the callback's unique name (`state_keys`), so a resumed run continues with the
same callback state. An exception inside a callback is re-raised naming the callback and the event.
"""

from __future__ import annotations

from typing import Any

from lamina.core.errors import LaminaError
from lamina.training.options import metric_goal

__all__ = ["Callback", "EarlyStopping", "EVENTS", "CallbackError", "emit", "improved", "state_keys"]

EVENTS = ("fit_start", "epoch_start", "step_end", "evaluate_end", "epoch_end", "fit_end")


class Callback:
    """Base class: override any of the event methods; each receives the loop (and the event's values)."""

    def fit_start(self, loop) -> None: ...
    def epoch_start(self, loop) -> None: ...
    def step_end(self, loop, loss: float | None) -> None: ...  # loss is None between logging steps
    def evaluate_end(self, loop, split: str, metrics: dict[str, float]) -> None: ...
    def epoch_end(self, loop, row: dict[str, Any]) -> None: ...
    def fit_end(self, loop, status: str) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


def state_keys(callbacks: list[Callback]) -> list[str]:
    """A unique name per callback, under which its state is saved: its class name, then #2, #3 … for later
    callbacks of the same class.

    Example:
        >>> state_keys([EarlyStopping("val.loss", 3), Callback(), EarlyStopping("val.loss", 5)])
        ['EarlyStopping', 'Callback', 'EarlyStopping#2']
    """
    keys, seen = [], {}
    for callback in callbacks:
        name = type(callback).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


class CallbackError(RuntimeError):
    """An exception raised inside a callback, with the callback and event named."""


def emit(callbacks: list[Callback], event: str, loop, *values: Any) -> None:
    for callback in callbacks:
        try:
            getattr(callback, event)(loop, *values)
        except (LaminaError, KeyboardInterrupt, CallbackError, OSError):  # OSError: a full disk is not a bug
            raise
        except Exception as error:
            raise CallbackError(f"callback {type(callback).__name__} failed in {event}: {error!r}") from error


def improved(value: float, best: float | None, goal: str, min_delta: float = 0.0) -> bool:
    """Whether `value` beats `best` by more than `min_delta` in the direction of `goal` ('min' or 'max')."""
    if value != value:  # NaN never improves
        return False
    if best is None:
        return True
    return value < best - min_delta if goal == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when `monitor` (e.g. 'val.loss') has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.goal = metric_goal(monitor.split(".", 1)[1])
        self.best: float | None = None
        self.waited = 0

    def epoch_end(self, loop, row: dict[str, Any]) -> None:
        value = row[self.monitor]
        if improved(value, self.best, self.goal, self.min_delta):
            self.best, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            loop.should_stop = True
            loop.stop_reason = f"early stopping: {self.monitor} did not improve for {self.patience} epochs"

    def state_dict(self) -> dict:
        return {"best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.waited = state["best"], state["waited"]
