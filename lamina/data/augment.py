"""Augmentations of training data, composed from `data.augment` (options: lamina/data/augment_options.py).

Batch augmentations work on a whole normalized batch on its device, with every random draw taken from the
batch's generator (seeded by seed, epoch and batch), so augmentation differs every epoch yet replays exactly on
resume. Stored augmentations change the training split once per epoch, drawing from (seed, epoch) alone. Crop,
flip, erasing, mixup and cutmix are batched tensor ops written here (faster than kornia's augmentation classes on
CPU, see bench/augment.py); rotation/affine and colour changes use kornia's warps and colour functions
(a dependency of lamina) with parameters drawn here. "Zero" padding or erasing in a normalized batch is
the training set's mean colour. Audio augmentations are in lamina/data/audio_augment.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy
import torch
import torch.nn.functional as F
from torch import Generator, Tensor

from lamina.core.errors import ConfigError, LaminaError, Problem
from lamina.core.options import Options
from lamina.core.packages import install_command
from lamina.data.augment_options import (
    AffineOptions,
    AlternatingFlipOptions,
    ColorJitterOptions,
    CutMixOptions,
    CutoutOptions,
    FlipOptions,
    JitterOptions,
    MixupOptions,
    RandomCropOptions,
    RandomErasingOptions,
    augmentations,
)
from lamina.data.bundle import DataBundle, Split
from lamina.tasks import task_of

__all__ = ["with_augmentations", "build_augmentation", "Augmentation", "mix_batch"]

# (inputs, targets, generator) → (inputs, targets): one training batch
Augmentation = Callable[[Tensor, Tensor, Generator], tuple[Tensor, Tensor]]
# (stored inputs of the training split, seed, epoch, generator) → inputs: once per epoch
StoredAugmentation = Callable[[Tensor, int, int, Generator], Tensor]


def with_augmentations(bundle: DataBundle, configs: list[Options], path: str = "data.augment") -> DataBundle:
    """The bundle with its training batches (and, for stored augmentations, its training split each epoch)
    augmented as `configs` say, in their order. Consecutive augmentations of audio features in dB share one
    conversion to dB and back."""
    stored, batch, decibels = [], [], []
    for index, config in enumerate(configs):
        entry = augmentations.get(config.name, f"{path}[{index}].name")
        task = task_of(bundle.spec)
        if entry.metadata["mixes_labels"] and not task.classes:
            raise ConfigError(
                [
                    Problem(
                        f"{path}[{index}]",
                        f"{config.name} mixes class labels, but the data is a {task.name} task",
                        "remove it",
                    )
                ]
            )
        step = entry.function(config, bundle)
        stage = entry.metadata["stage"]
        if stage != "decibels" and decibels:
            batch.append(_in_decibels(decibels, bundle))
            decibels = []
        {"stored": stored, "inputs": batch, "decibels": decibels}[stage].append(step)
    if decibels:
        batch.append(_in_decibels(decibels, bundle))
    if stored:
        bundle = replace(bundle, epoch_split=_epoch_split(bundle, stored))
    if batch:
        bundle = replace(bundle, augment=_chain(batch))
    return bundle


def build_augmentation(configs: list[Options], bundle: DataBundle, path: str) -> Augmentation | None:
    """One function applying batch augmentations in order (None when the list is empty), e.g. the strong view
    of online pseudo-labelling."""
    return with_augmentations(replace(bundle, augment=None), configs, path).augment if configs else None


def _chain(steps: list[Augmentation]) -> Augmentation:
    def augment(inputs: Tensor, targets: Tensor, generator: Generator) -> tuple[Tensor, Tensor]:
        for step in steps:
            inputs, targets = step(inputs, targets, generator)
        return inputs, targets

    return augment


def _in_decibels(steps: list[Augmentation], bundle: DataBundle) -> Augmentation:
    """Audio feature augmentations on the features' dB values (before standardization), then standardized again."""
    mean = torch.tensor(bundle.preprocessing["mean"]).view(1, 1, -1, 1)  # (1, 1, bins, 1)
    std = torch.tensor(bundle.preprocessing["std"]).view(1, 1, -1, 1)

    def apply(inputs: Tensor, targets: Tensor, generator: Generator) -> tuple[Tensor, Tensor]:
        shift, scale = mean.to(inputs.device), std.to(inputs.device)
        decibels = inputs * scale + shift
        for step in steps:
            decibels, targets = step(decibels, targets, generator)
        return (decibels - shift) / scale, targets

    return apply


def _epoch_split(bundle: DataBundle, steps: list[StoredAugmentation]) -> Callable[[int, int], Split]:
    """(seed, epoch) → the training split with the stored augmentations applied, each drawing in turn from one
    generator seeded by (seed, epoch), on top of the data set's own per-epoch split if it has one."""
    base, train = bundle.epoch_split, bundle.splits["train"]

    def epoch_split(seed: int, epoch: int) -> Split:
        split = base(seed, epoch) if base is not None else train
        generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7919 + 29)
        inputs = split.inputs
        for step in steps:
            inputs = step(inputs, seed, epoch, generator)
        return Split(inputs, split.targets)

    return epoch_split


# ---- random draws from the batch's generator ------------------------------------------------------------


def _uniform(count: int, low: float, high: float, generator: Generator, device) -> Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def _chosen(count: int, probability: float, generator: Generator, device) -> Tensor:
    """(B,) bool: which samples an augmentation applies to."""
    return torch.rand(count, generator=generator, device=device) < probability


def _beta(alpha: float, generator: Generator) -> float:
    """One Beta(alpha, alpha) draw via two Gamma draws seeded from the generator."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
    return float(numpy.random.default_rng(seed).beta(alpha, alpha))


def _kornia():
    try:
        import kornia
    except ImportError:
        raise LaminaError(
            "this augmentation needs the package 'kornia', which is not installed",
            f"install it: {install_command('kornia')}",
        ) from None
    return kornia


# ---- geometry -----------------------------------------------------------------------------------------


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


def horizontal_flip(config: FlipOptions, bundle) -> Augmentation:
    """Random horizontal flip (left ↔ right)."""

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        chosen = _chosen(len(inputs), config.p, generator, inputs.device)[:, None, None, None]
        return torch.where(chosen, inputs.flip(3), inputs), targets

    return apply


def alternating_flip(config: AlternatingFlipOptions, bundle) -> StoredAugmentation:
    """Each image seen mirrored and unmirrored in turn, epoch after epoch (Jordan 2024): epoch 0 mirrors a random
    half (drawn from the seed), odd epochs mirror the other half. Less repetition than a fresh coin each epoch."""

    def apply(inputs: Tensor, seed: int, epoch: int, generator: Generator) -> Tensor:
        coins = torch.rand(len(inputs), generator=torch.Generator().manual_seed(seed * 7919 + 104_729)) < 0.5
        mirrored = (coins ^ bool(epoch % 2)).to(inputs.device).view(-1, *[1] * (inputs.ndim - 1))
        return torch.where(mirrored, inputs.flip(-1), inputs)

    return apply


def affine(config: AffineOptions, bundle) -> Augmentation:
    """Random rotation / translation / scale / shear (kornia warp_affine)."""
    transform = _kornia().geometry.transform

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        count, _, height, width = inputs.shape
        device = inputs.device
        angle = _uniform(count, -config.degrees, config.degrees, generator, device)
        shift = torch.stack(
            [
                _uniform(count, -config.translate, config.translate, generator, device) * width,
                _uniform(count, -config.translate, config.translate, generator, device) * height,
            ],
            1,
        )
        zoom = _uniform(count, *config.scale, generator, device)[:, None].expand(count, 2).contiguous()
        shear = _uniform(count, -config.shear, config.shear, generator, device).mul(math.pi / 180)  # radians
        center = torch.tensor([[(width - 1) / 2, (height - 1) / 2]], device=device).expand(count, 2)
        matrix = transform.get_affine_matrix2d(shift, center, zoom, angle, shear, torch.zeros_like(shear))
        warped = transform.warp_affine(inputs, matrix[:, :2], (height, width), align_corners=False)
        chosen = _chosen(count, config.p, generator, device)[:, None, None, None]
        return torch.where(chosen, warped, inputs), targets

    return apply


# ---- colour -------------------------------------------------------------------------------------------


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
                changed = enhance.adjust_hue(
                    changed, _uniform(count, -config.hue, config.hue, generator, device) * 2 * math.pi
                )
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


def mixup(config: MixupOptions, bundle) -> Augmentation:
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


# ---- sequences and tables -------------------------------------------------------------------------------


def jitter(config: JitterOptions, bundle) -> Augmentation:
    """Gaussian noise on standardized features (B, ...): time-series windows or table rows."""

    def apply(inputs: Tensor, targets: Tensor, generator: Generator):
        noise = torch.randn(inputs.shape, generator=generator, device=inputs.device) * config.std
        chosen = _chosen(len(inputs), config.p, generator, inputs.device).view(-1, *[1] * (inputs.ndim - 1))
        return torch.where(chosen, inputs + noise, inputs), targets

    return apply
