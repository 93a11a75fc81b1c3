"""Gradient norms per layer, as pure functions, so vanishing and exploding gradients can be seen
(lamina/artifacts/recording.py logs them every `log_every_steps` steps and plots them at the end)."""

from __future__ import annotations

import re

from torch import Tensor, nn

__all__ = ["layer_of", "layer_gradient_norms"]


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
