"""Building blocks shared by model families: activations, normalization and weight initialization by name."""

from __future__ import annotations

from torch import nn

__all__ = ["activation", "initialize"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "celu": lambda: nn.CELU(0.3),  # a smooth ReLU; α = 0.3 as in Page's fast CIFAR-10 ResNet-9
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    return _ACTIVATIONS[name]()


def initialize(model: nn.Module, scheme: str, activation_name: str = "relu") -> nn.Module:
    """Re-initialize every Linear/Conv weight with `scheme` (biases to zero); 'default' keeps PyTorch's init."""
    if scheme == "default":
        return model
    # kaiming gains assume a rectifier; for other activations use the matching nonlinearity gain
    nonlinearity = activation_name if activation_name in ("relu", "leaky_relu", "tanh", "sigmoid") else "relu"
    for module in model.modules():
        if not isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            continue
        weight = module.weight
        if scheme == "xavier_uniform":
            nn.init.xavier_uniform_(weight, gain=nn.init.calculate_gain(nonlinearity))
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(weight, gain=nn.init.calculate_gain(nonlinearity))
        elif scheme == "kaiming_uniform":
            nn.init.kaiming_uniform_(weight, nonlinearity=nonlinearity)
        elif scheme == "kaiming_normal":
            nn.init.kaiming_normal_(weight, nonlinearity=nonlinearity)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(weight, gain=nn.init.calculate_gain(nonlinearity))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    return model
