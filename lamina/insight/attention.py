"""Attention maps of lamina's transformer family, attention rollout, and their pictures.

The model computes attention with `scaled_dot_product_attention`, which returns no weights. A forward pre-hook on
each SelfAttention layer reads what the layer is given (its input, the causal flag, the padding mask, the rotary
tables) and recomputes the weights from the layer's own q and k projections:

    weights = softmax(q kᵀ / √D, keys masked as the layer masks them)      (N, heads, T, T) per layer

so the model, its computation and its weights' names stay as they are. Rollout (Abnar & Zuidema, 2020): the
heads' mean, plus the identity for the residual connection, each row renormalized, multiplied through the layers:
how much each position at the top draws on each input position. A causal model's rows only ever cover earlier
positions (each layer's rows do), so its rollout stays lower-triangular.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.insight.heatmaps import font, save_png, weight_color
from lamina.models.attention import SelfAttention, rotate

__all__ = ["attention_maps", "attention_rollout", "attention_weights", "write_attention", "has_attention"]

TOKEN_LABELS_UP_TO = 40  # positions on the rollout's axes are labelled with their tokens up to this length


def has_attention(model: nn.Module) -> bool:
    """Whether the model has lamina's self-attention layers (transformer and moe families)."""
    return any(isinstance(module, SelfAttention) for module in model.modules())


def attention_weights(
    layer: SelfAttention,
    x: Tensor,
    causal: bool,
    padding: Tensor | None = None,
    rotary: tuple[Tensor, Tensor] | None = None,
    cache=None,
) -> Tensor:
    """(N, heads, T, T) the weights `layer` uses on input `x` (N, T, C), with its masks. A query whose every key is
    masked attends to nothing (its row is 0, as scaled_dot_product_attention's output is)."""
    if cache is not None:
        raise ModelError("attention maps are read from a whole sequence at once", "call the model without a cache")
    batch, steps, width = x.shape
    q, k, _ = layer.qkv(x).split(width, dim=2)
    # (N, T, C) → (N, T, H, D) → (N, H, T, D)
    q, k = (t.view(batch, steps, layer.heads, width // layer.heads).transpose(1, 2) for t in (q, k))
    if rotary is not None:
        q, k = rotate(q, *rotary), rotate(k, *rotary)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (N, H, T, T)
    allowed = torch.ones(steps, steps, dtype=torch.bool, device=x.device)
    if causal:
        allowed = allowed.tril()
    if padding is not None:
        allowed = allowed & ~padding[:, None, None, :]  # (N, 1, 1, T): padding keys are never attended to
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).nan_to_num(0.0)


def attention_maps(model: nn.Module, inputs: Tensor) -> list[Tensor]:
    """One (N, heads, T, T) tensor of attention weights per layer, first layer first, for `inputs` (N, T) (T
    counts the CLS position of a classifier that pools by it, first).

    Example:
        >>> from lamina.data.spec import DataSpec
        >>> from lamina.models.registry import build_model
        >>> spec = DataSpec("text", "classification", (6,), num_classes=2, extra={"vocab_size": 9, "pad_id": 0})
        >>> model = build_model("transformer", spec, layers=2, heads=4, width=16, pooling="cls").eval()
        >>> [tuple(m.shape) for m in attention_maps(model, torch.tensor([[3, 4, 5, 0, 0, 0]]))]
        [(1, 4, 7, 7), (1, 4, 7, 7)]
    """
    layers = [module for module in model.modules() if isinstance(module, SelfAttention)]
    if not layers:
        raise ModelError(
            f"model {type(model).__name__} has no self-attention layers", "attention maps are for transformers"
        )
    captured: list[Tensor] = []

    def record(layer, arguments, keywords):
        captured.append(attention_weights(layer, *arguments, **keywords))

    handles = [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in layers]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def attention_rollout(maps: list[Tensor]) -> Tensor:
    """(N, T, T) attention rollout of per-layer maps (N, heads, T, T): each row sums to 1 (Abnar & Zuidema, 2020).

    Example:
        >>> causal = torch.tensor([[1.0, 0.0], [0.5, 0.5]]).expand(1, 2, 2, 2)  # (N, heads, T, T)
        >>> attention_rollout([causal, causal])[0]
        tensor([[1.0000, 0.0000],
                [0.4375, 0.5625]])
    """
    rollout: Tensor | None = None
    for layer in maps:
        mixed = layer.float().mean(dim=1)  # (N, T, T): the heads' mean
        mixed = mixed + torch.eye(mixed.shape[-1], device=mixed.device)  # the residual path
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout  # later layers read the earlier ones' mixture
    if rollout is None:
        raise ValueError("attention_rollout needs the maps of at least one layer")
    return rollout


def _visible(token: str) -> str:
    """A token as an axis label: spaces and line breaks made visible, long tokens cut."""
    text = token.replace("\n", "\\n").replace(" ", "·")
    return text if len(text) <= 10 else text[:9] + "…"


def _draw_map(draw: ImageDraw.ImageDraw, matrix: Tensor, left: int, top: int, cell: int, scale: float) -> None:
    for row, values in enumerate(matrix.tolist()):
        for column, value in enumerate(values):
            x, y = left + column * cell, top + row * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=weight_color(value / scale))
    size = cell * matrix.shape[0]
    draw.rectangle([left - 1, top - 1, left + size, top + size], outline="#888")


def write_attention(path: Path, maps: list[Tensor], rollout: Tensor, tokens: list[str] | None, title: str) -> Path:
    """A PNG of one input's attention: a grid of layers (rows) × heads (columns), each map's rows the queries and
    columns the keys, white 0 to dark blue 1; beside it the rollout, larger, with each position's token on both
    axes when the sequence is short (up to 40 positions) and `tokens` are given. `maps`: (heads, T, T) per layer;
    `rollout`: (T, T)."""
    steps, heads = rollout.shape[-1], maps[0].shape[0]
    cell = max(1, min(12, 160 // steps))
    big = max(cell, min(20, 420 // steps))
    labelled = tokens is not None and steps <= TOKEN_LABELS_UP_TO
    side, big_side, gap, label_room = cell * steps, big * steps, 18, 80 if labelled else 0
    grid_left, top = 70, 56
    rollout_left = grid_left + heads * (side + gap) + 40 + label_room
    largest = float(rollout.max()) or 1.0
    rollout_title = f"rollout over {len(maps)} layers (dark blue: {largest:.2f})"
    width = rollout_left + max(big_side, int(font(11).getlength(rollout_title))) + 30
    height = top + max(len(maps) * (side + gap), big_side + label_room) + 30
    image = Image.new("RGB", (max(width, 520), height), "white")
    draw = ImageDraw.Draw(image)
    small = font(11)
    draw.text((10, 8), title, fill="black", font=font(14))
    draw.text(
        (10, 28), "rows: queries (position attending), columns: keys; white 0 to dark blue 1", fill="#444", font=small
    )
    for layer, layer_maps in enumerate(maps):
        y = top + layer * (side + gap) + 14
        draw.text((grid_left - 8, y + side / 2), f"layer {layer + 1}", fill="black", font=small, anchor="rm")
        for head in range(heads):
            x = grid_left + head * (side + gap)
            if layer == 0:
                draw.text((x + side / 2, y - 4), f"head {head + 1}", fill="black", font=small, anchor="mb")
            _draw_map(draw, layer_maps[head], x, y, cell, 1.0)
    y = top + 14
    draw.text((rollout_left, y - 4), rollout_title, fill="black", font=small, anchor="lb")
    _draw_map(draw, rollout, rollout_left, y, big, largest)
    if labelled:
        for position, token in enumerate(tokens):
            label = _visible(token)
            middle = position * big + big / 2
            draw.text((rollout_left - 4, y + middle), label, fill="black", font=small, anchor="rm")
            column = Image.new("RGBA", (label_room, big), (255, 255, 255, 0))
            ImageDraw.Draw(column).text((label_room - 2, big / 2), label, fill="black", font=small, anchor="rm")
            column = column.rotate(90, expand=True)
            image.paste(column, (round(rollout_left + position * big), y + big_side + 4), column)
    return save_png(image, path)
