"""Convolutional network: blocks of convolution (+ batch norm + activation) and pooling, then a head."""

from __future__ import annotations

from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.layers import activation, initialize
from lamina.models.options import CNNOptions

__all__ = ["CNN", "build_cnn"]


class CNN(nn.Module):
    """`features` (conv blocks) → global pooling → `head`. Input (B, C, H, W), output (B, outputs)."""

    def __init__(self, input_shape: tuple[int, int, int], outputs: int, config: CNNOptions):
        super().__init__()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for number, block in enumerate(config.blocks, start=1):
            padding = block.kernel_size // 2 if block.padding is None else block.padding
            for index in range(block.convs):
                stride = block.stride if index == 0 else 1
                layers.append(
                    nn.Conv2d(channels, block.channels, block.kernel_size, stride, padding, bias=not config.batch_norm)
                )
                if config.batch_norm:
                    layers.append(nn.BatchNorm2d(block.channels))
                layers.append(activation(config.activation))
                channels = block.channels
                height = (height + 2 * padding - block.kernel_size) // stride + 1
                width = (width + 2 * padding - block.kernel_size) // stride + 1
            if block.pool != "none":
                pool = nn.MaxPool2d if block.pool == "max" else nn.AvgPool2d
                layers.append(pool(block.pool_size))
                height, width = height // block.pool_size, width // block.pool_size
            if height < 1 or width < 1:
                raise ModelError(
                    f"model.blocks[{number - 1}] shrinks the {input_shape[1]}×{input_shape[2]} input to nothing "
                    f"({height}×{width})",
                    "use fewer blocks, pool: none on later blocks, or smaller kernels/strides for small images",
                )
        self.features = nn.Sequential(*layers)
        if config.global_pool == "flatten":
            self.pool: nn.Module = nn.Flatten()
            width_out = channels * height * width
        else:
            pool = nn.AdaptiveAvgPool2d(1) if config.global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
            self.pool = nn.Sequential(pool, nn.Flatten())  # (B, C, h, w) → (B, C)
            width_out = channels
        head: list[nn.Module] = []
        for size in config.head_hidden:
            head += [nn.Dropout(config.dropout)] if config.dropout else []
            head += [nn.Linear(width_out, size), activation(config.activation)]
            width_out = size
        head += [nn.Dropout(config.dropout)] if config.dropout else []
        self.head = nn.Sequential(*head, nn.Linear(width_out, outputs))
        initialize(self, config.init, config.activation)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.pool(self.features(images)))


def build_cnn(config: CNNOptions, spec: DataSpec) -> nn.Module:
    """Convolutional network for images (conv + pooling blocks)."""
    if spec.kind != "image" or len(spec.input_shape) != 3:
        shape = "×".join(map(str, spec.input_shape))
        raise ModelError(
            f"model 'cnn' needs images (channels, height, width), but the data gives {spec.kind} inputs of "
            f"shape ({shape})",
            "use model.name: mlp for tabular data, or an image data set (digits, mnist)",
        )
    return CNN(spec.input_shape, spec.output_size, config)
