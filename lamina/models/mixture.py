"""Mixture-of-experts feed-forward layer: a router sends each token to its top-k experts (Shazeer et al., 2017;
Switch Transformer, Fedus et al., 2021), so capacity grows with the number of experts while each token pays for k.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["FeedForward", "MixtureOfExperts", "balance_loss"]


class FeedForward(nn.Module):
    """Linear → GELU → Linear (the transformer's position-wise MLP)."""

    def __init__(self, width: int, hidden: int, bias: bool):
        super().__init__()
        self.expand = nn.Linear(width, hidden, bias=bias)
        self.activation = nn.GELU()
        self.project = nn.Linear(hidden, width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.activation(self.expand(x)))


def balance_loss(share: Tensor, importance: Tensor) -> Tensor:
    """Switch Transformer's load-balancing loss E · Σₑ fₑ · Pₑ: fₑ the share of token assignments expert e got,
    Pₑ its mean router probability. 1 when both are uniform; grows as the router favours a few experts."""
    return share.numel() * (share * importance).sum()


class MixtureOfExperts(nn.Module):
    """(N, C) tokens → (N, C): each token goes to its `top_k` experts, outputs mixed by renormalized router
    probabilities. With `capacity_factor`, an expert takes at most ⌈factor · N · k / E⌉ tokens per batch;
    overflowing tokens skip it (the residual connection carries them)."""

    def __init__(self, width: int, hidden: int, experts: int, top_k: int, capacity_factor: float | None, bias: bool):
        super().__init__()
        self.top_k, self.capacity_factor = top_k, capacity_factor
        self.router = nn.Linear(width, experts, bias=False)
        self.experts = nn.ModuleList(FeedForward(width, hidden, bias) for _ in range(experts))

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mixed outputs, and {balance, share (E,), entropy, dropped} for this batch of tokens."""
        count, experts = x.shape[0], len(self.experts)
        probabilities = self.router(x).float().softmax(dim=-1)  # (N, E)
        weights, chosen = probabilities.topk(self.top_k, dim=-1)  # (N, k)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
        assigned_expert = chosen.reshape(-1)  # (N·k,)
        assigned_token = torch.arange(count, device=x.device).repeat_interleave(self.top_k)
        assigned_weight = weights.reshape(-1)
        capacity = math.ceil(self.capacity_factor * count * self.top_k / experts) if self.capacity_factor else None
        output = torch.zeros_like(x)
        kept = 0
        for index, expert in enumerate(self.experts):
            mine = (assigned_expert == index).nonzero().squeeze(1)
            if capacity is not None:
                mine = mine[:capacity]  # first come, first served
            kept += mine.numel()
            if mine.numel():
                tokens = assigned_token[mine]
                output.index_add_(0, tokens, expert(x[tokens]) * assigned_weight[mine, None])
        share = torch.bincount(assigned_expert, minlength=experts).float() / max(1, assigned_expert.numel())
        entropy = -(probabilities * probabilities.clamp(min=1e-12).log()).sum(dim=-1).mean()
        report = {
            "balance": balance_loss(share, probabilities.mean(dim=0)),
            "share": share,
            "entropy": entropy,
            "dropped": torch.tensor(1.0 - kept / max(1, assigned_expert.numel()), device=x.device),
        }
        return output, report
