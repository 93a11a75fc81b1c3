"""Feedforward network (multi-layer perceptron): the model every other family builds on."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field
from torch import Tensor, nn

from lamina.config.base import Options
from lamina.data.spec import DataSpec
from lamina.models.layers import Activation, Initialization, activation, initialize
from lamina.models.registry import models

__all__ = ["MLP", "MLPConfig"]


class MLPConfig(Options):
    """Feedforward network: (Linear → norm → activation → dropout) per hidden layer, then a linear head."""

    hidden_sizes: list[int] = Field([256, 128], min_length=0)
    """Width of each hidden layer; the list's length is the depth. [] is a linear (logistic) model."""
    activation: Activation = "relu"
    """Non-linearity after each hidden layer."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout probability after each hidden layer."""
    norm: Literal["none", "batch", "layer"] = "none"
    """Normalization of each hidden layer's pre-activations."""
    init: Initialization = "default"
    """Weight initialization scheme."""


class MLP(nn.Module):
    """Flattens each sample, then hidden layers, then `head` → (B, outputs)."""

    def __init__(self, inputs: int, outputs: int, config: MLPConfig):
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


@models.register("mlp", config=MLPConfig)
def build_mlp(config: MLPConfig, spec: DataSpec) -> nn.Module:
    """Feedforward MLP on any fixed-size input (images are flattened)."""
    return MLP(math.prod(spec.input_shape), spec.output_size, config)
