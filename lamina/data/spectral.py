"""Spectral features as pure functions on tensors (so they run on the batch's device): the Slaney mel scale
and filterbank (librosa's defaults: `htk=False`, `norm="slaney"`), log-mel spectrograms in dB, MFCCs, and two
augmentations of mel bands: vocal-tract-length warping and spectral tilt.

    >>> round(hz_to_mel(1000.0), 6), round(mel_to_hz(15.0), 6)
    (15.0, 1000.0)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "power_spectrogram",
    "log_mel",
    "dct_matrix",
    "mfcc",
    "warp_mel_frequencies",
    "tilt_bands",
]

_LINEAR_STEP = 200.0 / 3  # Hz per mel below 1 kHz
_LOG_STEP = math.log(6.4) / 27.0  # log-Hz per mel above 1 kHz
_BREAK_HZ, _BREAK_MEL = 1000.0, 15.0


def hz_to_mel(hz: float | Tensor) -> float | Tensor:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    if isinstance(hz, Tensor):
        linear = hz / _LINEAR_STEP
        return torch.where(hz >= _BREAK_HZ, _BREAK_MEL + torch.log(hz.clamp(min=1e-10) / _BREAK_HZ) / _LOG_STEP, linear)
    return hz / _LINEAR_STEP if hz < _BREAK_HZ else _BREAK_MEL + math.log(hz / _BREAK_HZ) / _LOG_STEP


def mel_to_hz(mel: float | Tensor) -> float | Tensor:
    """Inverse of `hz_to_mel`."""
    if isinstance(mel, Tensor):
        return torch.where(mel >= _BREAK_MEL, _BREAK_HZ * torch.exp(_LOG_STEP * (mel - _BREAK_MEL)), mel * _LINEAR_STEP)
    return mel * _LINEAR_STEP if mel < _BREAK_MEL else _BREAK_HZ * math.exp(_LOG_STEP * (mel - _BREAK_MEL))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the mel scale, each scaled to unit area
    (2 / bandwidth in Hz), as librosa.filters.mel with its defaults."""
    f_max = sample_rate / 2 if f_max is None else f_max
    frequencies = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    widths = edges.diff()  # (n_mels + 1,)
    ramps = edges[:, None] - frequencies[None, :]  # (n_mels + 2, F)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = torch.clamp(torch.minimum(rising, falling), min=0)
    return (filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]).float()


def power_spectrogram(waveforms: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """(B, S) → (B, n_fft // 2 + 1, frames) |STFT|² with a periodic Hann window, centred frames, zero padding."""
    window = torch.hann_window(n_fft, device=waveforms.device, dtype=waveforms.dtype)
    spectrum = torch.stft(
        waveforms, n_fft, hop_length, window=window, center=True, pad_mode="constant", return_complex=True
    )
    return spectrum.abs().pow(2)


def log_mel(waveforms: Tensor, filterbank: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """(B, S) → (B, n_mels, frames) mel power in dB: 10·log10(max(mel, 1e-10))."""
    mel = torch.matmul(filterbank.to(waveforms.device), power_spectrogram(waveforms, n_fft, hop_length))
    return 10.0 * torch.log10(mel.clamp(min=1e-10))


def dct_matrix(n_mfcc: int, n_mels: int) -> Tensor:
    """(n_mfcc, n_mels) orthonormal DCT-II (scipy.fft.dct(norm='ortho') rows)."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


def mfcc(log_mel_db: Tensor, basis: Tensor) -> Tensor:
    """(B, n_mels, frames) dB → (B, n_mfcc, frames) cepstral coefficients (librosa.feature.mfcc's DCT)."""
    return torch.matmul(basis.to(log_mel_db.device), log_mel_db)


def warp_mel_frequencies(
    features: Tensor, factors: Tensor, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> Tensor:
    """Vocal-tract-length perturbation (Jaitly & Hinton, 2013) on mel features: (B, ..., n_mels, frames) with
    each sample's frequency axis scaled by its factor in `factors` (B,), so what was at f Hz moves to factor·f
    (factor > 1: formants move up, a shorter vocal tract). Each band reads the band centre f / factor, linearly
    interpolated between neighbouring bands on the mel axis; sources past the first or last band take that band."""
    n_mels = features.shape[-2]
    f_max = sample_rate / 2 if f_max is None else f_max
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64, device=features.device)
    centres = mels[1:-1]  # (M,) band centres in mel, equally spaced
    source_hz = mel_to_hz(centres)[None, :] / factors.to(features.device, torch.float64)[:, None]  # (B, M)
    position = ((hz_to_mel(source_hz) - centres[0]) / (centres[1] - centres[0])).clamp(0, n_mels - 1)
    lower = position.floor().long().clamp(max=n_mels - 2)
    weight = (position - lower).to(features.dtype)  # (B, M)
    shape = (features.shape[0],) + (1,) * (features.dim() - 3) + (n_mels, 1)  # broadcast over channels and frames
    below = features.gather(-2, lower.view(shape).expand_as(features))
    above = features.gather(-2, (lower + 1).view(shape).expand_as(features))
    return below + (above - below) * weight.view(shape)


def tilt_bands(features_db: Tensor, slopes_db: Tensor) -> Tensor:
    """A microphone's colouring imitated on dB features (B, ..., bins, frames): each sample gets a straight line
    across its bands, from -slope/2 dB at the lowest to +slope/2 dB at the highest (`slopes_db` (B,); positive:
    brighter)."""
    bins = features_db.shape[-2]
    ramp = torch.linspace(-0.5, 0.5, bins, device=features_db.device, dtype=features_db.dtype)  # (bins,)
    shape = (features_db.shape[0],) + (1,) * (features_db.dim() - 3) + (bins, 1)
    return features_db + (slopes_db.to(features_db)[:, None] * ramp[None, :]).view(shape)
