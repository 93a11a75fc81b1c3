"""A layer-by-layer table of a model: kinds, output shapes (from one real batch) and parameter counts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

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
    """FLOPs of one forward pass over `sample` (matrix multiplies and convolutions, as PyTorch counts them).

    Example:
        >>> forward_flops(nn.Linear(3, 2), torch.zeros(4, 3))  # 2 · 4 · 3 · 2
        48
    """
    from torch.utils import flop_counter  # imports much of PyTorch's tracing machinery

    was_training = model.training
    with _no_dynamo_import(flop_counter):
        try:
            with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as counter:
                model.eval()(sample)
        finally:
            model.train(was_training)
    return int(counter.get_total_flops())


@contextmanager
def _no_dynamo_import(flop_counter) -> Iterator[None]:
    """While counting: PyTorch wraps every dispatch mode's __torch_dispatch__ so that TorchDynamo never compiles
    it, and that wrapper imports torch._dynamo on its first call (≈1.7 s here, a third of `lamina validate`)
    though nothing is compiled. Its cache of the disabled function is filled with the function itself for the
    count, then emptied. Should PyTorch rename these internals, nothing breaks: the import just happens."""
    mode = getattr(flop_counter, "_FlopCounterMode", None)
    raw = getattr(getattr(mode, "__torch_dispatch__", None), "__wrapped__", None)
    if raw is None or "torch._dynamo" in sys.modules or hasattr(raw, "__dynamo_disable"):
        yield
        return
    setattr(raw, "__dynamo_disable", raw)  # noqa: B010 (the name is PyTorch's, mangling must not apply)
    try:
        yield
    finally:
        delattr(raw, "__dynamo_disable")  # noqa: B043
