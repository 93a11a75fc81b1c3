"""A layer-by-layer table of a model: kinds, output shapes (from one real batch) and parameter counts."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lamina.models.flops import counting

__all__ = ["layer_table", "forward_flops"]


def layer_table(model: nn.Module, sample: Tensor) -> tuple[list[list[str]], int, int]:
    """(rows of [name, kind, output shape, parameters], total parameters, trainable parameters)."""
    shapes: dict[str, str] = {}
    leaves = [(name, module) for name, module in model.named_modules() if name and not list(module.children())]
    hooks = []
    for name, module in leaves:

        def record(module, inputs, output, name=name):
            value = output[0] if isinstance(output, tuple) else output
            shapes[name] = str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__

        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(sample)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    rows = []
    for name, module in leaves:
        count = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append([name, type(module).__name__, shapes.get(name, "-"), f"{count:,}"])
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return rows, total, trainable


def forward_flops(model: nn.Module, sample: Tensor) -> int:
    """FLOPs of one forward pass over `sample` (matrix multiplies, convolutions and attention, as PyTorch counts
    them, with the CPU kernels it has no formula for added: lamina/models/flops.py).

    Example:
        >>> forward_flops(nn.Linear(3, 2), torch.zeros(4, 3))  # 2 · 4 · 3 · 2
        48
    """
    was_training = model.training
    try:
        with torch.no_grad(), counting() as counter:
            model.eval()(sample)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
