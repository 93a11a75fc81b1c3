"""Transformer: pre-norm blocks of self-attention and a feed-forward layer (dense, or a mixture of experts).

One module, two uses, chosen by the data's task:
- language modeling: a causal decoder (GPT); the output layer can share the token embedding (weight tying);
  `forward(tokens, cache)` with a KeyValueCache generates one token per step.
- classification / regression: an encoder over the whole sequence, pooled by a CLS token or the mean.
With its defaults on characters it is nanoGPT's model: GPT-2 initialization, LayerNorm and Linear without biases.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from lamina.config.base import Options
from lamina.data.spec import DataSpec
from lamina.errors import ModelError
from lamina.models.attention import KeyValueCache, LearnedPositions, SelfAttention, rotary_tables, sinusoidal_table
from lamina.models.mixture import FeedForward, MixtureOfExperts
from lamina.models.output import ModelOutput
from lamina.models.registry import models
from lamina.models.sequence import PER_STEP_TASKS, as_steps, sequence_layout

__all__ = ["Transformer", "TransformerConfig", "MixtureConfig", "Block"]


class TransformerConfig(Options):
    """Transformer: decoder-only causal LM for language modeling, encoder (CLS or mean pooling) otherwise."""

    layers: int = Field(4, ge=1)
    """Number of blocks."""
    heads: int = Field(4, ge=1)
    """Attention heads per block (width must be divisible by it)."""
    width: int = Field(128, ge=8)
    """Model width (embedding size)."""
    feedforward: int | None = Field(None, ge=1)
    """Hidden width of each feed-forward layer; default 4 × width."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on embeddings, attention weights and residual branches."""
    bias: bool = False
    """Biases in Linear and LayerNorm layers (nanoGPT: False is a little better and faster)."""
    positions: Literal["learned", "sinusoidal", "rotary"] = "learned"
    """learned vectors (GPT-2), fixed sinusoids (Vaswani et al.), or rotary (rotates queries and keys)."""
    context: int | None = Field(None, ge=1)
    """Longest sequence the positions cover; default: the data's sequence length."""
    causal: bool | None = None
    """Each step sees only earlier steps; default: true for language modeling, false otherwise."""
    pooling: Literal["cls", "mean"] = "mean"
    """Sequence → vector for classification/regression: a learned CLS token's output, or the mean over steps."""
    tie_weights: bool = True
    """Language models: the output layer reuses the token embedding matrix (fewer parameters, usually better)."""

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}; e.g. width {self.heads * 32}")
        if self.positions == "rotary" and (self.width // self.heads) % 2:
            raise ValueError("rotary positions need an even width per head (width / heads)")
        return self


class MixtureConfig(TransformerConfig):
    """Transformer whose feed-forward layers are mixtures of experts (top-k routing, load-balancing loss)."""

    experts: int = Field(4, ge=2)
    """Experts per mixture layer."""
    top_k: int = Field(2, ge=1)
    """Experts each token is sent to."""
    expert_hidden: int | None = Field(None, ge=1)
    """Hidden width of each expert; default feedforward / top_k, so a token's active parameters equal the dense
    model's."""
    capacity_factor: float | None = Field(None, gt=0)
    """Cap each expert at factor × its fair share of a batch's tokens (overflow skips it); none = no cap."""
    balance_weight: float = Field(0.01, ge=0)
    """Weight of the load-balancing auxiliary loss (averaged over mixture layers)."""
    every: int = Field(1, ge=1)
    """A mixture in every n-th block (the others stay dense); 1 = all blocks."""

    @model_validator(mode="after")
    def _top_k_fits(self):
        if self.top_k > self.experts:
            raise ValueError(f"top_k {self.top_k} is more than the {self.experts} experts")
        return self


class Block(nn.Module):
    """x + attention(norm(x)), then x + feed-forward(norm(x)): pre-norm, as GPT-2."""

    def __init__(self, config: TransformerConfig, layer: int, mixture: bool):
        super().__init__()
        width, hidden = config.width, config.feedforward or 4 * config.width
        self.norm1 = nn.LayerNorm(width, bias=config.bias)
        self.attention = SelfAttention(width, config.heads, config.bias, config.dropout, layer)
        self.norm2 = nn.LayerNorm(width, bias=config.bias)
        if mixture:
            assert isinstance(config, MixtureConfig)
            expert_hidden = config.expert_hidden or max(1, hidden // config.top_k)
            self.feedforward: nn.Module = MixtureOfExperts(width, expert_hidden, config.experts, config.top_k,
                                                           config.capacity_factor, config.bias)  # fmt: skip
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

    def __init__(self, config: TransformerConfig, spec: DataSpec, family: str = "transformer"):
        super().__init__()
        layout = sequence_layout(spec, family)
        self.layout, self.config = layout, config
        self.per_step = spec.task in PER_STEP_TASKS
        self.causal = config.causal if config.causal is not None else spec.task == "language_modeling"
        self.use_cls = not self.per_step and config.pooling == "cls"
        self.context = config.context or layout.steps + int(self.use_cls)
        width = config.width
        # the head is registered before the embedding: a tied matrix then counts as a Linear weight and gets
        # weight decay, as in nanoGPT
        self.head = nn.Linear(width, spec.output_size, bias=config.bias)
        if layout.tokens:
            self.embed: nn.Module = nn.Embedding(layout.features, width)
            if config.tie_weights and spec.task == "language_modeling":
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
            raise ModelError(f"a sequence of {start + steps} steps is longer than the model's context of "
                             f"{self.context}", "crop it, or train with a larger model.context")  # fmt: skip
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


@models.register("transformer", config=TransformerConfig)
def build_transformer(config: TransformerConfig, spec: DataSpec) -> nn.Module:
    """Transformer: causal decoder (language models) or encoder (classification) with self-attention."""
    return Transformer(config, spec, "transformer")


@models.register("moe", config=MixtureConfig)
def build_moe(config: MixtureConfig, spec: DataSpec) -> nn.Module:
    """Transformer with mixture-of-experts feed-forward layers (router, top-k gating, balance loss)."""
    return Transformer(config, spec, "moe")


for _family in (build_transformer, build_moe):
    _family.sequence_outputs = _family.reads_tokens = True
