"""An exponential moving average of the weights (Polyak averaging), evaluated in place of the raw weights.

Every `every_steps` optimizer steps the average moves toward the current weights and buffers:

    average ← d · average + (1 − d) · weights,   d = min(decay^every_steps, (1 + u) / (10 + u))

where u counts earlier updates (the warm-up keeps the first, random weights from lingering; the first update
copies). Validation, the best checkpoint and the final model use the average; the `last` checkpoint keeps the
raw weights and the average beside them, so a resumed run continues exactly.

With `lookahead` the average is also copied back into the trained weights at each update, and the kept weight
ramps with training progress instead, d = decay^every_steps · (step / total steps)³ (Jordan's airbench): the
weights move freely early on and are pulled strongly toward their average at the end.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from lamina.training.callbacks import Callback

__all__ = ["WeightAverage", "average_rate"]


def average_rate(decay: float, every_steps: int, updates: int) -> float:
    """The weight `d` the average keeps at update number `updates` (0: the first update copies)."""
    if updates == 0:
        return 0.0
    return min(decay**every_steps, (1 + updates) / (10 + updates))


class WeightAverage(Callback):
    """Keeps `loop.evaluation_model`, an averaged copy of `loop.model`, up to date after optimizer steps."""

    def __init__(self, decay: float, every_steps: int = 1, lookahead: bool = False):
        self.decay, self.every_steps, self.lookahead = decay, every_steps, lookahead
        self.updates = 0
        self.model: nn.Module | None = None
        self._restored: dict[str, Tensor] | None = None

    def fit_start(self, loop) -> None:
        self.model = copy.deepcopy(loop.model)
        self.model.requires_grad_(False)
        for module in self.model.modules():
            if isinstance(module, nn.RNNBase):  # a copy scatters cuDNN's packed weights: slow, and warns on CUDA
                module.flatten_parameters()
        if self._restored is not None:
            self.model.load_state_dict(self._restored)
            self._restored = None
        loop.evaluation_model = self.model

    def step_end(self, loop, loss: float | None) -> None:
        if loop.state.step % self.every_steps:
            return
        if self.lookahead:
            keep = self.decay**self.every_steps * (loop.state.step / loop.total_steps) ** 3
        else:
            keep = average_rate(self.decay, self.every_steps, self.updates)
        averaged, current = self.model.state_dict(), loop.model.state_dict()
        floats = [name for name, value in averaged.items() if value.is_floating_point()]
        with torch.no_grad():
            if floats:
                targets, sources = [averaged[name] for name in floats], [current[name] for name in floats]
                torch._foreach_lerp_(targets, sources, 1.0 - keep)
                if self.lookahead:  # the trained weights continue from the average
                    torch._foreach_copy_(sources, targets)
            for name, value in averaged.items():
                if not value.is_floating_point():  # counters and flags follow the model
                    value.copy_(current[name])
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        weights = self.model.state_dict() if self.model is not None else (self._restored or {})
        return {"updates": self.updates, "weights": dict(weights)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = state["updates"]
        self._restored = state["weights"] or None
