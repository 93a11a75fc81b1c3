"""Layer statistics for the training doctor, measured on logging steps only: the share of dead ReLU units and of
saturated sigmoid/tanh outputs per activation layer, and the update-to-weight ratio per layer.

The statistics are pure functions of tensors; `LayerProbe` attaches forward hooks to the activation modules for
the forward pass of one step and snapshots the weights before its optimizer step, then detaches. It only observes:
no weight, gradient or random stream changes (bench/weight_hashes.py holds this). The hooks see activations that
are modules (every family builds them with lamina/models/layers.py `activation`); a model that applies an
activation as a function gets no activation statistics, only update ratios.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lamina.training.gradients import layer_of

__all__ = ["SATURATION_MARGIN", "dead_units", "saturated_outputs", "update_ratios", "LayerProbe"]

# A sigmoid output within SATURATION_MARGIN of 0 or 1, or a tanh output within it of ±1, is saturated: its slope
# is below 0.01 (sigmoid) or 0.02 (tanh) of the slope at 0, so almost no gradient passes through it.
SATURATION_MARGIN = 0.01

RECTIFIERS = (nn.ReLU, nn.ReLU6)  # units that output exactly 0 for every negative input: they can die
SATURATING = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}


def dead_units(outputs: Tensor) -> tuple[Tensor, int]:
    """How many units of a rectifier's `outputs` are never positive over the batch, and how many units there are.
    A unit is a feature of (N, F) outputs and a channel of (N, C, ...) ones (a convolution's channel shares its
    filter, so it dies as one).

    Example:
        >>> dead, units = dead_units(torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]]))
        >>> int(dead), units
        (1, 3)
    """
    if outputs.ndim < 2:
        return torch.zeros((), device=outputs.device), 1
    others = [dimension for dimension in range(outputs.ndim) if dimension != 1]
    largest = outputs.detach().amax(dim=others)  # (units,)
    return (largest <= 0).sum(), int(largest.numel())


def saturated_outputs(outputs: Tensor, function: str, margin: float = SATURATION_MARGIN) -> Tensor:
    """The share of a sigmoid's or tanh's `outputs` within `margin` of their limits (a 0-dim tensor).

    Example:
        >>> float(saturated_outputs(torch.tensor([0.001, 0.5, 0.995, 0.2]), "sigmoid"))
        0.5
    """
    outputs = outputs.detach()
    distance = torch.minimum(outputs, 1 - outputs) if function == "sigmoid" else 1 - outputs.abs()
    return (distance < margin).float().mean()


def update_ratios(before: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """‖w_after − w_before‖ / ‖w_before‖ per layer (its parameters together), for the parameters in `before` (name →
    the value before the step); NaN for a layer whose weights were all zero before (nothing is synchronized).

    Example:
        >>> layer = nn.Linear(2, 1, bias=False)
        >>> before = {"weight": layer.weight.detach().clone()}
        >>> _ = layer.weight.data.mul_(1.5)
        >>> round(float(update_ratios(before, layer)["weight"]), 3)
        0.5
    """
    changes: dict[str, Tensor] = {}
    sizes: dict[str, Tensor] = {}
    for name, parameter in model.named_parameters():
        if name not in before:
            continue
        layer = layer_of(name)
        old = before[name].float()
        change = (parameter.detach().float() - old).pow(2).sum()
        size = old.pow(2).sum()
        changes[layer] = changes[layer] + change if layer in changes else change
        sizes[layer] = sizes[layer] + size if layer in sizes else size
    return {layer: (changes[layer] / sizes[layer]).sqrt() for layer in changes}


class LayerProbe:
    """Measures one training step: `arm()` before it (hooks on, weights snapshot), `read()` after its optimizer
    step (hooks off) returns {"activations": {layer: {...}}, "updates": {layer: ratio}} as plain floats.

    Hooks record only forward passes in training mode, so a validation pass between arming and reading (the epoch
    ends after the step before a logging step) is not counted.
    """

    def __init__(self, model: nn.Module, activations: bool = True):
        self.model = model
        self.watched = self._activation_modules(model) if activations else {}
        self.handles: list = []
        self.dead: dict[str, list] = {}
        self.saturated: dict[str, list] = {}
        self.before: dict[str, Tensor] | None = None

    @staticmethod
    def _activation_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
        watched = {}
        for name, module in model.named_modules():
            if isinstance(module, RECTIFIERS):
                watched[name] = (module, "relu")
            elif type(module) in SATURATING:
                watched[name] = (module, SATURATING[type(module)])
        return watched

    @property
    def armed(self) -> bool:
        return self.before is not None

    def arm(self) -> None:
        if self.armed:
            return
        self.dead, self.saturated = {}, {}
        for name, (module, function) in self.watched.items():
            self.handles.append(module.register_forward_hook(self._hook(name, function)))
        with torch.no_grad():
            self.before = {
                name: parameter.detach().clone()
                for name, parameter in self.model.named_parameters()
                if parameter.requires_grad
            }

    def _hook(self, name: str, function: str):
        def record(module: nn.Module, inputs, outputs) -> None:
            if not module.training or not isinstance(outputs, Tensor):
                return
            with torch.no_grad():
                if function == "relu":  # a module used twice in a forward pass (a residual block) counts twice
                    self.dead.setdefault(name, []).append(dead_units(outputs))
                else:
                    self.saturated.setdefault(name, []).append(saturated_outputs(outputs, function))

        return record

    def disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles, self.before = [], None

    def read(self) -> dict[str, dict]:
        """The step's statistics (hooks removed, snapshot dropped); empty dicts when the probe was not armed."""
        if not self.armed:
            return {"activations": {}, "updates": {}}
        with torch.no_grad():
            ratios = update_ratios(self.before, self.model)
        self.disarm()
        # every statistic in one tensor, so reading them synchronizes a GPU once
        names = [*self.dead, *self.saturated]
        tensors = [torch.stack([count.float() for count, _ in self.dead[name]]).sum() for name in self.dead]
        tensors += [torch.stack(self.saturated[name]).mean() for name in self.saturated]
        tensors += list(ratios.values())
        values = torch.stack(tensors).tolist() if tensors else []
        activations: dict[str, dict] = {}
        for name, value in zip(names, values, strict=False):
            if name in self.dead:
                activations[name] = {"function": "relu", "dead": value / sum(units for _, units in self.dead[name])}
            else:
                activations[name] = {"function": self.watched[name][1], "saturated": value}
        values = values[len(names) :]
        updates = {layer: value for layer, value in zip(ratios, values, strict=True) if math.isfinite(value)}
        return {"activations": activations, "updates": updates}
