"""Residual networks (He et al. 2015/2016): a stem, stages of residual blocks, global pooling, a linear head.

The model is `backbone` (stem + stages + pooling) and `head`, so `train.freeze: [backbone]` and
`model.init_from` treat every ResNet alike. Presets give the classic shapes; any option given beside a preset
overrides it:

    model: {name: resnet, preset: resnet18}                   # 4 stages × 2 basic blocks, 64→512 channels
    model: {name: resnet, preset: resnet9, width: 0.5}        # Page's DAWNBench ResNet-9 at half width
    model: {name: resnet, preset: airbench}                   # Jordan's airbench93 network for CIFAR-10

`block: plain` is one conv-BN-activation with no shortcut; with `identity_init` its filters start as the
identity, a residual connection in the initial weights only (airbench).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.layers import activation
from lamina.models.normalization import PatchWhitening, batch_norm
from lamina.models.options import ResNetOptions

__all__ = ["ResNet", "build_resnet", "BasicBlock", "BottleneckBlock", "PlainBlock"]


def _conv(inputs: int, outputs: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel, stride, padding=kernel // 2, bias=False)


class Parts:
    """The normalization and activation every layer of one network uses."""

    def __init__(self, config: ResNetOptions):
        self.config = config

    def norm(self, channels: int) -> nn.BatchNorm2d:
        config = self.config
        return batch_norm(channels, config.norm_group_size, config.train_norm_scales, config.norm_momentum)

    def activation(self) -> nn.Module:
        return activation(self.config.activation)

    def conv_bn(self, inputs: int, outputs: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
        return nn.Sequential(_conv(inputs, outputs, kernel, stride), self.norm(outputs), self.activation())

    def conv_pool(self, inputs: int, outputs: int, pool: int) -> list[nn.Module]:
        """conv-BN-activation then max pooling (ResNet-9), or conv → pool → BN → activation (pool_before_norm).
        The first keeps the module names of runs saved before the option existed."""
        if pool > 1 and self.config.pool_before_norm:
            return [nn.Sequential(_conv(inputs, outputs), nn.MaxPool2d(pool), self.norm(outputs), self.activation())]
        return [self.conv_bn(inputs, outputs)] + ([nn.MaxPool2d(pool)] if pool > 1 else [])


class PlainBlock(nn.Module):
    """One 3×3 convolution, batch norm and activation, without a shortcut (BN → activation → conv when
    `preactivation`)."""

    expansion = 1

    def __init__(self, inputs: int, channels: int, stride: int, preactivation: bool, parts: Parts | None = None):
        super().__init__()
        parts = parts or Parts(ResNetOptions())
        conv = _conv(inputs, channels, 3, stride)
        if preactivation:
            self.layers = nn.Sequential(parts.norm(inputs), parts.activation(), conv)
        else:
            self.layers = nn.Sequential(conv, parts.norm(channels), parts.activation())

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut; `preactivation` moves BN-ReLU before each convolution."""

    expansion = 1

    def __init__(self, inputs: int, channels: int, stride: int, preactivation: bool, parts: Parts | None = None):
        super().__init__()
        parts = parts or Parts(ResNetOptions())
        self.preactivation, self.act = preactivation, parts.activation()
        self.conv1, self.conv2 = _conv(inputs, channels, 3, stride), _conv(channels, channels)
        self.bn1 = parts.norm(inputs if preactivation else channels)
        self.bn2 = parts.norm(channels)
        self.shortcut = _shortcut(inputs, channels, stride, preactivation, parts)

    def forward(self, x: Tensor) -> Tensor:
        act = self.act
        if self.preactivation:
            activated = act(self.bn1(x))
            shortcut = self.shortcut(activated) if self.shortcut is not None else x
            return shortcut + self.conv2(act(self.bn2(self.conv1(activated))))
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return act(shortcut + self.bn2(self.conv2(act(self.bn1(self.conv1(x))))))

    def last_norm(self) -> nn.BatchNorm2d | None:
        return None if self.preactivation else self.bn2


class BottleneckBlock(nn.Module):
    """1×1 reduce → 3×3 (strided) → 1×1 expand (×4), with a shortcut."""

    expansion = 4

    def __init__(self, inputs: int, channels: int, stride: int, preactivation: bool, parts: Parts | None = None):
        super().__init__()
        parts = parts or Parts(ResNetOptions())
        outputs = channels * self.expansion
        self.preactivation, self.act = preactivation, parts.activation()
        self.conv1, self.conv2 = _conv(inputs, channels, 1), _conv(channels, channels, 3, stride)
        self.conv3 = _conv(channels, outputs, 1)
        self.bn1 = parts.norm(inputs if preactivation else channels)
        self.bn2 = parts.norm(channels)
        self.bn3 = parts.norm(channels if preactivation else outputs)
        self.shortcut = _shortcut(inputs, outputs, stride, preactivation, parts)

    def forward(self, x: Tensor) -> Tensor:
        act = self.act
        if self.preactivation:
            activated = act(self.bn1(x))
            shortcut = self.shortcut(activated) if self.shortcut is not None else x
            out = self.conv2(act(self.bn2(self.conv1(activated))))
            return shortcut + self.conv3(act(self.bn3(out)))
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out = act(self.bn2(self.conv2(act(self.bn1(self.conv1(x))))))
        return act(shortcut + self.bn3(self.conv3(out)))

    def last_norm(self) -> nn.BatchNorm2d | None:
        return None if self.preactivation else self.bn3


def _shortcut(inputs: int, outputs: int, stride: int, preactivation: bool, parts: Parts) -> nn.Module | None:
    """Identity when shapes agree; else a strided 1×1 projection (+ BN for post-activation blocks)."""
    if stride == 1 and inputs == outputs:
        return None
    projection = _conv(inputs, outputs, 1, stride)
    return projection if preactivation else nn.Sequential(projection, parts.norm(outputs))


class ResNet(nn.Module):
    """`backbone` (stem → stages → global pool → (B, features)) and a linear `head`."""

    def __init__(self, input_shape: tuple[int, int, int], outputs: int, config: ResNetOptions):
        super().__init__()
        channels, height, width = input_shape
        self.config = config
        scaled = lambda count: max(1, round(count * config.width))  # noqa: E731
        parts = Parts(config)
        stem_kind = config.stem if config.stem != "auto" else ("small" if max(height, width) <= 64 else "large")
        stem_width = scaled(config.stem_channels)
        if stem_kind == "small":
            stem: list[nn.Module] = [parts.conv_bn(channels, stem_width)]
        elif stem_kind == "whitened":
            whitening = PatchWhitening(channels, config.whitening_size)
            stem = [whitening, parts.conv_bn(whitening.outputs, stem_width, kernel=1)]
            height, width = height - 1 + config.whitening_size % 2, width - 1 + config.whitening_size % 2
        elif stem_kind == "whitened_signed":  # airbench's ε, for the centred patch covariance
            whitening = PatchWhitening(channels, config.whitening_size, epsilon=5e-4, signed=True)
            stem, stem_width = [whitening, parts.activation()], whitening.outputs
            height, width = height - 1 + config.whitening_size % 2, width - 1 + config.whitening_size % 2
        else:
            stem = [parts.conv_bn(channels, stem_width, 7, 2), nn.MaxPool2d(3, 2, padding=1)]
            height, width = -(-height // 4), -(-width // 4)
        block_class = {"basic": BasicBlock, "bottleneck": BottleneckBlock, "plain": PlainBlock}[config.block]
        stages, current = [], stem_width
        for number, stage in enumerate(config.stages):
            layers: list[nn.Module] = []
            stage_width = scaled(stage.channels)
            if stage.transition == "conv_pool":
                layers += parts.conv_pool(current, stage_width, stage.stride)
                height, width, current = height // stage.stride, width // stage.stride, stage_width
                for _ in range(stage.blocks):
                    layers.append(
                        block_class(current, stage_width // block_class.expansion or 1, 1, config.preactivation, parts)
                    )
            else:
                for index in range(stage.blocks):
                    stride = stage.stride if index == 0 else 1
                    layers.append(block_class(current, stage_width, stride, config.preactivation, parts))
                    current = stage_width * block_class.expansion
                height, width = -(-height // stage.stride), -(-width // stage.stride)
            if height < 1 or width < 1:
                raise ModelError(
                    f"model.stages[{number}] shrinks the {input_shape[1]}×{input_shape[2]} input to nothing",
                    "use fewer strided stages or stem: small for small images",
                )
            stages.append(nn.Sequential(*layers))
        ending: list[nn.Module] = [parts.norm(current), parts.activation()] if config.preactivation else []
        pool = nn.AdaptiveAvgPool2d(1) if config.global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.backbone = nn.Sequential(*stem, *stages, *ending, pool, nn.Flatten())  # (B, C, h, w) → (B, C)
        self.features = current
        self.head = nn.Sequential(
            *([nn.Dropout(config.dropout)] if config.dropout else []), nn.Linear(current, outputs)
        )
        # a residual branch whose last scale is fixed cannot start at zero: it would stay there
        self._initialize(config.zero_init_residual and config.train_norm_scales, config.identity_init)

    def _initialize(self, zero_residual: bool, identity: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and identity and module.kernel_size == (3, 3):
                module.reset_parameters()
                with torch.no_grad():
                    nn.init.dirac_(module.weight[: module.in_channels])  # output i starts as input i
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if zero_residual:
            for module in self.modules():
                last = module.last_norm() if isinstance(module, BasicBlock | BottleneckBlock) else None
                if last is not None:
                    nn.init.zeros_(last.weight)

    def forward(self, images: Tensor) -> Tensor:
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        logits = self._logits(images)
        shift = self.config.test_time_shift
        if shift and not self.training:
            height, width = images.shape[2:]
            padded = F.pad(images, (shift,) * 4, mode="reflect")  # (B, C, H + 2s, W + 2s)
            up_left = self._logits(padded[:, :, :height, :width])
            down_right = self._logits(padded[:, :, 2 * shift :, 2 * shift :])
            logits = logits / 2 + (up_left + down_right) / 4
        return logits

    def _logits(self, images: Tensor) -> Tensor:
        logits = self.head(self.backbone(images)) * self.config.output_scale
        if self.config.test_time_flip and not self.training:
            flipped = self.head(self.backbone(images.flip(3))) * self.config.output_scale
            logits = (logits + flipped) / 2
        return logits


def build_resnet(config: ResNetOptions, spec: DataSpec) -> nn.Module:
    """Residual network (basic/bottleneck blocks, pre-activation, ResNet-18/34/50/9 presets)."""
    if spec.kind != "image" or len(spec.input_shape) != 3:
        shape = "×".join(map(str, spec.input_shape))
        raise ModelError(
            f"model 'resnet' needs images (channels, height, width), but the data gives {spec.kind} "
            f"inputs of shape ({shape})",
            "use model.name: mlp for tabular data",
        )
    if not config.stages:
        raise ModelError("model.stages is empty", "give at least one stage, or a preset such as resnet18")
    if config.test_time_shift >= min(spec.input_shape[1:]):
        raise ModelError(
            f"model.test_time_shift {config.test_time_shift} is not smaller than the "
            f"{spec.input_shape[1]}×{spec.input_shape[2]} images",
            "use a shift of 1 or 2 pixels",
        )
    return ResNet(spec.input_shape, spec.output_size, config)
