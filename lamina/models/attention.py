"""Self-attention with `scaled_dot_product_attention`, position encodings, and a key/value cache for generation.

    x (B, T, C) → q, k, v (B, H, T, D) → softmax(q kᵀ / √D + mask) v → (B, T, C)

Rotary positions rotate q and k by their absolute position, so cached keys stay valid as generation goes on;
learned and sinusoidal positions are added to the token embeddings instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SelfAttention", "KeyValueCache", "LearnedPositions", "sinusoidal_table", "rotary_tables", "rotate"]


class LearnedPositions(nn.Module):
    """A learned vector per position, added to the token embeddings (GPT-2, nanoGPT's wpe)."""

    def __init__(self, context: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(context, width))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, start: int, length: int) -> Tensor:
        # an index, not a slice: a sliced view of a parameter trips torch's FLOP counter (used by lamina's dry run)
        return self.weight[torch.arange(start, start + length, device=self.weight.device)]  # (T, C)


def sinusoidal_table(length: int, width: int) -> Tensor:
    """(length, width) fixed sines and cosines of geometrically spaced frequencies (Vaswani et al., 2017)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table


def rotary_tables(positions: Tensor, head_width: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin (T, D/2) of the rotation angles for `positions` (RoFormer, Su et al., 2021)."""
    frequency = base ** (-torch.arange(0, head_width, 2, dtype=torch.float32, device=positions.device) / head_width)
    angles = positions.float()[:, None] * frequency[None, :]
    return angles.cos(), angles.sin()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each pair (x[..., i], x[..., i + D/2]) of (B, H, T, D) by the angle of its position."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class KeyValueCache:
    """Keys and values of every layer for the tokens seen so far, so each new token costs one step, not a
    forward pass over the whole context."""

    def __init__(self):
        self.keys: dict[int, Tensor] = {}
        self.values: dict[int, Tensor] = {}

    @property
    def length(self) -> int:
        """Tokens cached (by the first layer; the others catch up within the same forward pass)."""
        return self.cached(0)

    def cached(self, layer: int) -> int:
        return self.keys[layer].shape[2] if layer in self.keys else 0

    def extend(self, layer: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append this step's (B, H, T, D) keys and values; returns everything cached for `layer`."""
        if layer in self.keys:
            keys = torch.cat([self.keys[layer], keys], dim=2)
            values = torch.cat([self.values[layer], values], dim=2)
        self.keys[layer], self.values[layer] = keys, values
        return keys, values


class SelfAttention(nn.Module):
    """Multi-head self-attention: one projection to q, k, v; scaled_dot_product_attention; an output projection."""

    def __init__(self, width: int, heads: int, bias: bool, dropout: float, layer: int = 0):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads, self.dropout, self.layer = heads, dropout, layer
        self.qkv = nn.Linear(width, 3 * width, bias=bias)
        self.out = nn.Linear(width, width, bias=bias)

    def forward(
        self,
        x: Tensor,
        causal: bool,
        padding: Tensor | None = None,  # (B, T) True where the token is padding
        rotary: tuple[Tensor, Tensor] | None = None,  # cos, sin (T, D/2) for these positions
        cache: KeyValueCache | None = None,
    ) -> Tensor:
        batch, steps, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        # (B, T, C) → (B, T, H, D) → (B, H, T, D)
        q, k, v = (t.view(batch, steps, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))
        if rotary is not None:
            q, k = rotate(q, *rotary), rotate(k, *rotary)
        past = 0
        if cache is not None:
            past = cache.cached(self.layer)
            k, v = cache.extend(self.layer, k, v)
        mask, is_causal = None, causal and past == 0
        if causal and past and steps > 1:  # new queries see the cache and the new keys up to themselves
            mask = torch.ones(steps, past + steps, dtype=torch.bool, device=x.device).tril(diagonal=past)
        if padding is not None:
            keep = ~padding[:, None, None, :]  # (B, 1, 1, T): True = may attend
            mask = keep if mask is None else mask & keep
            if is_causal:
                mask = mask & torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
                is_causal = False
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal)
        y = y.transpose(1, 2).reshape(batch, steps, width)  # (B, H, T, D) → (B, T, C)
        return self.out(y)
