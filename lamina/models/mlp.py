"""Feedforward network (multi-layer perceptron): the model every other family builds on."""

from __future__ import annotations

import math

from torch import Tensor, nn

from lamina.data.spec import DataSpec
from lamina.models.layers import activation, initialize
from lamina.models.options import MLPOptions

__all__ = ["MLP", "build_mlp"]


class MLP(nn.Module):
    """Flattens each sample, then hidden layers, then `head` → (B, outputs)."""

    def __init__(self, inputs: int, outputs: int, config: MLPOptions):
        super().__init__()
        layers: list[nn.Module] = []
        width = inputs
        for size in config.hidden_sizes:
            layers.append(nn.Linear(width, size, bias=config.norm != "batch"))
            if config.norm == "batch":
                layers.append(nn.BatchNorm1d(size))
            elif config.norm == "layer":
                layers.append(nn.LayerNorm(size))
            layers.append(activation(config.activation))
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, outputs)
        initialize(self, config.init, config.activation)

    def forward(self, inputs: Tensor) -> Tensor:
        features = self.body(inputs.flatten(1))  # (B, ...) → (B, F) → (B, hidden)
        return self.head(features)


def build_mlp(config: MLPOptions, spec: DataSpec) -> nn.Module:
    """Feedforward MLP on any fixed-size input (images are flattened)."""
    return MLP(math.prod(spec.input_shape), spec.output_size, config)
