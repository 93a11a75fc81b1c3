"""Gradient norms per layer, logged so vanishing and exploding gradients are visible.

Every `log_every_steps` steps a row {"kind": "gradients", "step", "total", "layers": {layer: norm}} goes to
metrics.jsonl, with norms as they were before clipping; at the end, plots/gradient_norms.png shows log10 of
each layer's norm over training.
"""

from __future__ import annotations

import json
import math
import re

import torch
from torch import Tensor, nn

from lamina.train.callbacks import Callback

__all__ = ["GradientNorms", "layer_of", "layer_gradient_norms"]


def layer_of(parameter: str) -> str:
    """The layer a parameter belongs to: 'blocks.0.attention.qkv.weight' → 'blocks.0.attention.qkv';
    a recurrent module's 'recurrent.weight_hh_l1_reverse' → 'recurrent.l1_reverse'."""
    recurrent = re.match(r"(.*?)\.?(?:weight|bias)_(?:ih|hh)_(l\d+(?:_reverse)?)$", parameter)
    if recurrent:
        return ".".join(part for part in recurrent.groups() if part)
    return parameter.rsplit(".", 1)[0] if "." in parameter else parameter


def layer_gradient_norms(model: nn.Module) -> dict[str, Tensor]:
    """L2 norm of the gradient of each layer's parameters together (tensors; nothing is synchronized)."""
    squares: dict[str, Tensor] = {}
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            layer = layer_of(name)
            value = parameter.grad.detach().float().pow(2).sum()
            squares[layer] = squares[layer] + value if layer in squares else value
    return {layer: total.sqrt() for layer, total in squares.items()}


class GradientNorms(Callback):
    """Writes per-layer gradient norms through the run's MetricsLog at each logged step."""

    def __init__(self, log, plot_path=None):
        self.log, self.plot_path = log, plot_path

    def step_end(self, loop, loss: float | None) -> None:
        if loss is None:
            return
        norms = layer_gradient_norms(getattr(loop.model, "_orig_mod", loop.model))
        if not norms:
            return
        values = torch.stack(list(norms.values())).tolist()
        clip = loop.settings.gradient_clip
        scale = 1.0
        if clip and loop.gradient_norm is not None:  # undo clipping: report what backpropagation produced
            scale = min(1.0, clip / (float(loop.gradient_norm) + 1e-6))
        layers = {layer: value / scale for layer, value in zip(norms, values, strict=True)}
        total = math.sqrt(sum(value * value for value in layers.values()))
        row = {"kind": "gradients", "step": loop.state.step, "total": total, "layers": layers}
        self.log.handle.write(json.dumps(row) + "\n")

    def fit_end(self, loop, status: str) -> None:
        if self.plot_path is None or not self.log.folder.metrics.is_file():
            return
        rows = [json.loads(line) for line in self.log.folder.metrics.read_text().splitlines() if '"gradients"' in line]
        rows = [row for row in rows if row.get("kind") == "gradients"]
        if not rows:
            return
        from lamina.artifacts.plots import line_chart

        layers = list(rows[-1]["layers"])
        shown = layers if len(layers) <= 8 else layers[:4] + layers[-4:]  # first and last layers
        series = {layer: ([row["step"] for row in rows if layer in row["layers"]],
                          [math.log10(max(row["layers"][layer], 1e-12)) for row in rows if layer in row["layers"]])
                  for layer in shown}  # fmt: skip
        line_chart(self.plot_path, {"log10 gradient norm per layer": series}, x_label="step")
