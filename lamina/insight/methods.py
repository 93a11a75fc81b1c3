"""Attribution methods shared by the modalities: Captum's where it has them, and Grad-CAM by hand.

Every function takes `forward`, a module returning one score per class (N, classes) — logits, so gradients are
not flattened by a saturated softmax — and returns attributions shaped like the inputs (Grad-CAM: like the
layer's map). Captum is imported inside each function: it is the optional `explain` extra.

Grad-CAM is written here rather than taken from Captum's LayerGradCam, which keeps only the layer's *last* call
in a forward pass: a model with test-time augmentation (the CIFAR-10 airbench run mirrors and shifts each image)
calls its layers once per view, and the last view is mirrored. Here the *first* call — the image as given — is
the one explained, with the same formula (Selvaraju et al. 2017): ReLU(Σ_c mean(∂score/∂A_c) · A_c).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.core.packages import install_command, installed
from lamina.models.output import split_output

__all__ = [
    "ClassScores",
    "captum_attr",
    "integrated_gradients",
    "saliency",
    "occlusion",
    "grad_cam",
    "INTEGRATED_STEPS",
]

INTEGRATED_STEPS = 16  # Gauss-Legendre points of integrated gradients (Captum's default rule; 16 is within ~1 %)


class ClassScores(nn.Module):
    """A run's model as attribution methods need it: (N, classes) one score per class — the logits, with a
    two-class model's single logit z given as (−z/2, z/2), whose softmax is (1 − sigmoid(z), sigmoid(z)) — or a
    regression's outputs; auxiliary outputs (ModelOutput) dropped. `model` is the run's model itself."""

    def __init__(self, model: nn.Module, single_logit: bool):
        super().__init__()
        self.model, self.single_logit = model, single_logit

    def forward(self, inputs: Tensor) -> Tensor:
        prediction, _, _ = split_output(self.model(inputs))
        if self.single_logit:
            half = prediction[:, :1] / 2  # (N, 1)
            return torch.cat([-half, half], dim=1)  # (N, 2)
        return prediction


def captum_attr() -> Any:
    """captum.attr, or a ModelError with the command that installs Captum."""
    if not installed("captum"):
        raise ModelError(
            "explanations need the package 'captum', which is not installed",
            f"install it: {install_command('captum')}",
        )
    import captum.attr

    return captum.attr


def integrated_gradients(
    forward: nn.Module, inputs: Tensor, baseline: Tensor, targets: Tensor, steps: int = INTEGRATED_STEPS
) -> Tensor:
    """Integrated gradients (Sundararajan et al. 2017) from `baseline` (shaped like one input, or like inputs) to
    each input; the attributions of an input sum to score(input) − score(baseline)."""
    method = captum_attr().IntegratedGradients(forward)
    baselines = baseline.expand_as(inputs).contiguous()
    return method.attribute(
        inputs, baselines=baselines, target=targets, n_steps=steps, internal_batch_size=max(len(inputs), 64) * 4
    ).detach()


def saliency(forward: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    """|∂score/∂input| (Simonyan et al. 2014)."""
    inputs = inputs.detach().requires_grad_(True)
    return captum_attr().Saliency(forward).attribute(inputs, target=targets, abs=True).detach()


def occlusion(
    forward: nn.Module, inputs: Tensor, baseline: Tensor, targets: Tensor, window: tuple[int, ...], stride: tuple
) -> Tensor:
    """The drop in score when a sliding window of the input is replaced by the baseline (Zeiler & Fergus 2014),
    averaged over the windows covering each element; a window of one feature is feature ablation."""
    method = captum_attr().Occlusion(forward)
    with torch.no_grad():
        return method.attribute(
            inputs,
            sliding_window_shapes=window,
            strides=stride,
            baselines=baseline.expand_as(inputs).contiguous(),
            target=targets,
            perturbations_per_eval=8,
        ).detach()


def grad_cam(forward: nn.Module, layer: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    """(N, h, w) Grad-CAM of `layer`'s first output in the forward pass, ReLU'd (evidence for the class only)."""
    captured: list[Tensor] = []

    def keep_first(module: nn.Module, arguments: Any, output: Tensor) -> None:
        if not captured:
            captured.append(output)

    handle = layer.register_forward_hook(keep_first)
    try:
        with torch.enable_grad():
            scores = forward(inputs.detach().requires_grad_(True))  # (N, classes)
            chosen = scores.gather(1, targets.view(-1, 1)).sum()
            maps = captured[0]
            (gradients,) = torch.autograd.grad(chosen, maps)
    finally:
        handle.remove()
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1): each channel's importance
    return F.relu((weights * maps).sum(dim=1)).detach()  # (N, C, h, w) → (N, h, w)
