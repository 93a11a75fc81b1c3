"""Transfer learning: start from pretrained weights, freeze parts, train parts at their own rates.

    model: {name: resnet, preset: small, init_from: runs/<pretrained run>}   # or a .safetensors/.pt file
    train:
      freeze: [backbone]                      # everything but the head, in any family
      unfreeze: {backbone.4: 2, backbone: 4}  # gradual unfreezing: module → epochs after which it trains
      learning_rate_factors: {backbone: 0.1}  # discriminative rates: × the schedule's rate

Loading matches tensors by name and shape. A tensor whose shape differs is left as initialized (the head,
when the classes differ) — except the first convolution across channel counts, adapted by one rule:
RGB → grayscale sums the kernel over its three input channels (a gray image seen as equal R, G and B gives the
same response), grayscale → RGB repeats the kernel on each channel divided by 3 (the same response to a gray
image). Module names: `lamina models CONFIG` lists them; `backbone` means every parameter outside `head`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from lamina.core.errors import ConfigError, ModelError, Problem, did_you_mean, resolved
from lamina.training.callbacks import Callback
from lamina.training.optimizers import OptimizerSet

__all__ = ["load_pretrained", "adapt_channels", "matching", "Freezing", "with_learning_rate_factors", "check_prefixes"]


def adapt_channels(weight: Tensor, channels: int) -> Tensor:
    """A convolution kernel (O, I, kh, kw) for `channels` input channels, by the rule in this module's doc."""
    if weight.shape[1] == channels:
        return weight
    if weight.shape[1] == 3 and channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if weight.shape[1] == 1 and channels == 3:
        return weight.repeat(1, 3, 1, 1) / 3
    raise ValueError(f"no rule adapts {weight.shape[1]} input channels to {channels}")


def _read_weights(source: str) -> dict[str, Tensor]:
    path = Path(source).expanduser()
    if path.is_dir():
        candidates = [path / "model.safetensors", path / "checkpoints" / "last" / "model.safetensors"]
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            raise _init_from(
                f"{source!r} is a folder without model.safetensors",
                "point it at a finished lamina run folder or a weights file",
            )
    elif not path.is_file():
        raise _init_from(
            f"{source!r} does not exist{resolved(source)}",
            "give a run folder, a .safetensors file or a .pt/.pth state dict",
        )
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise _init_from(
                f"cannot read {str(path)!r}: {str(error).splitlines()[0]}",
                "the file is damaged or incomplete; copy it again",
            ) from None
    try:  # weights_only: a state dict of tensors, never arbitrary pickled code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise _init_from(
            f"cannot read {source!r} as a state dict: {error}",
            "save weights with safetensors or torch.save(model.state_dict())",
        ) from None
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(value, Tensor) for value in state.values()):
        raise _init_from(f"{source!r} does not hold a state dict of tensors", None)
    return state


def _init_from(message: str, hint: str | None) -> ConfigError:
    return ConfigError([Problem("model.init_from", message, hint)])


def load_pretrained(model: nn.Module, source: str) -> dict[str, Any]:
    """Copy matching pretrained tensors into `model`; returns what was loaded, adapted and left fresh."""
    pretrained = _read_weights(source)
    own = model.state_dict()
    loaded, adapted, fresh = [], [], []
    with torch.no_grad():
        for name, target in own.items():
            value = pretrained.get(name)
            if value is not None and value.shape == target.shape:
                target.copy_(value)
                loaded.append(name)
            elif (
                value is not None
                and value.ndim == 4
                and target.ndim == 4
                and value.shape[0] == target.shape[0]
                and value.shape[2:] == target.shape[2:]
                and {value.shape[1], target.shape[1]} == {1, 3}
            ):
                target.copy_(adapt_channels(value, target.shape[1]))
                adapted.append(name)
            else:
                fresh.append(name)
    if not loaded and not adapted:
        raise ModelError(
            f"model.init_from {source!r}: none of its {len(pretrained)} tensors fits this model",
            "pretrain the same family (tensor names must match, e.g. encoder.* or backbone.*)",
        )
    return {
        "source": str(source),
        "loaded": len(loaded),
        "adapted": adapted,
        "fresh": sorted({name.rsplit(".", 1)[0] for name in fresh}),
    }


# ---- choosing parameters by module name --------------------------------------------------------------------


def matching(name: str, prefix: str, has_backbone: bool) -> bool:
    """Whether parameter `name` lies in module `prefix` ('backbone' = outside `head` where no module is named so)."""
    if prefix == "backbone" and not has_backbone:
        return not name.startswith("head.")
    return name == prefix or name.startswith(prefix + ".")


def check_prefixes(model: nn.Module, prefixes: list[str], path: str) -> list[Problem]:
    """Problems for module names that name no parameters of `model`."""
    names = [name for name, _ in model.named_parameters()]
    has_backbone = hasattr(model, "backbone")
    modules = sorted({name for name, _ in model.named_modules() if name} | {"backbone"})
    problems = []
    for prefix in prefixes:
        if not any(matching(name, prefix, has_backbone) for name in names):
            suggestion = did_you_mean(prefix, modules)
            top = ", ".join(sorted({name.split(".")[0] for name in names} | {"backbone"}))
            hint = f"did you mean {suggestion!r}? " if suggestion else ""
            problems.append(
                Problem(
                    path,
                    f"{prefix!r} names no parameters of this model",
                    f"{hint}modules include: {top} (see 'lamina models CONFIG')",
                )
            )
    return problems


class Freezing(Callback):
    """Freezes the modules in `freeze` and unfreezes each module in `unfreeze` once that many epochs are done.
    It acts at every epoch start from the epoch count alone, so a resumed run freezes the same parameters."""

    def __init__(self, freeze: list[str], unfreeze: dict[str, int]):
        self.freeze, self.unfreeze = freeze, unfreeze
        self.trainable: set[str] | None = None  # what the model itself trains (e.g. not fixed norm scales)

    def frozen(self, name: str, epoch: int, has_backbone: bool) -> bool:
        if not any(matching(name, prefix, has_backbone) for prefix in self.freeze):
            return False
        return not any(
            matching(name, prefix, has_backbone) and epoch >= after for prefix, after in self.unfreeze.items()
        )

    def epoch_start(self, loop) -> None:
        model = loop.model
        has_backbone = hasattr(model, "backbone")
        if self.trainable is None:
            self.trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        for name, parameter in model.named_parameters():
            trainable = name in self.trainable and not self.frozen(name, loop.state.epoch, has_backbone)
            parameter.requires_grad_(trainable)

    fit_start = epoch_start  # a run resumed mid-epoch starts without an epoch_start


def with_learning_rate_factors(optimizer, model: nn.Module, factors: dict[str, float]):
    """The same optimizer with each param group split so parameters of module `prefix` get `factor` × the
    rate (the longest matching prefix wins). Must run before the first step (no optimizer state yet)."""
    if not factors:
        return optimizer
    if isinstance(optimizer, OptimizerSet):
        return OptimizerSet([with_learning_rate_factors(part, model, factors) for part in optimizer.optimizers])
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    has_backbone = hasattr(model, "backbone")

    def factor_of(parameter: Tensor) -> float:
        name = names[id(parameter)]
        hits = [prefix for prefix in factors if matching(name, prefix, has_backbone)]
        return factors[max(hits, key=len)] if hits else 1.0

    groups = []
    for group in optimizer.param_groups:
        by_factor: dict[float, list[Tensor]] = {}
        for parameter in group["params"]:
            by_factor.setdefault(factor_of(parameter), []).append(parameter)
        for factor, parameters in sorted(by_factor.items()):
            settings = {key: value for key, value in group.items() if key != "params"}
            groups.append(
                {**settings, "params": parameters, "lr": group["lr"] * factor, "base_lr": group["base_lr"] * factor}
            )
    optimizer.param_groups.clear()  # no steps yet, so no state refers to the old groups
    for group in groups:
        optimizer.add_param_group(group)
    return optimizer
