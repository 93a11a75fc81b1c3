"""Audio augmentations, named in `data.augment` (options: lamina/data/augment_options.py).

Waveforms are changed once per epoch (speed, time shift, noise), each drawing in turn from one generator seeded
by (seed, epoch), so a resumed run sees the same data; log-mel features are changed per batch (vocal-tract-length
warping and spectral tilt on their dB values, then SpecAugment's masks on the standardized ones).
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor

from lamina.data.augment import Augmentation, StoredAugmentation
from lamina.data.augment_options import (
    NoiseOptions,
    SpecAugmentOptions,
    SpectralTiltOptions,
    SpeedOptions,
    TimeShiftOptions,
    VocalTractLengthOptions,
)
from lamina.data.spectral import tilt_bands, warp_mel_frequencies

__all__ = ["change_speed", "shift_waveforms", "add_noise", "shift_and_noise", "mask_bands"]


# ---- pure functions ---------------------------------------------------------------------------------------


def change_speed(waveforms: Tensor, factors: Tensor) -> Tensor:
    """Each (S,) waveform played `factor` times as fast (linear interpolation; silence after its end)."""
    count, samples = waveforms.shape
    position = torch.arange(samples, dtype=torch.float32)[None, :] * factors[:, None]  # (N, S) source positions
    left = position.floor().long()
    weight = position - left
    inside = left < samples
    left = left.clamp(max=samples - 1)
    padded = torch.cat([waveforms, waveforms.new_zeros(count, 1)], dim=1)  # (N, S + 1): silence after the end
    mixed = padded.gather(1, left) * (1 - weight) + padded.gather(1, left + 1) * weight
    return torch.where(inside, mixed, torch.zeros(()))


def random_speeds(waveforms: Tensor, amount: float, generator: Generator) -> Tensor:
    """Each waveform played at a random speed in [1 - amount, 1 + amount]."""
    return change_speed(waveforms, 1 + amount * (2 * torch.rand(len(waveforms), generator=generator) - 1))


def shift_waveforms(waveforms: Tensor, max_shift: int, generator: Generator) -> Tensor:
    """Each waveform shifted by a random whole number of samples in [-max_shift, max_shift]; zeros fill in."""
    count, samples = waveforms.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (count,), generator=generator)
    source = torch.arange(samples)[None, :] - shifts[:, None]  # (N, S): sample read for each position
    valid = (source >= 0) & (source < samples)
    return torch.where(valid, waveforms.gather(1, source.clamp(0, samples - 1)), torch.zeros(()))


def add_noise(waveforms: Tensor, lowest_snr: float, generator: Generator) -> Tensor:
    """White noise added to each waveform at a random signal-to-noise ratio from `lowest_snr` to 40 dB."""
    snr = lowest_snr + (40.0 - lowest_snr) * torch.rand(len(waveforms), 1, generator=generator)
    power = waveforms.pow(2).mean(dim=1, keepdim=True).clamp(min=1e-10)
    return waveforms + torch.randn(waveforms.shape, generator=generator) * (power / 10 ** (snr / 10)).sqrt()


def shift_and_noise(
    waveforms: Tensor, max_shift: int, noise_snr: float | None, generator: Generator, speed: float = 0.0
) -> Tensor:
    """Speed, shift and noise in that order, as `data.augment: [speed, time_shift, noise]` applies them."""
    result = random_speeds(waveforms, speed, generator) if speed else waveforms
    result = shift_waveforms(result, max_shift, generator) if max_shift else result
    return add_noise(result, noise_snr, generator) if noise_snr is not None else result


def mask_bands(
    features: Tensor, generator: Generator, time_masks: int, time_width: int, frequency_masks: int, frequency_width: int
) -> Tensor:
    """SpecAugment (Park et al., 2019) on (B, 1, bins, frames): zero (the mean) random bands of frames and bins."""
    batch, _, bins, frames = features.shape
    device = features.device  # the generator lives on the batch's device (a CUDA generator for batches on a GPU)
    keep = torch.ones(batch, bins, frames, dtype=torch.bool, device=device)
    for axis, masks, width, size in ((2, time_masks, time_width, frames), (1, frequency_masks, frequency_width, bins)):
        for _ in range(masks):
            widths = torch.randint(0, width + 1, (batch, 1), generator=generator, device=generator.device).to(device)
            starts = torch.rand(batch, 1, generator=generator, device=generator.device).to(device)
            starts = (starts * (size - widths + 1)).long()
            position = torch.arange(size, device=device)[None, :]
            band = (position >= starts) & (position < starts + widths)  # (B, size)
            keep &= ~(band[:, None, :] if axis == 2 else band[:, :, None])
    return features * keep.unsqueeze(1)


# ---- the registered augmentations ---------------------------------------------------------------------------


def speed(config: SpeedOptions, bundle) -> StoredAugmentation:
    """Random playback speed per recording, each epoch."""

    def apply(waveforms: Tensor, seed: int, epoch: int, generator: Generator) -> Tensor:
        return random_speeds(waveforms, config.amount, generator)

    return apply


def time_shift(config: TimeShiftOptions, bundle) -> StoredAugmentation:
    """Random shift per recording, each epoch."""
    max_shift = int(config.seconds * bundle.preprocessing["sample_rate"])

    def apply(waveforms: Tensor, seed: int, epoch: int, generator: Generator) -> Tensor:
        return shift_waveforms(waveforms, max_shift, generator) if max_shift else waveforms

    return apply


def noise(config: NoiseOptions, bundle) -> StoredAugmentation:
    """White noise at a random signal-to-noise ratio per recording, each epoch."""

    def apply(waveforms: Tensor, seed: int, epoch: int, generator: Generator) -> Tensor:
        return add_noise(waveforms, config.snr, generator)

    return apply


def vocal_tract_length(config: VocalTractLengthOptions, bundle) -> Augmentation:
    """Each sample's mel frequency axis scaled by a random factor (on dB features)."""
    sample_rate = bundle.preprocessing["sample_rate"]

    def apply(decibels: Tensor, targets: Tensor, generator: Generator) -> tuple[Tensor, Tensor]:
        draws = torch.rand(len(decibels), generator=generator, device=decibels.device)
        return warp_mel_frequencies(decibels, 1 + config.warp * (2 * draws - 1), sample_rate), targets

    return apply


def spectral_tilt(config: SpectralTiltOptions, bundle) -> Augmentation:
    """A random straight line added across each sample's mel bands (on dB features)."""

    def apply(decibels: Tensor, targets: Tensor, generator: Generator) -> tuple[Tensor, Tensor]:
        draws = torch.rand(len(decibels), generator=generator, device=decibels.device)
        return tilt_bands(decibels, config.decibels * (2 * draws - 1)), targets

    return apply


def spec_augment(config: SpecAugmentOptions, bundle) -> Augmentation:
    """SpecAugment time and frequency masks on each training batch."""

    def apply(features: Tensor, targets: Tensor, generator: Generator) -> tuple[Tensor, Tensor]:
        masked = mask_bands(
            features,
            generator,
            config.time_masks,
            config.time_mask_frames,
            config.frequency_masks,
            config.frequency_mask_bins,
        )
        return masked, targets

    return apply
