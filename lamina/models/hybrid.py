"""Hybrid CNN → RNN (CRNN, Shi et al., 2015): convolutions read local patterns of an image or spectrogram,
then a recurrent network reads the resulting feature columns left to right.

    (B, C, H, W) ─conv blocks─► (B, C', H', W') ─columns─► (B, W', C'·H') ─RNN─► per step (CTC) or pooled

Images are read along their width (a row of digits becomes a digit string with CTC); spectrograms (1, mels,
frames) along time (CRNN for speech).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from lamina.data.spec import DataSpec
from lamina.errors import ModelError
from lamina.models.registry import models
from lamina.models.rnn import Pooling, Recurrent, make_recurrent, pool_steps, run_recurrent
from lamina.models.sequence import PER_STEP_TASKS, as_steps

__all__ = ["Hybrid", "HybridConfig"]


class HybridConfig(Recurrent):
    """CNN front-end (conv blocks) feeding a recurrent network over the feature map's columns."""

    channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    """Output channels of each conv block (conv 3×3 → batch norm → ReLU, then pooling)."""
    pool: list[list[int]] | None = None
    """Pooling [height, width] after each block; default [2, 2] for the first two blocks, then [2, 1] (keeps
    the time/width resolution for the recurrent part)."""
    convs: int = Field(1, ge=1)
    """Convolutions per block."""
    hidden_size: int = Field(128, ge=1)
    """Hidden units per direction and layer of the recurrent part."""
    bidirectional: bool = True
    """Read the columns in both directions (right for transcription and classification)."""
    pooling: Pooling = "mean"
    """Sequence → vector for classification: last, mean or max over the columns."""


class Hybrid(nn.Module):
    def __init__(self, config: HybridConfig, spec: DataSpec):
        super().__init__()
        if len(spec.input_shape) != 3:
            shape = "×".join(map(str, spec.input_shape))
            raise ModelError(f"model 'hybrid' needs images or spectrograms (channels, height, width), but the data "
                             f"gives {spec.kind} inputs of shape ({shape})",
                             "use it on image or audio data sets; use rnn or transformer for text")  # fmt: skip
        channels, height, width = spec.input_shape
        pools = config.pool or [[2, 2] if index < 2 else [2, 1] for index in range(len(config.channels))]
        if len(pools) != len(config.channels):
            raise ModelError(f"model.pool has {len(pools)} entries for {len(config.channels)} conv blocks",
                             "give one [height, width] per block, or leave it out")  # fmt: skip
        layers: list[nn.Module] = []
        for out_channels, (pool_height, pool_width) in zip(config.channels, pools, strict=True):
            for _ in range(config.convs):
                layers += [nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                           nn.ReLU()]  # fmt: skip
                channels = out_channels
            if (pool_height, pool_width) != (1, 1):
                layers.append(nn.MaxPool2d((pool_height, pool_width)))
            height, width = height // pool_height, width // pool_width
        if height < 1 or width < 1:
            raise ModelError(f"model.pool shrinks the {spec.input_shape[1]}×{spec.input_shape[2]} input to nothing",
                             "use fewer blocks or smaller pooling")  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.steps = width
        self.per_step = spec.task in PER_STEP_TASKS
        self.pooling = config.pooling
        self.recurrent = make_recurrent(config, channels * height)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size * (2 if config.bidirectional else 1), spec.output_size)

    def forward(self, images: Tensor) -> Tensor:
        columns = as_steps(self.features(images))  # (B, C', H', W') → (B, W', C'·H')
        outputs, final, _ = run_recurrent(self.recurrent, columns, None)
        if self.per_step:
            return self.head(self.dropout(outputs))  # (B, W', classes + blank)
        return self.head(self.dropout(pool_steps(outputs, final, None, self.pooling)))


@models.register("hybrid", config=HybridConfig)
def build_hybrid(config: HybridConfig, spec: DataSpec) -> nn.Module:
    """CNN front-end feeding an RNN (CRNN): spectrogram classification, image → digit string with CTC."""
    return Hybrid(config, spec)


build_hybrid.train_defaults = {"gradient_clip": 1.0}
build_hybrid.sequence_outputs = True
