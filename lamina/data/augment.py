"""Augmentations of training batches, chosen by name in `data.augment` and applied in the order given:

    data:
      augment: [{name: random_crop, padding: 4}, horizontal_flip, {name: mixup, alpha: 0.2}]

Each works on a whole normalized batch on its device, with every random draw taken from the batch's
generator (seeded by seed, epoch and batch), so augmentation differs every epoch yet replays exactly on
resume. Crop, flip, erasing, mixup and cutmix are batched tensor ops written here (faster than kornia's
augmentation classes on CPU, see bench/augment.py); rotation/affine and colour changes use kornia's warps and
colour functions (`pip install 'lamina[vision]'`) with parameters drawn here. "Zero" padding or erasing in a
normalized batch is the training set's mean colour.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Generator, Tensor

from lamina.config.base import Options
from lamina.errors import ConfigError, LaminaError, Problem
from lamina.registry import Registry

__all__ = ["augmentations", "build_augmentation", "Augmentation"]

augmentations = Registry("augmentation")

# (inputs, targets, generator) → (inputs, targets)
Augmentation = Callable[[Tensor, Tensor, Generator], tuple[Tensor, Tensor]]


def build_augmentation(configs: list[Options], bundle) -> Augmentation | None:
    """One function applying every configured augmentation in order (None when the list is empty)."""
    steps = []
    for index, config in enumerate(configs):
        entry = augmentations.get(config.name, f"data.augment[{index}].name")
        needs_classes = getattr(entry.function, "needs_classes", False)
        if needs_classes and bundle.spec.task != "classification":
            raise ConfigError([Problem(f"data.augment[{index}]", f"{config.name} mixes class labels, but the data "
                                       f"is a {bundle.spec.task} task", "remove it")])  # fmt: skip
        if len(bundle.spec.input_shape) != 3:
            raise ConfigError([Problem(f"data.augment[{index}]", f"{config.name} needs images, the data gives "
                                       f"{bundle.spec.kind} inputs", "remove data.augment")])  # fmt: skip
        steps.append(entry.function(config, bundle))
    if not steps:
        return None

    def augment(inputs: Tensor, targets: Tensor, generator: Generator) -> tuple[Tensor, Tensor]:
        for step in steps:
            inputs, targets = step(inputs, targets, generator)
        return inputs, targets

    return augment


# ---- random draws from the batch's generator ------------------------------------------------------------


def _uniform(count: int, low: float, high: float, generator: Generator, device) -> Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def _chosen(count: int, probability: float, generator: Generator, device) -> Tensor:
    """(B,) bool: which samples an augmentation applies to."""
    return torch.rand(count, generator=generator, device=device) < probability


def _beta(alpha: float, generator: Generator) -> float:
    """One Beta(alpha, alpha) draw via two Gamma draws seeded from the generator."""
    import numpy

    seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
    return float(numpy.random.default_rng(seed).beta(alpha, alpha))


def _kornia():
    try:
        import kornia
    except ImportError:
        raise LaminaError("this augmentation needs kornia, which is not installed",
                          "pip install 'lamina[vision]'") from None  # fmt: skip
    return kornia


# ---- geometry -----------------------------------------------------------------------------------------


class RandomCropOptions(Options):
    """Pad each image, then cut a random window of the original size (a random translation)."""

    padding: int = Field(4, ge=1)
    """Pixels added on each side before cropping: shifts of up to ±padding."""
    mode: Literal["zeros", "reflect"] = "reflect"
    """Padding with zeros (the mean colour, as batches are normalized) or a mirror image of the border."""


@augmentations.register("random_crop", config=RandomCropOptions)
def random_crop(config: RandomCropOptions, bundle) -> Augmentation:
    """Random crop after padding (random translation by up to ±padding pixels)."""
    pad = config.padding

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, _, height, width = inputs.shape
        padded = F.pad(inputs, (pad, pad, pad, pad), mode="constant" if config.mode == "zeros" else "reflect")
        shifts = torch.randint(0, 2 * pad + 1, (2, count), generator=generator, device=inputs.device)
        channels = inputs.shape[1]
        # two gathers pick each sample's window: rows (B, C, H, W + 2p), then columns (B, C, H, W)
        rows = (shifts[0, :, None] + torch.arange(height, device=inputs.device)).view(count, 1, height, 1)
        cropped = padded.gather(2, rows.expand(count, channels, height, width + 2 * pad))
        columns = (shifts[1, :, None] + torch.arange(width, device=inputs.device)).view(count, 1, 1, width)
        return cropped.gather(3, columns.expand(count, channels, height, width)), targets

    return apply


class FlipOptions(Options):
    """Mirror images left-right."""

    p: float = Field(0.5, ge=0, le=1)
    """Probability that an image is flipped."""


@augmentations.register("horizontal_flip", config=FlipOptions)
def horizontal_flip(config: FlipOptions, bundle) -> Augmentation:
    """Random horizontal flip (left ↔ right)."""

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        chosen = _chosen(len(inputs), config.p, generator, inputs.device)[:, None, None, None]
        return torch.where(chosen, inputs.flip(3), inputs), targets

    return apply


class AlternatingFlipOptions(Options):
    """Mirror a fixed random half of the training images, then flip every image on every other epoch."""


@augmentations.register("alternating_flip", config=AlternatingFlipOptions)
def alternating_flip(config: AlternatingFlipOptions, bundle) -> Augmentation:
    """Each image seen mirrored and unmirrored in turn, epoch after epoch (Jordan 2024): epoch 0 mirrors a random
    half (drawn from the seed), odd epochs mirror the other half. Less repetition than a fresh coin each epoch.
    It needs to know which image is which, so it becomes the bundle's per-epoch training split
    (`alternating_flips`) and batches pass through it unchanged."""
    bundle.epoch_split = alternating_flips(bundle.splits["train"])  # image data sets have no other per-epoch split

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        return inputs, targets

    return apply


def alternating_flips(train) -> Callable:
    """(seed, epoch) → the training split with images mirrored where a seeded coin XOR (epoch is odd) says so."""

    def epoch_split(seed: int, epoch: int):
        coins = torch.rand(len(train), generator=torch.Generator().manual_seed(seed * 7919 + 104_729)) < 0.5
        mirrored = (coins ^ bool(epoch % 2)).to(train.inputs.device).view(-1, *[1] * (train.inputs.ndim - 1))
        return type(train)(torch.where(mirrored, train.inputs.flip(-1), train.inputs), train.targets)

    return epoch_split


class AffineOptions(Options):
    """Small random rotations, shifts, zooms and shears (bilinear, with kornia)."""

    degrees: float = Field(10.0, ge=0, le=180)
    """Rotation drawn from [-degrees, degrees]."""
    translate: float = Field(0.0, ge=0, lt=1)
    """Shift drawn from [-translate, translate] × the image size, per axis."""
    scale: tuple[float, float] = (1.0, 1.0)
    """Zoom factor drawn from [low, high]."""
    shear: float = Field(0.0, ge=0, lt=45)
    """Shear angle in degrees drawn from [-shear, shear]."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that an image is transformed."""


@augmentations.register("affine", config=AffineOptions)
def affine(config: AffineOptions, bundle) -> Augmentation:
    """Random rotation / translation / scale / shear (kornia warp_affine)."""
    transform = _kornia().geometry.transform

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, _, height, width = inputs.shape
        device = inputs.device
        angle = _uniform(count, -config.degrees, config.degrees, generator, device)
        shift = torch.stack([_uniform(count, -config.translate, config.translate, generator, device) * width,
                             _uniform(count, -config.translate, config.translate, generator, device) * height], 1)  # fmt: skip
        zoom = _uniform(count, *config.scale, generator, device)[:, None].expand(count, 2).contiguous()
        shear = _uniform(count, -config.shear, config.shear, generator, device).mul(math.pi / 180)  # radians
        center = torch.tensor([[(width - 1) / 2, (height - 1) / 2]], device=device).expand(count, 2)
        matrix = transform.get_affine_matrix2d(shift, center, zoom, angle, shear, torch.zeros_like(shear))
        warped = transform.warp_affine(inputs, matrix[:, :2], (height, width), align_corners=False)
        chosen = _chosen(count, config.p, generator, device)[:, None, None, None]
        return torch.where(chosen, warped, inputs), targets

    return apply


# ---- colour -------------------------------------------------------------------------------------------


class ColorJitterOptions(Options):
    """Random brightness, contrast, saturation and hue (saturation and hue on RGB only)."""

    brightness: float = Field(0.2, ge=0, lt=1)
    """Brightness multiplied by a factor drawn from [1 - brightness, 1 + brightness]."""
    contrast: float = Field(0.2, ge=0, lt=1)
    """Contrast factor drawn from [1 - contrast, 1 + contrast]."""
    saturation: float = Field(0.2, ge=0, lt=1)
    """Saturation factor drawn from [1 - saturation, 1 + saturation]."""
    hue: float = Field(0.0, ge=0, le=0.5)
    """Hue shift drawn from [-hue, hue] of a full turn."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that an image is changed."""


@augmentations.register("color_jitter", config=ColorJitterOptions)
def color_jitter(config: ColorJitterOptions, bundle) -> Augmentation:
    """Random brightness / contrast / saturation / hue (kornia.enhance), on the un-normalized image."""
    enhance = _kornia().enhance
    mean = torch.tensor(bundle.preprocessing["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(bundle.preprocessing["std"]).view(1, -1, 1, 1)

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, device = len(inputs), inputs.device
        m, s = mean.to(device), std.to(device)
        images = (inputs * s + m).clamp(0, 1)  # back to [0, 1] pixels

        def factor(amount: float) -> Tensor:
            return _uniform(count, 1 - amount, 1 + amount, generator, device)

        changed = images * factor(config.brightness)[:, None, None, None]
        changed = enhance.adjust_contrast_with_mean_subtraction(changed.clamp(0, 1), factor(config.contrast))
        if images.shape[1] == 3:
            changed = enhance.adjust_saturation(changed, factor(config.saturation))
            if config.hue:
                changed = enhance.adjust_hue(changed, _uniform(count, -config.hue, config.hue, generator, device)
                                             * 2 * math.pi)  # fmt: skip
        chosen = _chosen(count, config.p, generator, device)[:, None, None, None]
        return torch.where(chosen, (changed.clamp(0, 1) - m) / s, inputs), targets

    return apply


# ---- erasing ------------------------------------------------------------------------------------------


def _box_mask(height: int, width: int, top: Tensor, left: Tensor, box_h: Tensor, box_w: Tensor) -> Tensor:
    """(B, 1, H, W) bool, True inside each sample's box."""
    rows = torch.arange(height, device=top.device)[None, :]
    columns = torch.arange(width, device=top.device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # (B, H)
    inside_columns = (columns >= left[:, None]) & (columns < (left + box_w)[:, None])  # (B, W)
    return (inside_rows[:, :, None] & inside_columns[:, None, :])[:, None]


class CutoutOptions(Options):
    """Erase a square of fixed size at a random place (DeVries & Taylor's cutout)."""

    size: int = Field(8, ge=1)
    """Side of the square in pixels; it may hang over the border."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that an image gets a square."""


@augmentations.register("cutout", config=CutoutOptions)
def cutout(config: CutoutOptions, bundle) -> Augmentation:
    """Cutout: a size × size square set to the mean colour."""

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, _, height, width = inputs.shape
        device = inputs.device
        centre_y = torch.randint(0, height, (count,), generator=generator, device=device)
        centre_x = torch.randint(0, width, (count,), generator=generator, device=device)
        side = torch.full((count,), config.size, device=device)
        mask = _box_mask(height, width, centre_y - config.size // 2, centre_x - config.size // 2, side, side)
        mask &= _chosen(count, config.p, generator, device)[:, None, None, None]
        return inputs.masked_fill(mask, 0.0), targets

    return apply


class RandomErasingOptions(Options):
    """Erase a random rectangle (Zhong et al.'s random erasing) with the mean colour or noise."""

    p: float = Field(0.5, ge=0, le=1)
    """Probability that an image gets a rectangle."""
    area: tuple[float, float] = (0.02, 0.25)
    """Rectangle area as a fraction of the image, drawn from [low, high]."""
    aspect: tuple[float, float] = (0.3, 3.3)
    """Height/width ratio drawn log-uniformly from [low, high]."""
    value: Literal["mean", "noise"] = "mean"
    """Fill with the mean colour or with standard normal noise."""


@augmentations.register("random_erasing", config=RandomErasingOptions)
def random_erasing(config: RandomErasingOptions, bundle) -> Augmentation:
    """Random erasing of a rectangle of random area and aspect ratio."""

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, _, height, width = inputs.shape
        device = inputs.device
        area = _uniform(count, *config.area, generator, device) * height * width
        aspect = _uniform(count, math.log(config.aspect[0]), math.log(config.aspect[1]), generator, device).exp()
        box_h = (area * aspect).sqrt().round().clamp(1, height).long()
        box_w = (area / aspect).sqrt().round().clamp(1, width).long()
        top = (torch.rand(count, generator=generator, device=device) * (height - box_h + 1)).long()
        left = (torch.rand(count, generator=generator, device=device) * (width - box_w + 1)).long()
        mask = _box_mask(height, width, top, left, box_h, box_w)
        mask &= _chosen(count, config.p, generator, device)[:, None, None, None]
        if config.value == "noise":
            noise = torch.randn(inputs.shape, generator=generator, device=device)
            return torch.where(mask, noise, inputs), targets
        return inputs.masked_fill(mask, 0.0), targets

    return apply


# ---- mixing samples (soft targets) ----------------------------------------------------------------------


def _soft(targets: Tensor, classes: int) -> Tensor:
    return targets if targets.ndim == 2 else F.one_hot(targets.long(), classes).float()


class MixOptions(Options):
    """Mix each batch with a shuffled copy of itself; targets become the same mix of the two labels."""

    alpha: float = Field(0.2, gt=0)
    """Mixing weight drawn from Beta(alpha, alpha) once per batch."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that a batch is mixed."""


def _mixing(function: Callable) -> Callable:
    function.needs_classes = True
    return function


@augmentations.register("mixup", config=MixOptions)
@_mixing
def mixup(config: MixOptions, bundle) -> Augmentation:
    """Mixup (Zhang et al.): a convex mix of two images and of their labels."""
    classes = bundle.spec.num_classes

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        if float(torch.rand(1, generator=generator, device=inputs.device)) >= config.p:
            return inputs, targets
        return mix_batch(inputs, targets, classes, config.alpha, generator)

    return apply


def mix_batch(inputs: Tensor, targets: Tensor, classes: int, alpha: float, generator: Generator):
    """Mixup of any batch (B, ...): w·x + (1 − w)·x[order] with w ~ Beta(alpha, alpha); targets become the same
    mix of one-hot labels, (B, classes)."""
    weight = _beta(alpha, generator)
    order = torch.randperm(len(inputs), generator=generator, device=inputs.device)
    soft = _soft(targets, classes)
    return weight * inputs + (1 - weight) * inputs[order], weight * soft + (1 - weight) * soft[order]


class CutMixOptions(MixOptions):
    """Paste a rectangle from a shuffled copy of the batch; targets are mixed by the pasted area."""

    alpha: float = Field(1.0, gt=0)
    """The kept fraction is drawn from Beta(alpha, alpha) once per batch."""


@augmentations.register("cutmix", config=CutMixOptions)
@_mixing
def cutmix(config: CutMixOptions, bundle) -> Augmentation:
    """CutMix (Yun et al.): a rectangle from another image, labels mixed by area."""
    classes = bundle.spec.num_classes

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, _, height, width = inputs.shape
        device = inputs.device
        if float(torch.rand(1, generator=generator, device=device)) >= config.p:
            return inputs, targets
        kept = _beta(config.alpha, generator)
        box_h, box_w = round(height * math.sqrt(1 - kept)), round(width * math.sqrt(1 - kept))
        top = int(torch.randint(0, height - box_h + 1, (1,), generator=generator, device=device))
        left = int(torch.randint(0, width - box_w + 1, (1,), generator=generator, device=device))
        order = torch.randperm(count, generator=generator, device=device)
        mixed = inputs.clone()
        mixed[:, :, top : top + box_h, left : left + box_w] = inputs[order, :, top : top + box_h, left : left + box_w]
        weight = 1 - box_h * box_w / (height * width)  # the label weight is the area actually kept
        soft = _soft(targets, classes)
        return mixed, weight * soft + (1 - weight) * soft[order]

    return apply
