"""Audio: folders of WAV files → waveforms in memory → log-mel or MFCC features computed per batch on the device.

Layouts: `fsdd` (Free Spoken Digit names `digit_speaker_index.wav`: label and speaker from the name) and
`folders` (one subfolder per class). Files are read with soundfile, mixed to mono, resampled (scipy's polyphase
filter) and padded or cropped to `seconds`. Training-only augmentation: waveforms shifted in time and noised
afresh each epoch (drawn from (seed, epoch), so resume is exact), then SpecAugment time and frequency masks.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

import numpy
import torch
from pydantic import Field, model_validator
from torch import Tensor

from lamina.data.augment import mix_batch
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.inputs import data_path
from lamina.data.options import SplitOptions
from lamina.data.registry import datasets
from lamina.data.spec import DataSpec
from lamina.data.spectral import dct_matrix, log_mel, mel_filterbank, mfcc, tilt_bands, warp_mel_frequencies
from lamina.errors import DataError

__all__ = ["AudioFeatures", "read_waveform", "read_audio_files", "spec_augment", "shift_and_noise", "change_speed"]

FSDD_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<group>[^_]+)_(?P<index>\d+)$")


class AudioOptions(SplitOptions):
    """WAV files: Free Spoken Digit naming (`digit_speaker_index.wav`) or one subfolder per class."""

    path: str
    """Folder of WAV files (fsdd: the recordings, or a folder holding recordings/)."""
    layout: Literal["fsdd", "folders"] = "fsdd"
    """fsdd: label and speaker from `label_speaker_index.wav`; folders: `path/<class>/*.wav`."""
    split: Literal["random", "group"] = "random"
    """random (stratified by class), or group: the speakers in `test_groups` are held out for test."""
    test_groups: list[str] = []
    """Speakers (groups) whose recordings form the test split when split: group."""
    sample_rate: int = Field(8000, ge=1000)
    """Resample every file to this rate (Hz)."""
    seconds: float = Field(1.0, gt=0)
    """Pad with silence or crop every recording to this length."""
    features: Literal["log_mel", "mfcc"] = "log_mel"
    """log-mel spectrogram (dB), or MFCCs (DCT of the log-mel)."""
    n_fft: int = Field(512, ge=16)
    """FFT size (window length) in samples."""
    hop_length: int = Field(80, ge=1)
    """Samples between frames (80 at 8 kHz = 10 ms)."""
    n_mels: int = Field(40, ge=4)
    """Mel bands."""
    n_mfcc: int = Field(20, ge=2)
    """Cepstral coefficients kept (features: mfcc)."""
    shift_seconds: float = Field(0.0, ge=0)
    """Training augmentation: shift each waveform by up to ± this many seconds (silence fills the gap)."""
    noise_snr: float | None = None
    """Training augmentation: add white noise at a random signal-to-noise ratio between this (dB) and 40 dB."""
    speed: float = Field(0.0, ge=0, lt=0.5)
    """Training augmentation: play each recording at a random speed in [1 - speed, 1 + speed]; pitch and
    formants move with it, an imitation of other voices (helps on speakers never heard in training)."""
    vtlp: float = Field(0.0, ge=0, lt=0.5)
    """Training augmentation (features: log_mel): vocal-tract-length perturbation, each sample's frequency axis
    scaled by a random factor in [1 - vtlp, 1 + vtlp] (formants and harmonics move, timing and duration do not)."""
    tilt_db: float = Field(0.0, ge=0)
    """Training augmentation (features: log_mel): add to each sample a straight line across the mel bands rising
    by a random amount in [-tilt_db, tilt_db] dB from the lowest band to the highest (another microphone)."""
    mixup: float = Field(0.0, ge=0)
    """Training augmentation: mix each batch of features with a shuffled copy by a weight drawn from
    Beta(mixup, mixup), and the labels alike (Zhang et al. 2018; 0.2 is usual); 0: off."""
    normalize: Literal["dataset", "utterance", "level"] = "dataset"
    """dataset: standardize each bin with train statistics; utterance: first remove each recording's own mean
    per bin over its frames (cepstral mean normalization: a speaker's and microphone's fixed colouring); level:
    first express each recording's log-mel in dB below its own loudest bin (one gain per recording, the
    spectral shape kept), floored `top_db` below it."""
    top_db: float = Field(80.0, gt=0)
    """normalize: utterance or level: log-mel values more than this many dB below the recording's loudest are
    raised to that floor (so zero padding and quiet microphones look alike)."""
    time_masks: int = Field(0, ge=0)
    """SpecAugment: masks of up to `time_mask_frames` consecutive frames per training sample."""
    time_mask_frames: int = Field(10, ge=1)
    """Longest time mask, in frames."""
    frequency_masks: int = Field(0, ge=0)
    """SpecAugment: masks of up to `frequency_mask_bins` consecutive feature bins per training sample."""
    frequency_mask_bins: int = Field(6, ge=1)
    """Widest frequency mask, in bins."""

    @model_validator(mode="after")
    def _band_augmentations_need_log_mel(self):
        if (self.vtlp or self.tilt_db) and self.features != "log_mel":
            raise ValueError(f"vtlp and tilt_db work on log-mel bands, but features is {self.features!r}; set "
                             "features: log_mel, or vtlp: 0 and tilt_db: 0")  # fmt: skip
        return self


def read_waveform(path: Path, sample_rate: int, samples: int) -> numpy.ndarray:
    """One file → float32 (samples,) mono at `sample_rate`, zero-padded or cropped."""
    soundfile = _require_soundfile()
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises its own LibsndfileError
        raise DataError(f"cannot read audio file {path}: {error}", "is it a complete WAV/FLAC/OGG file?") from None
    audio = audio.mean(axis=1)  # mono
    if rate != sample_rate:
        from scipy.signal import resample_poly

        divisor = math.gcd(int(rate), sample_rate)
        audio = resample_poly(audio, sample_rate // divisor, int(rate) // divisor).astype(numpy.float32)
    fixed = numpy.zeros(samples, dtype=numpy.float32)
    fixed[: min(samples, len(audio))] = audio[:samples]
    return fixed


def _files(config: AudioOptions) -> tuple[list[Path], list[str], list[str]]:
    """(files, labels, groups) for the layout."""
    folder = data_path(config.path)
    if not folder.is_dir():
        raise DataError(f"data.path {config.path!r} is not a folder", "point it at a folder of WAV files")
    if config.layout == "folders":
        files = sorted(folder.glob("*/*.wav"))
        return files, [file.parent.name for file in files], ["" for _ in files]
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    files, labels, groups = [], [], []
    for file in sorted(folder.glob("*.wav")):
        match = FSDD_NAME.match(file.stem)
        if match is None:
            raise DataError(f"{file.name} does not follow the fsdd naming label_speaker_index.wav",
                            "rename it, or use layout: folders (one subfolder per class)")  # fmt: skip
        files.append(file)
        labels.append(match["label"])
        groups.append(match["group"])
    return files, labels, groups


class AudioFeatures:
    """(B, samples) waveforms → (B, 1, bins, frames) log-mel or MFCC features, standardized per bin with train
    statistics. Runs on the batch's device."""

    def __init__(self, record: dict):
        self.record = record
        self.filterbank = mel_filterbank(record["sample_rate"], record["n_fft"], record["n_mels"])
        self.basis = dct_matrix(record["n_mfcc"], record["n_mels"]) if record["features"] == "mfcc" else None
        self.mean = torch.tensor(record.get("mean", 0.0))
        self.std = torch.tensor(record.get("std", 1.0))

    def raw(self, waveforms: Tensor) -> Tensor:
        features = log_mel(waveforms.float(), self.filterbank, self.record["n_fft"], self.record["hop_length"])
        if self.record.get("normalize") == "level":
            features = self.normalized_by_level(features)
        if self.basis is not None:
            features = mfcc(features, self.basis)
        return features.unsqueeze(1)  # (B, 1, bins, frames)

    def normalized_by_level(self, features: Tensor) -> Tensor:
        """(B, bins, frames) dB → dB below each recording's loudest value, floored `top_db` below it (librosa's
        power_to_db(ref=max, top_db)): a recording's gain no longer matters."""
        loudest = features.amax(dim=(-2, -1), keepdim=True)
        return torch.maximum(features, loudest - self.record.get("top_db", 80.0)) - loudest

    def normalized_by_utterance(self, features: Tensor) -> Tensor:
        """Each recording's mean per bin removed; values more than `top_db` below its loudest are floored first,
        so the zero padding of short clips does not dominate the mean (librosa's top_db)."""
        floor = features.amax(dim=(-2, -1), keepdim=True) - self.record.get("top_db", 80.0)
        features = torch.maximum(features, floor)
        return features - features.mean(dim=-1, keepdim=True)

    def __call__(self, waveforms: Tensor) -> Tensor:
        features = self.raw(waveforms)
        if self.record.get("normalize") == "utterance":
            features = self.normalized_by_utterance(features)
        mean, std = self.mean.to(features.device), self.std.to(features.device)
        return (features - mean.view(1, 1, -1, 1)) / std.view(1, 1, -1, 1)


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


def shift_and_noise(waveforms: Tensor, max_shift: int, noise_snr: float | None, generator: torch.Generator,
                    speed: float = 0.0) -> Tensor:  # fmt: skip
    """Each waveform played at a random speed in [1 - speed, 1 + speed], shifted by a random whole number of
    samples in [-max_shift, max_shift] (zeros fill in), plus white noise at a random SNR from `noise_snr` to 40 dB."""
    count, samples = waveforms.shape
    result = waveforms
    if speed:
        result = change_speed(result, 1 + speed * (2 * torch.rand(count, generator=generator) - 1))
    if max_shift:
        shifts = torch.randint(-max_shift, max_shift + 1, (count,), generator=generator)
        source = torch.arange(samples)[None, :] - shifts[:, None]  # (N, S): sample read for each position
        valid = (source >= 0) & (source < samples)
        result = torch.where(valid, result.gather(1, source.clamp(0, samples - 1)), torch.zeros(()))
    if noise_snr is not None:
        snr = noise_snr + (40.0 - noise_snr) * torch.rand(count, 1, generator=generator)
        power = result.pow(2).mean(dim=1, keepdim=True).clamp(min=1e-10)
        noise = torch.randn(result.shape, generator=generator) * (power / 10 ** (snr / 10)).sqrt()
        result = result + noise
    return result


def spec_augment(features: Tensor, generator: torch.Generator, time_masks: int, time_width: int,
                 frequency_masks: int, frequency_width: int) -> Tensor:  # fmt: skip
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


@datasets.register("audio", config=AudioOptions)
def audio(config: AudioOptions, seed: int) -> DataBundle:
    """WAV folders (Free Spoken Digits, class subfolders) → log-mel/MFCC classification."""
    files, labels, groups = _files(config)
    if len(files) < 10:
        raise DataError(f"found {len(files)} WAV files under {config.path}", "point data.path at the recordings")
    samples = int(round(config.seconds * config.sample_rate))
    waveforms = torch.from_numpy(numpy.stack([read_waveform(f, config.sample_rate, samples) for f in files]))
    class_names = sorted(set(labels), key=lambda name: (len(name), name))
    lookup = {name: i for i, name in enumerate(class_names)}
    targets = torch.tensor([lookup[label] for label in labels])
    index = _split(config, targets, groups, seed)
    splits = {name: Split(waveforms[index[name]], targets[index[name]]) for name in ("train", "val", "test")}
    record = {"sample_rate": config.sample_rate, "samples": samples, "features": config.features,
              "n_fft": config.n_fft, "hop_length": config.hop_length, "n_mels": config.n_mels,
              "n_mfcc": config.n_mfcc, "normalize": config.normalize, "top_db": config.top_db}  # fmt: skip
    features = AudioFeatures(record)
    raw = features.raw(splits["train"].inputs)  # (N, 1, bins, frames)
    if config.normalize == "utterance":
        raw = features.normalized_by_utterance(raw)
    record["mean"] = raw.mean(dim=(0, 1, 3)).tolist()
    record["std"] = raw.std(dim=(0, 1, 3)).clamp(min=1e-6).tolist()
    transform = AudioFeatures(record)
    spec = DataSpec(kind="audio", task="classification", input_shape=tuple(raw.shape[1:]),
                    num_classes=len(class_names), class_names=class_names,
                    extra={"sample_rate": config.sample_rate})  # fmt: skip
    preprocessing = {"type": "audio", **record, "source": {"dataset": "audio", "path": str(config.path)}}
    held_out = sorted({groups[i] for i in index["test"].tolist()})
    notes = [f"{len(files)} recordings, {config.seconds:g} s at {config.sample_rate} Hz → {config.features} "
             f"{tuple(raw.shape[1:])}; test speakers/groups: {', '.join(held_out) or '-'}"]  # fmt: skip
    train_waveforms, max_shift = splits["train"].inputs, int(config.shift_seconds * config.sample_rate)
    epoch_split = None
    if max_shift or config.noise_snr is not None or config.speed:

        def epoch_split(run_seed: int, epoch: int) -> Split:
            generator = torch.Generator().manual_seed((run_seed * 1_000_003 + epoch) * 7919 + 29)
            shifted = shift_and_noise(train_waveforms, max_shift, config.noise_snr, generator, config.speed)
            return Split(shifted, splits["train"].targets)

    augment = None
    if config.time_masks or config.frequency_masks or config.vtlp or config.tilt_db or config.mixup:
        mean, std = transform.mean.view(1, 1, -1, 1), transform.std.view(1, 1, -1, 1)  # (1, 1, bins, 1)

        def augment(inputs: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
            if config.vtlp or config.tilt_db:  # on the dB values, not the standardized ones
                shift, scale = mean.to(inputs.device), std.to(inputs.device)
                decibels = inputs * scale + shift
                if config.vtlp:
                    draws = torch.rand(len(inputs), generator=generator, device=inputs.device)
                    decibels = warp_mel_frequencies(decibels, 1 + config.vtlp * (2 * draws - 1), config.sample_rate)
                if config.tilt_db:
                    draws = torch.rand(len(inputs), generator=generator, device=inputs.device)
                    decibels = tilt_bands(decibels, config.tilt_db * (2 * draws - 1))
                inputs = (decibels - shift) / scale
            masked = spec_augment(inputs, generator, config.time_masks, config.time_mask_frames,
                                  config.frequency_masks, config.frequency_mask_bins)  # fmt: skip
            if config.mixup:
                return mix_batch(masked, targets, len(class_names), config.mixup, generator)
            return masked, targets

    return DataBundle(spec, splits, preprocessing, transform, notes, augment=augment, epoch_split=epoch_split)


def _split(config: AudioOptions, targets: Tensor, groups: list[str], seed: int) -> dict[str, Tensor]:
    if config.split == "random":
        fractions = {"test": config.test_fraction, "val": config.val_fraction}
        return split_indices(targets, len(targets), fractions, seed, config.stratify)
    known = sorted(set(groups))
    unknown = [group for group in config.test_groups if group not in known]
    if not config.test_groups or unknown:
        raise DataError(f"data.test_groups {config.test_groups} names no known speaker/group" if config.test_groups
                        else "data.split: group needs data.test_groups (the speakers to hold out)",
                        f"groups in the data: {', '.join(known)}")  # fmt: skip
    held = torch.tensor([group in config.test_groups for group in groups])
    rest = torch.nonzero(~held).flatten()
    part = split_indices(targets[rest], len(rest), {"val": config.val_fraction}, seed, config.stratify)
    return {"train": rest[part["train"]], "val": rest[part["val"]], "test": torch.nonzero(held).flatten()}


def read_audio_files(paths: list[Path], preprocessing: dict) -> tuple[Tensor, list[str]]:
    """WAV files for `lamina predict`, read as the run's training data was."""
    waves = [read_waveform(path, preprocessing["sample_rate"], preprocessing["samples"]) for path in paths]
    return torch.from_numpy(numpy.stack(waves)), [str(path) for path in paths]


def _require_soundfile():
    try:
        import soundfile
    except ImportError:
        raise DataError("reading audio needs the 'soundfile' package", "pip install 'lamina[audio]'") from None
    return soundfile
