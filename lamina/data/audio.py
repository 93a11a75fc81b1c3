"""Audio: folders of WAV files → waveforms in memory → log-mel or MFCC features computed per batch on the device.

Layouts: `fsdd` (Free Spoken Digit names `digit_speaker_index.wav`: label and speaker from the name) and
`folders` (one subfolder per class). Files are read with soundfile, mixed to mono, resampled (scipy's polyphase
filter) and padded or cropped to `seconds`. Augmentations (time shift, noise, SpecAugment, …) are in
lamina/data/audio_augment.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy
import torch
from torch import Tensor

from lamina.core.errors import DataError, resolved
from lamina.core.packages import install_command
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.groups import read_groups, relative_path, split_groups
from lamina.data.options import AudioOptions
from lamina.data.paths import data_path
from lamina.data.spec import DataSpec
from lamina.data.spectral import dct_matrix, log_mel, mel_filterbank, mfcc

__all__ = ["AudioFeatures", "audio", "read_waveform", "read_audio_files"]

FSDD_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<group>[^_]+)_(?P<index>\d+)$")


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
        raise DataError(
            f"data.path {config.path!r} is not a folder{resolved(config.path)}", "point it at a folder of WAV files"
        )
    if config.layout == "folders":
        files = sorted(folder.glob("*/*.wav"))
        return files, [file.parent.name for file in files], ["" for _ in files]
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    files, labels, groups = [], [], []
    for file in sorted(folder.glob("*.wav")):
        match = FSDD_NAME.match(file.stem)
        if match is None:
            raise DataError(
                f"{file.name} does not follow the fsdd naming label_speaker_index.wav",
                "rename it, or use layout: folders (one subfolder per class)",
            )
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
    root = data_path(config.path)
    attributes = read_groups(config.groups, files=[relative_path(file, root) for file in files])
    held_by = attributes[config.test_group_attribute] if config.test_group_attribute else groups
    index = _split(config, targets, held_by, seed)
    splits = {name: Split(waveforms[index[name]], targets[index[name]]) for name in ("train", "val", "test")}
    record = {
        "sample_rate": config.sample_rate,
        "samples": samples,
        "features": config.features,
        "n_fft": config.n_fft,
        "hop_length": config.hop_length,
        "n_mels": config.n_mels,
        "n_mfcc": config.n_mfcc,
        "normalize": config.normalize,
        "top_db": config.top_db,
    }
    features = AudioFeatures(record)
    raw = features.raw(splits["train"].inputs)  # (N, 1, bins, frames)
    if config.normalize == "utterance":
        raw = features.normalized_by_utterance(raw)
    record["mean"] = raw.mean(dim=(0, 1, 3)).tolist()
    record["std"] = raw.std(dim=(0, 1, 3)).clamp(min=1e-6).tolist()
    transform = AudioFeatures(record)
    spec = DataSpec(
        kind="audio",
        task="classification",
        input_shape=tuple(raw.shape[1:]),
        num_classes=len(class_names),
        class_names=class_names,
        extra={"sample_rate": config.sample_rate},
    )
    preprocessing = {"type": "audio", **record, "source": {"dataset": "audio", "path": str(config.path)}}
    held_out = sorted({held_by[i] for i in index["test"].tolist()})
    notes = [
        f"{len(files)} recordings, {config.seconds:g} s at {config.sample_rate} Hz → {config.features} "
        f"{tuple(raw.shape[1:])}; test speakers/groups: {', '.join(held_out) or '-'}"
    ]
    return DataBundle(spec, splits, preprocessing, transform, notes, groups=split_groups(attributes, index))


def _split(config: AudioOptions, targets: Tensor, groups: list[str], seed: int) -> dict[str, Tensor]:
    if config.split == "random":
        fractions = {"test": config.test_fraction, "val": config.val_fraction}
        return split_indices(targets, len(targets), fractions, seed, config.stratify)
    known = sorted(set(groups))
    unknown = [group for group in config.test_groups if group not in known]
    if not config.test_groups or unknown:
        raise DataError(
            f"data.test_groups {config.test_groups} names no known speaker/group"
            if config.test_groups
            else "data.split: group needs data.test_groups (the speakers to hold out)",
            f"groups in the data: {', '.join(known)}",
        )
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
        raise DataError(
            "reading audio needs the package 'soundfile', which is not installed",
            f"install it: {install_command('soundfile')}",
        ) from None
    return soundfile
