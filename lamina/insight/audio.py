"""Explanations of audio classifiers (the hybrid CRNN, and any family, on log-mel or MFCC spectrograms): one score
per cell of the spectrogram the model reads, (N, bins, frames) — time × frequency, the channel summed.

The data set stores waveforms; the run's transform turns them into standardized spectrograms (lamina/data/audio.py),
and attributions are taken there. Baseline: silence, as the model reads it inside a recording — the log-mel floor of
a waveform of zeros, or with `normalize: level` (dB below each recording's loudest, floored `top_db` below it)
`-top_db`, which is what a recording's silent stretches become (the transform of an all-zero waveform would be 0 dB,
"as loud as its loudest", under that normalization); then MFCC, utterance normalization and the train statistics
as the run's transform applies them. Deleting cells replaces them with the silent spectrogram's. Without the run's
preprocessing record the baseline falls back to each input's smallest value (its quietest cell).

    integrated_gradients  Captum IntegratedGradients from silence to the input (32 steps)
    occlusion             Captum Occlusion: the log-odds lost when a patch (1/8 of the bins × 1/12 of the
                          frames) is silenced; every cell of a patch gets the patch's score

Scores explain the log-odds of the class (lamina/insight/tokens.py: log_odds).
"""

from __future__ import annotations

from pathlib import Path

import numpy
import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.audio import AudioFeatures
from lamina.data.spectral import hz_to_mel, log_mel, mel_to_hz, mfcc
from lamina.insight.heatmaps import NEGATIVE, POSITIVE, font, save_png, scale_of
from lamina.insight.modality import ExplainContext, Explained
from lamina.insight.text import file_name, item_heading
from lamina.insight.tokens import STEPS, log_odds

__all__ = ["AudioModality", "silent_spectrogram", "spectrogram_box", "write_spectrogram"]

LEFT, TOP, BOTTOM, GAP = 64, 44, 46, 70


def silent_spectrogram(record: dict, samples: int) -> Tensor:
    """(1, 1, bins, frames) silence as the run's transform (the preprocessing `record`) gives it inside a recording
    of `samples` samples: see the module's docstring."""
    features = AudioFeatures(record)
    decibels = log_mel(torch.zeros(1, samples), features.filterbank, record["n_fft"], record["hop_length"])
    if record.get("normalize") == "level":  # silent stretches sit top_db below the recording's loudest value
        decibels = torch.full_like(decibels, -float(record.get("top_db", 80.0)))
    if features.basis is not None:
        decibels = mfcc(decibels, features.basis)
    silence = decibels.unsqueeze(1)  # (1, 1, bins, frames)
    if record.get("normalize") == "utterance":
        silence = features.normalized_by_utterance(silence)
    return (silence - features.mean.view(1, 1, -1, 1)) / features.std.view(1, 1, -1, 1)


def spectrogram_box(bins: int, frames: int) -> tuple[int, int]:
    """(pixels per cell, image width) of a spectrogram picture: two panels of frames × bins cells, each cell a
    square of whole pixels (at most 6, and at least 2, so about 400 pixels a panel)."""
    scale = max(2, min(6, 400 // max(frames, 1)))
    return scale, LEFT + 2 * frames * scale + GAP + 20


def _axes(preprocessing: dict | None, bins: int, frames: int) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Ticks (cell index, label) along time (seconds) and frequency (Hz of the mel bands' centres; MFCC: the
    coefficient), or plain indices without the record."""
    if not preprocessing or "hop_length" not in preprocessing:
        return [(i, str(i)) for i in range(0, frames, max(1, frames // 5))], [
            (i, str(i)) for i in range(0, bins, max(1, bins // 4))
        ]
    seconds_per_frame = preprocessing["hop_length"] / preprocessing["sample_rate"]
    step = max(0.05, round(frames * seconds_per_frame / 5, 1))
    times = [(round(t / seconds_per_frame), f"{t:.1f}") for t in numpy.arange(0, frames * seconds_per_frame, step)]
    if preprocessing.get("features") == "mfcc":
        return times, [(i, str(i)) for i in range(0, bins, max(1, bins // 4))]
    top = hz_to_mel(preprocessing["sample_rate"] / 2)
    centres = [mel_to_hz(top * (i + 1) / (bins + 1)) for i in range(bins)]
    return times, [(i, f"{centres[i]:.0f}") for i in range(0, bins, max(1, bins // 4))]


def write_spectrogram(
    path: Path, spectrogram: Tensor, scores: Tensor, title: str, preprocessing: dict | None = None
) -> Path:
    """A PNG of one input: the spectrogram (bins, frames) in grey, low frequencies at the bottom, and beside it
    the same with the scores over it (red: towards the explained class, blue: against, opaque at the largest
    |score|); time in seconds and frequency in Hz on the axes when the run's preprocessing record is given."""
    bins, frames = spectrogram.shape
    scale, width = spectrogram_box(bins, frames)
    values = spectrogram.float().flip(0).numpy()  # (F, T), low frequencies last: drawn at the bottom
    grey = (values - values.min()) / max(float(values.max() - values.min()), 1e-9)
    base = numpy.repeat((40 + 215 * grey)[..., None], 3, axis=2)  # (F, T, 3)
    attribution = scores.float().flip(0).numpy()
    strength = numpy.clip(numpy.abs(attribution) / scale_of(attribution.flatten()), 0, 1)[..., None] * 0.85
    colour = numpy.where(attribution[..., None] > 0, numpy.array(POSITIVE), numpy.array(NEGATIVE))
    overlay = base * (1 - strength) + colour * strength
    image = Image.new("RGB", (width, TOP + bins * scale + BOTTOM), "white")
    draw, small = ImageDraw.Draw(image), font(11)
    draw.text((8, 6), title, fill="black", font=font(14))
    times, frequencies = _axes(preprocessing, bins, frames)
    frequency_label = "Hz" if preprocessing and preprocessing.get("features") != "mfcc" else "bin"
    for panel, (pixels, caption) in enumerate([(base, "spectrogram"), (overlay, "attribution over it")]):
        left = LEFT + panel * (frames * scale + GAP)
        picture = Image.fromarray(pixels.astype(numpy.uint8), "RGB").resize((frames * scale, bins * scale), 0)
        image.paste(picture, (left, TOP))
        draw.rectangle([left - 1, TOP - 1, left + frames * scale, TOP + bins * scale], outline="#888")
        draw.text((left, TOP - 4), caption, fill="#333", font=small, anchor="lb")
        for frame, label in times:
            draw.text((left + frame * scale, TOP + bins * scale + 4), label, fill="#444", font=small, anchor="mt")
        draw.text(
            (left + frames * scale / 2, TOP + bins * scale + 24), "time (s)", fill="black", font=small, anchor="mt"
        )
        for band, label in frequencies:
            y = TOP + (bins - band) * scale - scale / 2
            draw.text((left - 4, y), label, fill="#444", font=small, anchor="rm")
    draw.text((LEFT - 4, TOP - 4), frequency_label, fill="black", font=small, anchor="rb")
    return save_png(image, path)


class AudioModality:
    """Spectrogram classifiers: attributions per time × frequency cell, a PNG over each spectrogram."""

    kind = "audio"
    methods = (
        "occlusion",
        "integrated_gradients",
    )  # occlusion first: on the FSDD CRNN it passes both checks better (docs/insight.md)
    baseline_description = (
        "silence as the model reads it inside a recording: the log-mel floor (with level normalization, top_db "
        "below the loudest value), standardized with the train statistics"
    )

    def baseline(self, context: ExplainContext) -> Tensor:
        if "silence" not in context.extra:
            record = context.preprocessing or {}
            if record.get("type") == "audio":
                context.extra["silence"] = silent_spectrogram(record, context.stored.shape[-1])  # (1, 1, F, T)
            else:  # no record: each input's quietest cell everywhere
                context.extra["silence"] = context.inputs.amin(dim=(-2, -1), keepdim=True)
        return context.extra["silence"].to(context.inputs.device).expand_as(context.inputs)

    def attribute(
        self, model: nn.Module, inputs: Tensor, targets: Tensor, method: str, context: ExplainContext
    ) -> Tensor:
        from captum.attr import IntegratedGradients, Occlusion  # optional extra: explain

        if inputs.ndim != 4:
            raise ModelError(
                f"audio explanations read spectrograms (N, 1, bins, frames), received {tuple(inputs.shape)}",
                "explain a run trained on data: audio",
            )
        silence = self.baseline(context)
        if silence.shape[0] != inputs.shape[0]:
            silence = silence[:1].expand_as(inputs)
        targets = targets.to(inputs.device)

        def forward(spectrograms: Tensor, chosen: Tensor) -> Tensor:
            return log_odds(model(spectrograms), chosen, False)

        if method == "integrated_gradients":
            scores = IntegratedGradients(forward).attribute(
                inputs, silence.contiguous(), None, (targets,), n_steps=STEPS, internal_batch_size=128
            )
        elif method == "occlusion":
            _, channels, bins, frames = inputs.shape
            patch = (channels, max(1, bins // 8), max(1, frames // 12))
            with torch.no_grad():
                scores = Occlusion(forward).attribute(
                    inputs, patch, patch, silence.contiguous(), None, (targets,), perturbations_per_eval=8
                )
        else:
            raise ModelError(f"unknown audio attribution method {method!r}", f"use one of {', '.join(self.methods)}")
        return scores.detach().float().sum(dim=1)  # (N, 1, F, T) → (N, F, T)

    def delete(self, inputs: Tensor, mask: Tensor, context: ExplainContext) -> Tensor:
        silence = self.baseline(context)
        if silence.shape[0] != inputs.shape[0]:
            silence = silence[:1].expand_as(inputs)
        return torch.where(mask.to(inputs.device).unsqueeze(1), silence, inputs)  # (N, 1, F, T)

    def write(self, folder: Path, items: list[Explained], method: str, context: ExplainContext) -> list[Path]:
        """spectrograms/<input>.png for every input; `items[i]` explains `context.inputs[i]`."""
        names = context.spec.class_names
        paths = []
        for index, item in enumerate(items):
            title = f"{item.name} | {item_heading(item, names)} | {method}"
            path = folder / "spectrograms" / f"{file_name(item.name)}.png"
            spectrogram = context.inputs[index].float().sum(dim=0).cpu()  # (1, F, T) → (F, T)
            paths.append(write_spectrogram(path, spectrogram, item.attribution.cpu(), title, context.preprocessing))
        return paths

    def show(self, items: list[Explained], context: ExplainContext) -> str:
        """Per input: where in time and frequency the attribution towards the class is strongest."""
        names, record = context.spec.class_names, context.preprocessing or {}
        lines = []
        for item in items:
            scores = item.attribution.float().cpu()  # (F, T)
            positive = scores.clamp(min=0)
            frame, band = int(positive.sum(dim=0).argmax()), int(positive.sum(dim=1).argmax())
            share = float(positive.sum() / scores.abs().sum().clamp(min=1e-12))
            where = f"frame {frame}, bin {band}"
            if "hop_length" in record:
                where = f"{frame * record['hop_length'] / record['sample_rate']:.2f} s"
                if record.get("features") != "mfcc":
                    top = hz_to_mel(record["sample_rate"] / 2)
                    where += f", {mel_to_hz(top * (band + 1) / (scores.shape[0] + 1)):.0f} Hz"
            lines.append(f"{item.name}  {item_heading(item, names)}")
            lines.append(f"  strongest towards it at {where}; {share:.0%} of the attribution is positive")
        return "\n".join(lines)
