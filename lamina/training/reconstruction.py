"""Losses and metrics of the reconstruction task (autoencoders): targets are the stored images, uint8 (N, C, H, W).

A model's outputs are per-pixel logits; sigmoid(logit) is the reconstructed pixel in [0, 1]. Losses are summed
over the pixels of a sample and averaged over samples, the scale at which a VAE's KL term (also per sample) is
weighed against them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lamina.core.options import Options
from lamina.data.spec import DataSpec
from lamina.models.autoencoder import pixels
from lamina.training.losses import Objective
from lamina.training.metrics import Predictions

__all__ = ["pixel_bce", "pixel_mse", "pixel_mse_metric", "pixel_mae_metric", "psnr"]


def _objective(spec: DataSpec, elementwise) -> Objective:
    def loss(outputs: Tensor, targets: Tensor) -> Tensor:
        return elementwise(outputs, pixels(targets)).flatten(1).sum(dim=1).mean()

    def scores(outputs: Tensor) -> Tensor:
        return outputs.float().sigmoid().flatten(1)  # (N, C·H·W) pixels in [0, 1]

    return Objective(loss, scores, spec.output_size)


def pixel_bce(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Binary cross-entropy per pixel (a Bernoulli decoder; sharp digits), summed over pixels."""
    return _objective(spec, lambda logits, goal: F.binary_cross_entropy_with_logits(logits, goal, reduction="none"))


def pixel_mse(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Squared error per pixel of sigmoid(logits) (a Gaussian decoder), summed over pixels."""
    return _objective(spec, lambda logits, goal: (logits.sigmoid() - goal).pow(2))


def _difference(predictions: Predictions) -> Tensor:
    return predictions.scores.double() - pixels(predictions.targets).flatten(1).double()


def pixel_mse_metric(predictions: Predictions) -> float:
    """Mean squared error per pixel, pixels in [0, 1]."""
    return float(_difference(predictions).pow(2).mean())


def pixel_mae_metric(predictions: Predictions) -> float:
    """Mean absolute error per pixel, pixels in [0, 1]."""
    return float(_difference(predictions).abs().mean())


def psnr(predictions: Predictions) -> float:
    """Peak signal-to-noise ratio in dB, averaged over images (higher is better)."""
    per_image = _difference(predictions).pow(2).mean(dim=1).clamp(min=1e-10)
    return float((-10 * torch.log10(per_image)).mean())
