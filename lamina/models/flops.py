"""Counting FLOPs with PyTorch's own counter (`torch.utils.flop_counter`), plus the formulas it lacks on CPU.

PyTorch counts matrix multiplies, convolutions and its GPU attention kernels. On CPU two kinds of layer reach it
as fused kernels it has no formula for, and would count as 0:

- `scaled_dot_product_attention` runs `_scaled_dot_product_flash_attention_for_cpu` (and its backward): counted
  with PyTorch's own formulas for the GPU flash kernels (forward 4·B·H·T·S·D: the scores q kᵀ and the weighted sum
  of v, a causal mask not exploited; backward 2.5× that, as flash attention recomputes the scores);
- `nn.LSTM` runs oneDNN's `mkldnn_rnn_layer` (one op per layer and direction): counted as its gate matrix
  multiplies, 2·T·N·(I + H)·4H forward and twice that backward (the gradients of the weights and of the inputs
  and hidden states). GRU and plain RNN layers, and packed sequences, run as separate matrix multiplies, which
  PyTorch counts itself.

Element-wise work (activations, normalization, softmax, optimizer updates) is not counted, as in PyTorch and in
the usual "6·N per token" estimates.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["counting", "lstm_layer_flops", "extra_formulas"]


def lstm_layer_flops(steps: int, batch: int, inputs: int, gates: int) -> int:
    """FLOPs of one LSTM layer's forward pass: each step multiplies (batch, inputs) by the input weights and
    (batch, hidden) by the hidden weights, both with `gates` = 4·hidden outputs (hidden = gates / 4).

    Example:
        >>> lstm_layer_flops(steps=5, batch=2, inputs=8, gates=64)  # 2 · 5 · 2 · (8 + 16) · 64
        30720
    """
    hidden = gates // 4
    return 2 * steps * batch * (inputs + hidden) * gates


def extra_formulas(flop_counter: Any) -> dict[Any, Any]:
    """{aten op: formula} for the CPU kernels PyTorch's counter has no formula for (see the module's docstring);
    ops this PyTorch build lacks are left out."""
    import torch  # PyTorch only when counting

    aten = torch.ops.aten
    formulas: dict[Any, Any] = {}

    # the counter passes each formula the shapes of the op's arguments
    def attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query, key, value)

    def attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)

    def lstm_layer(inputs, input_weights, *args, out_shape=None, **kwargs) -> int:
        # inputs (T, N, I) or (N, T, I): the count needs only T·N; input_weights (4H, I)
        return lstm_layer_flops(inputs[0], inputs[1], inputs[2], input_weights[0])

    def lstm_layer_backward(inputs, input_weights, *args, out_shape=None, **kwargs) -> int:
        # the gradients of the weights (as many FLOPs as the forward pass) and of the inputs and hidden states
        # (as many again)
        return 2 * lstm_layer_flops(inputs[0], inputs[1], inputs[2], input_weights[0])

    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", attention),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", attention_backward),
        ("mkldnn_rnn_layer", lstm_layer),
        ("mkldnn_rnn_layer_backward", lstm_layer_backward),
    ):
        if hasattr(aten, name):
            formulas[getattr(aten, name)] = formula  # FlopCounterMode passes it the shapes
    return formulas


@contextmanager
def counting() -> Iterator[Any]:
    """A FlopCounterMode with the formulas above, entered: `with counting() as counter: ...;
    counter.get_total_flops()`."""
    from torch.utils import flop_counter  # imports much of PyTorch's tracing machinery

    with (
        _no_dynamo_import(flop_counter),
        flop_counter.FlopCounterMode(display=False, custom_mapping=extra_formulas(flop_counter)) as counter,
    ):
        yield counter


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
