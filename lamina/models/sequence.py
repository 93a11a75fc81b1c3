"""How sequence families read their inputs: token ids, or feature vectors per step.

    text      (B, T) token ids                    → embedding
    sequence  (B, T, F) features per step          → time series windows
    image     (B, C, H, W), audio (B, 1, F, T)     → one step per column: (B, W, C·H)

so an RNN or a Transformer reads a spectrogram frame by frame and an image column by column.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec

__all__ = ["SequenceLayout", "sequence_layout", "as_steps"]


@dataclass(frozen=True)
class SequenceLayout:
    tokens: bool  # (B, T) ids, else feature vectors
    features: int  # vocabulary size for tokens, features per step otherwise
    steps: int  # steps per sample as stored (the longest; batches may be shorter)
    pad_id: int | None  # token id of padding (masked everywhere), None without padding


def sequence_layout(spec: DataSpec, family: str) -> SequenceLayout:
    """Read the data's spec as a sequence; ModelError for data that is not one (a table row)."""
    shape = spec.input_shape
    if spec.kind == "text" and len(shape) == 1:
        return SequenceLayout(True, int(spec.extra["vocab_size"]), shape[0], spec.extra.get("pad_id"))
    if len(shape) == 2:  # (T, F)
        return SequenceLayout(False, shape[1], shape[0], None)
    if len(shape) == 3:  # (C, H, W): steps along W
        return SequenceLayout(False, shape[0] * shape[1], shape[2], None)
    raise ModelError(
        f"model {family!r} reads sequences, but the data gives {spec.kind} inputs of shape "
        f"({'×'.join(map(str, shape))})",
        "use it on text, audio, time series or images (read column by column); use mlp for table rows",
    )


def as_steps(inputs: Tensor) -> Tensor:
    """Feature inputs as (B, T, F): images and spectrograms (B, C, H, W) become one step per column."""
    if inputs.ndim == 4:
        batch, channels, height, width = inputs.shape
        return inputs.permute(0, 3, 1, 2).reshape(batch, width, channels * height)  # (B, W, C·H)
    return inputs
