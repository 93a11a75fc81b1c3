"""Transformer: pre-norm blocks of self-attention and a feed-forward layer (dense, or a mixture of experts).

One module, two uses, chosen by the data's task:
- language modeling: a causal decoder (GPT); the output layer can share the token embedding (weight tying);
  `forward(tokens, cache)` with a KeyValueCache generates one token per step.
- classification / regression: an encoder over the whole sequence, pooled by a CLS token or the mean.
With its defaults on characters it is nanoGPT's model: GPT-2 initialization, LayerNorm and Linear without biases.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.attention import KeyValueCache, LearnedPositions, SelfAttention, rotary_tables, sinusoidal_table
from lamina.models.mixture import FeedForward, MixtureOfExperts
from lamina.models.options import MixtureOptions, TransformerOptions
from lamina.models.output import ModelOutput
from lamina.models.sequence import as_steps, sequence_layout
from lamina.tasks import task_of

__all__ = ["Transformer", "Block", "build_transformer", "build_moe"]


class Block(nn.Module):
    """x + attention(norm(x)), then x + feed-forward(norm(x)): pre-norm, as GPT-2."""

    def __init__(self, config: TransformerOptions, layer: int, mixture: bool):
        super().__init__()
        width, hidden = config.width, config.feedforward or 4 * config.width
        self.norm1 = nn.LayerNorm(width, bias=config.bias)
        self.attention = SelfAttention(width, config.heads, config.bias, config.dropout, layer)
        self.norm2 = nn.LayerNorm(width, bias=config.bias)
        if mixture:
            assert isinstance(config, MixtureOptions)
            expert_hidden = config.expert_hidden or max(1, hidden // config.top_k)
            self.feedforward: nn.Module = MixtureOfExperts(
                width, expert_hidden, config.experts, config.top_k, config.capacity_factor, config.bias
            )
        else:
            self.feedforward = FeedForward(width, hidden, config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, causal: bool, padding: Tensor | None, rotary, cache) -> tuple[Tensor, dict]:
        x = x + self.dropout(self.attention(self.norm1(x), causal, padding, rotary, cache))
        h = self.norm2(x)
        if not isinstance(self.feedforward, MixtureOfExperts):
            return x + self.dropout(self.feedforward(h)), {}
        batch, steps, width = h.shape
        tokens = h.reshape(-1, width)  # (B, T, C) → (B·T, C): experts see tokens, not sequences
        real = None if padding is None else ~padding.reshape(-1)
        mixed, report = self.feedforward(tokens if real is None else tokens[real])
        if real is not None:
            mixed = torch.zeros_like(tokens).index_put((real.nonzero().squeeze(1),), mixed)
        return x + self.dropout(mixed.view(batch, steps, width)), report


class Transformer(nn.Module):
    """Token ids (B, T) or features (B, T, F) → (B, T, outputs) per step (language models) or (B, outputs)."""

    def __init__(self, config: TransformerOptions, spec: DataSpec, family: str = "transformer"):
        super().__init__()
        layout = sequence_layout(spec, family)
        self.layout, self.config = layout, config
        task = task_of(spec)
        self.per_step = task.per_step
        self.causal = config.causal if config.causal is not None else task.causal
        self.use_cls = not self.per_step and config.pooling == "cls"
        self.context = config.context or layout.steps + int(self.use_cls)
        width = config.width
        # the head is registered before the embedding: a tied matrix then counts as a Linear weight and gets
        # weight decay, as in nanoGPT
        self.head = nn.Linear(width, spec.output_size, bias=config.bias)
        if layout.tokens:
            self.embed: nn.Module = nn.Embedding(layout.features, width)
            if config.tie_weights and task.causal:  # outputs range over the input vocabulary
                self.embed.weight = self.head.weight
        else:
            self.embed = nn.Linear(layout.features, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width)) if self.use_cls else None
        if config.positions == "learned":
            self.positions: nn.Module | None = LearnedPositions(self.context, width)
        else:
            self.positions = None
            if config.positions == "sinusoidal":
                self.register_buffer("sinusoids", sinusoidal_table(self.context, width), persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        every = getattr(config, "every", 0)
        self.blocks = nn.ModuleList(
            Block(config, layer, mixture=bool(every) and (layer + 1) % every == 0) for layer in range(config.layers)
        )
        self.norm = nn.LayerNorm(width, bias=config.bias)
        self._initialize()

    def _initialize(self) -> None:
        """GPT-2 initialization: N(0, 0.02) weights, zero biases; residual output projections scaled by
        1/√(2·layers) so the residual stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for name, parameter in self.named_parameters():
            if name.endswith(("attention.out.weight", "project.weight")):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * self.config.layers))

    def forward(self, inputs: Tensor, cache: KeyValueCache | None = None) -> Tensor | ModelOutput:
        padding = inputs == self.layout.pad_id if self.layout.pad_id is not None else None
        x = self.embed(inputs if self.layout.tokens else as_steps(inputs))  # (B, T, C)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + T, C)
            if padding is not None:
                padding = torch.cat([padding.new_zeros(x.shape[0], 1), padding], dim=1)
        start, steps = (cache.length if cache is not None else 0), x.shape[1]
        if start + steps > self.context and self.config.positions != "rotary":
            raise ModelError(
                f"a sequence of {start + steps} steps is longer than the model's context of {self.context}",
                "crop it, or train with a larger model.context",
            )
        rotary = None
        if self.positions is not None:
            x = x + self.positions(start, steps)
        elif self.config.positions == "sinusoidal":
            x = x + self.sinusoids[start : start + steps]
        else:
            positions = torch.arange(start, start + steps, device=x.device)
            rotary = rotary_tables(positions, self.config.width // self.config.heads)
        x = self.dropout(x)
        reports = []
        for block in self.blocks:
            x, report = block(x, self.causal, padding, rotary, cache)
            if report:
                reports.append(report)
        x = self.norm(x)
        if self.per_step:
            prediction = self.head(x)  # (B, T, outputs)
        elif self.cls is not None:
            prediction = self.head(x[:, 0])
        elif padding is not None:
            real = (~padding).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
            prediction = self.head((x * real).sum(dim=1) / real.sum(dim=1).clamp(min=1))
        else:
            prediction = self.head(x.mean(dim=1))
        if not reports:
            return prediction
        return _mixture_output(prediction, reports, self.config.balance_weight)


def _mixture_output(prediction: Tensor, reports: list[dict], weight: float) -> ModelOutput:
    """The balance losses (averaged over mixture layers) as an auxiliary loss; per-layer expert shares, router
    entropy and dropped fraction as statistics, logged every epoch."""
    balance = torch.stack([report["balance"] for report in reports]).mean()
    statistics = {}
    for layer, report in enumerate(reports):
        statistics[f"expert_share_{layer}"] = report["share"]
        statistics[f"router_entropy_{layer}"] = report["entropy"]
        statistics[f"dropped_{layer}"] = report["dropped"]
    return ModelOutput(prediction, {"load_balance": weight * balance}, statistics)


def build_transformer(config: TransformerOptions, spec: DataSpec) -> nn.Module:
    """Transformer: causal decoder (language models) or encoder (classification) with self-attention."""
    return Transformer(config, spec, "transformer")


def build_moe(config: MixtureOptions, spec: DataSpec) -> nn.Module:
    """Transformer with mixture-of-experts feed-forward layers (router, top-k gating, balance loss)."""
    return Transformer(config, spec, "moe")
