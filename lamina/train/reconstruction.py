"""The reconstruction task (autoencoders): targets are the stored images themselves, uint8 (N, C, H, W).

A model's outputs are per-pixel logits; sigmoid(logit) is the reconstructed pixel in [0, 1]. Losses are summed
over the pixels of a sample and averaged over samples, the scale at which a VAE's KL term (also per sample) is
weighed against them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lamina.config.base import Options
from lamina.data.spec import DataSpec
from lamina.train.losses import Objective, loss_for, losses
from lamina.train.metrics import Predictions, metric
from lamina.train.tasks import Task, register_task

__all__ = ["pixels", "reconstruction_errors", "UnlabelledReconstruction", "unlabelled_reconstruction"]

register_task(Task("reconstruction", "pixel_bce", ("pixel_mse", "pixel_mae", "psnr"), "val.loss"))


def pixels(images: Tensor) -> Tensor:
    """uint8 images → float pixels in [0, 1]."""
    return images.float() / 255.0


def reconstruction_errors(logits: Tensor, images: Tensor) -> Tensor:
    """(N,) mean squared error per sample between sigmoid(logits) and the images, in [0, 1] pixel units."""
    return (logits.float().sigmoid() - pixels(images)).pow(2).flatten(1).mean(dim=1)


class PixelLossOptions(Options):
    """A per-pixel reconstruction loss without options."""


def _objective(spec: DataSpec, elementwise) -> Objective:
    def loss(outputs: Tensor, targets: Tensor) -> Tensor:
        return elementwise(outputs, pixels(targets)).flatten(1).sum(dim=1).mean()

    def scores(outputs: Tensor) -> Tensor:
        return outputs.float().sigmoid().flatten(1)  # (N, C·H·W) pixels in [0, 1]

    return Objective(loss, scores, spec.output_size)


@losses.register("pixel_bce", config=PixelLossOptions)
@loss_for("reconstruction")
def pixel_bce(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Binary cross-entropy per pixel (a Bernoulli decoder; sharp digits), summed over pixels."""
    return _objective(spec, lambda logits, goal: F.binary_cross_entropy_with_logits(logits, goal, reduction="none"))


@losses.register("pixel_mse", config=PixelLossOptions)
@loss_for("reconstruction")
def pixel_mse(config: Options, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Squared error per pixel of sigmoid(logits) (a Gaussian decoder), summed over pixels."""
    return _objective(spec, lambda logits, goal: (logits.sigmoid() - goal).pow(2))


def _difference(predictions: Predictions) -> Tensor:
    return predictions.scores.double() - pixels(predictions.targets).flatten(1).double()


@metric("pixel_mse", task="reconstruction", goal="min")
def pixel_mse_metric(predictions: Predictions) -> float:
    """Mean squared error per pixel, pixels in [0, 1]."""
    return float(_difference(predictions).pow(2).mean())


@metric("pixel_mae", task="reconstruction", goal="min")
def pixel_mae_metric(predictions: Predictions) -> float:
    """Mean absolute error per pixel, pixels in [0, 1]."""
    return float(_difference(predictions).abs().mean())


@metric("psnr", task="reconstruction", goal="max")
def psnr(predictions: Predictions) -> float:
    """Peak signal-to-noise ratio in dB, averaged over images (higher is better)."""
    per_image = _difference(predictions).pow(2).mean(dim=1).clamp(min=1e-10)
    return float((-10 * torch.log10(per_image)).mean())


class UnlabelledReconstruction:
    """A training step that also reconstructs unlabelled images: loss = supervised loss + weight · the model's
    `reconstruction_loss` on a batch of the 'unlabelled' split as large as the labelled one. The draw is a
    function of (seed, step) only, so a resumed run sees the same images."""

    def __init__(self, loop: Any, weight: float):
        self.loop, self.weight = loop, weight
        self.pool = loop.data.splits["unlabelled"]

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor, objective: Objective):
        from lamina.train.loop import supervised_step

        loop = self.loop
        position = ((loop.seed * 1_000_003 + loop.state.step) * 7919 + 29) % (2**63)
        index = torch.randint(len(self.pool), (len(inputs),), generator=torch.Generator().manual_seed(position))
        images = self.pool.inputs[index.to(self.pool.inputs.device)].to(inputs.device)  # uint8 (B, C, H, W)
        loss, prediction, logged = supervised_step(model, inputs, targets, objective)
        reconstruction = model.reconstruction_loss(loop.data.transform(images), images)
        logged["unlabelled_reconstruction"] = reconstruction.detach()
        return loss + self.weight * reconstruction, prediction, logged


def unlabelled_reconstruction(loop: Any) -> UnlabelledReconstruction | None:
    """The step for a model with a `reconstruction_weight` above 0 (a semi-supervised autoencoder), else None.
    The pipeline has checked that the data has an 'unlabelled' split."""
    weight = getattr(loop.model, "reconstruction_weight", 0.0)
    return UnlabelledReconstruction(loop, weight) if weight else None
