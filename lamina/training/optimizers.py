"""Optimizers by name, with weight decay applied only where it belongs.

Weight decay (and the L1/L2 penalties) act on weight matrices and convolution kernels; biases, normalization
scales and embeddings are left alone, as decaying them only hurts. Every param group keeps its `base_lr`, which
the schedule scales each step.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from lamina.training.options import (
    AdamOptions,
    AdamWOptions,
    MuonOptions,
    OptimizerOptions,
    RMSpropOptions,
    SGDOptions,
    optimizers,
)

__all__ = ["build_optimizer", "decayed_parameters", "OptimizerSet", "sgd", "adam", "adamw", "rmsprop", "muon"]


def _named_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, bool]]:
    """(name, parameter, should_decay) for every trainable parameter, each once."""
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            decay = parameter.ndim >= 2 and not isinstance(module, nn.Embedding | nn.EmbeddingBag)
            yield f"{module_name}.{name}" if module_name else name, parameter, decay


def decayed_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters weight decay and L1/L2 penalties apply to: weight matrices and kernels."""
    return [parameter for _, parameter, decay in _named_parameters(model) if decay]


def parameter_groups(model: nn.Module, config: OptimizerOptions) -> list[dict]:
    """Weights (decayed) and biases/norms (not decayed, at `bias_learning_rate_factor` × the rate)."""
    decay, no_decay = [], []
    for _, parameter, should_decay in _named_parameters(model):
        (decay if should_decay else no_decay).append(parameter)
    rate, bias_rate = config.learning_rate, config.learning_rate * config.bias_learning_rate_factor
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "lr": rate, "base_lr": rate},
        {"params": no_decay, "weight_decay": 0.0, "lr": bias_rate, "base_lr": bias_rate},
    ]
    return [group for group in groups if group["params"]]


class OptimizerSet:
    """Several torch optimizers stepped as one (Muon for hidden matrices beside AdamW for the rest)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, optimizer_state in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)


def build_optimizer(config: OptimizerOptions, model: nn.Module):
    """The optimizer named by `config.name`, over `model`'s trainable parameters."""
    return optimizers.get(config.name, "train.optimizer.name").function(config, model)


def sgd(config: SGDOptions, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum/Nesterov."""
    groups = parameter_groups(model, config)
    nesterov = config.nesterov and config.momentum > 0
    return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=nesterov)


def adam(config: AdamOptions, model: nn.Module) -> torch.optim.Optimizer:
    """Adam (weight decay added to the gradient, L2-style)."""
    groups = parameter_groups(model, config)
    return torch.optim.Adam(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), eps=config.eps)


def adamw(config: AdamWOptions, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    groups = parameter_groups(model, config)
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), eps=config.eps)


def rmsprop(config: RMSpropOptions, model: nn.Module) -> torch.optim.Optimizer:
    """RMSprop."""
    groups = parameter_groups(model, config)
    return torch.optim.RMSprop(
        groups,
        lr=config.learning_rate,
        alpha=config.alpha,
        momentum=config.momentum,
        eps=config.eps,
        centered=config.centered,
    )


def muon(config: MuonOptions, model: nn.Module) -> OptimizerSet:
    """Muon on 2-D hidden weight matrices; AdamW on kernels, embeddings, biases, norms and the output head.

    Uses torch.optim.Muon with `adjust_lr_fn="match_rms_adamw"`, so one learning rate suits both halves.
    Convolution kernels go to AdamW because torch's Muon accepts only 2-D parameters.
    """
    lr, decay = config.learning_rate, config.weight_decay
    matrices, rest_decay, rest_plain = [], [], []
    for name, parameter, should_decay in _named_parameters(model):
        is_head = name.split(".")[0] == "head"  # lamina models name their output layer `head`
        if parameter.ndim == 2 and should_decay and not is_head:
            matrices.append(parameter)
        else:
            (rest_decay if should_decay else rest_plain).append(parameter)
    parts: list[torch.optim.Optimizer] = []
    if matrices:
        group = {"params": matrices, "lr": lr, "base_lr": lr, "weight_decay": decay}
        parts.append(
            torch.optim.Muon(
                [group],
                lr=lr,
                momentum=config.momentum,
                nesterov=config.nesterov,
                ns_steps=config.ns_steps,
                adjust_lr_fn="match_rms_adamw",
            )
        )
    bias_lr = lr * config.bias_learning_rate_factor
    groups = [
        {"params": rest_decay, "lr": lr, "base_lr": lr, "weight_decay": decay},
        {"params": rest_plain, "lr": bias_lr, "base_lr": bias_lr, "weight_decay": 0.0},
    ]
    groups = [group for group in groups if group["params"]]
    if groups:
        parts.append(torch.optim.AdamW(groups, lr=lr))
    return OptimizerSet(parts)
