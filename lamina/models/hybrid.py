"""Hybrid CNN → RNN (CRNN, Shi et al., 2015): convolutions read local patterns of an image or spectrogram,
then a recurrent network reads the resulting feature columns left to right.

    (B, C, H, W) ─conv blocks─► (B, C', H', W') ─columns─► (B, W', C'·H') ─RNN─► per step (CTC) or pooled

Images are read along their width (a row of digits becomes a digit string with CTC); spectrograms (1, mels,
frames) along time (CRNN for speech).
"""

from __future__ import annotations

from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.options import HybridOptions
from lamina.models.rnn import make_recurrent, pool_steps, run_recurrent
from lamina.models.sequence import as_steps
from lamina.tasks import task_of

__all__ = ["Hybrid", "build_hybrid"]


class Hybrid(nn.Module):
    def __init__(self, config: HybridOptions, spec: DataSpec):
        super().__init__()
        if len(spec.input_shape) != 3:
            shape = "×".join(map(str, spec.input_shape))
            raise ModelError(
                f"model 'hybrid' needs images or spectrograms (channels, height, width), but the data "
                f"gives {spec.kind} inputs of shape ({shape})",
                "use it on image or audio data sets; use rnn or transformer for text",
            )
        channels, height, width = spec.input_shape
        pools = config.pool or [[2, 2] if index < 2 else [2, 1] for index in range(len(config.channels))]
        if len(pools) != len(config.channels):
            raise ModelError(
                f"model.pool has {len(pools)} entries for {len(config.channels)} conv blocks",
                "give one [height, width] per block, or leave it out",
            )
        layers: list[nn.Module] = []
        for out_channels, (pool_height, pool_width) in zip(config.channels, pools, strict=True):
            for _ in range(config.convs):
                layers += [
                    nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(),
                ]
                channels = out_channels
            if (pool_height, pool_width) != (1, 1):
                layers.append(nn.MaxPool2d((pool_height, pool_width)))
            height, width = height // pool_height, width // pool_width
        if height < 1 or width < 1:
            raise ModelError(
                f"model.pool shrinks the {spec.input_shape[1]}×{spec.input_shape[2]} input to nothing",
                "use fewer blocks or smaller pooling",
            )
        self.features = nn.Sequential(*layers)
        self.steps = width
        self.per_step = task_of(spec).per_step
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


def build_hybrid(config: HybridOptions, spec: DataSpec) -> nn.Module:
    """CNN front-end feeding an RNN (CRNN): spectrogram classification, image → digit string with CTC."""
    return Hybrid(config, spec)
