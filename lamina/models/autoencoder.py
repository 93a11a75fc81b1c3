"""Autoencoders: dense or convolutional, denoising, variational. `encoder` → latent code → `decoder` → pixels.

On a reconstruction task (`data.task: reconstruction`) the model returns per-pixel logits (sigmoid gives the
reconstructed pixel); a VAE adds its KL term as an auxiliary loss, logged as `kl` beside the reconstruction
loss. On a classification task the same family builds `encoder` + `head`, so an encoder pretrained without
labels is fine-tuned with `model.init_from: RUN_DIR` (the `encoder.*` weights match by name).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.layers import activation
from lamina.models.options import AutoencoderOptions
from lamina.models.output import ModelOutput
from lamina.tasks import task_of

__all__ = ["Autoencoder", "AutoencoderClassifier", "build_autoencoder", "pixels", "reconstruction_errors", "corrupt"]


def pixels(images: Tensor) -> Tensor:
    """uint8 images → float pixels in [0, 1]."""
    return images.float() / 255.0


def reconstruction_errors(logits: Tensor, images: Tensor) -> Tensor:
    """(N,) mean squared error per sample between sigmoid(logits) and the images, in [0, 1] pixel units."""
    return (logits.float().sigmoid() - pixels(images)).pow(2).flatten(1).mean(dim=1)


def _layer(layer: nn.Module, width: int, config: AutoencoderOptions, conv: bool) -> list[nn.Module]:
    norm = (nn.BatchNorm2d if conv else nn.BatchNorm1d)(width) if config.batch_norm else None
    return [layer, *([norm] if norm is not None else []), activation(config.activation)]


def build_encoder(shape: tuple[int, int, int], config: AutoencoderOptions) -> tuple[nn.Sequential, list[tuple]]:
    """The encoder body (B, C, H, W) → (B, features), and the shape after each stage (for the decoder)."""
    channels, height, width = shape
    layers: list[nn.Module] = []
    shapes = [shape]
    if config.kind == "conv":
        for out in config.channels:
            layers += _layer(nn.Conv2d(channels, out, 3, 2, 1, bias=not config.batch_norm), out, config, True)
            channels, height, width = out, -(-height // 2), -(-width // 2)
            shapes.append((channels, height, width))
        layers.append(nn.Flatten())  # (B, C, h, w) → (B, C·h·w)
    else:
        size = math.prod(shape)
        layers.append(nn.Flatten())
        for out in config.hidden_sizes:
            layers += _layer(nn.Linear(size, out, bias=not config.batch_norm), out, config, False)
            size = out
            shapes.append((out,))
    return nn.Sequential(*layers), shapes


def _features(shapes: list[tuple]) -> int:
    return math.prod(shapes[-1])


def build_decoder(shape: tuple[int, int, int], shapes: list[tuple], config: AutoencoderOptions) -> nn.Sequential:
    """The decoder, the encoder mirrored: code (B, latent) → per-pixel logits (B, C, H', W'), H' ≥ H, W' ≥ W."""
    features = _features(shapes)
    decoder: list[nn.Module] = [*_layer(nn.Linear(config.latent_size, features), features, config, False)]
    if config.kind == "conv":
        decoder.append(nn.Unflatten(1, shapes[-1]))  # (B, C·h·w) → (B, C, h, w)
        stages = shapes[::-1]  # deepest first, back to the input
        for index in range(len(stages) - 1):
            upsample = nn.ConvTranspose2d(stages[index][0], stages[index + 1][0], 4, 2, 1)  # doubles h, w
            last = index == len(stages) - 2  # the output layer: logits, no norm or activation
            decoder += [upsample] if last else _layer(upsample, stages[index + 1][0], config, True)
    else:
        widths = [stage[0] for stage in shapes[:0:-1]]  # hidden sizes, deepest first
        for size, out in zip(widths, widths[1:], strict=False):
            decoder += _layer(nn.Linear(size, out), out, config, False)
        decoder += [nn.Linear(widths[-1], math.prod(shape)), nn.Unflatten(1, shape)]
    return nn.Sequential(*decoder)


def corrupt(inputs: Tensor, config: AutoencoderOptions) -> Tensor:
    """Training inputs with the configured noise (`noise`, `noise_level`, `patch_size`)."""
    if config.noise == "gaussian":
        return inputs + config.noise_level * torch.randn_like(inputs)
    if config.noise == "masking":
        return inputs.masked_fill(torch.rand_like(inputs) < config.noise_level, 0.0)
    if config.noise == "patches":
        size, (height, width) = config.patch_size, inputs.shape[-2:]
        grid = torch.rand(len(inputs), 1, -(-height // size), -(-width // size), device=inputs.device)
        mask = grid.repeat_interleave(size, 2).repeat_interleave(size, 3)[..., :height, :width]  # (B, 1, H, W)
        return inputs.masked_fill(mask < config.noise_level, 0.0)
    return inputs


class Autoencoder(nn.Module):
    """encoder → (mean, log-variance) → code → decoder → per-pixel logits (B, C, H, W)."""

    def __init__(self, shape: tuple[int, int, int], config: AutoencoderOptions):
        super().__init__()
        self.config, self.shape = config, shape
        self.encoder, shapes = build_encoder(shape, config)
        features = _features(shapes)
        self.latent = nn.Linear(features, config.latent_size)
        self.log_variance = nn.Linear(features, config.latent_size) if config.variational else None
        self.decoder = build_decoder(shape, shapes, config)

    def encode(self, inputs: Tensor) -> tuple[Tensor, Tensor | None]:
        """(mean code (B, latent), log-variance or None)."""
        features = self.encoder(inputs)
        return self.latent(features), self.log_variance(features) if self.log_variance is not None else None

    def decode(self, codes: Tensor) -> Tensor:
        """Codes (B, latent) → per-pixel logits (B, C, H, W)."""
        logits = self.decoder(codes)
        return logits[:, :, : self.shape[1], : self.shape[2]]  # transposed convolutions may overshoot odd sizes

    def forward(self, inputs: Tensor) -> ModelOutput:
        mean, log_variance = self.encode(corrupt(inputs, self.config) if self.training else inputs)
        if log_variance is None:
            return ModelOutput(self.decode(mean))
        code = mean + torch.randn_like(mean) * (0.5 * log_variance).exp() if self.training else mean
        # KL(q(z|x) ‖ N(0, I)) per sample, summed over the code — the scale of the summed reconstruction loss
        kl = -0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1).mean()
        return ModelOutput(self.decode(code), auxiliary_losses={"kl": self.config.kl_weight * kl})

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """`count` new images as uint8 (N, C, H, W): codes drawn from N(0, temperature² I), decoded."""
        device = self.latent.weight.device
        codes = torch.randn(count, self.config.latent_size, generator=generator, device=device) * temperature
        return (self.decode(codes).sigmoid() * 255).round().to(torch.uint8)

    @torch.no_grad()
    def anomaly_score(self, inputs: Tensor, images: Tensor) -> Tensor:
        """(N,) reconstruction error per sample (mean squared pixel error in [0, 1] units): high = unusual.
        `inputs` are normalized model inputs, `images` the same images as stored (uint8)."""
        was_training = self.training
        self.eval()
        logits = self.decode(self.encode(inputs)[0])
        self.train(was_training)
        return reconstruction_errors(logits, images)


class AutoencoderClassifier(nn.Module):
    """The autoencoder's `encoder` with a linear `head`: for fine-tuning a pretrained encoder on labels. With
    `reconstruction_weight`, the autoencoder's `latent` and `decoder` stay too, for `reconstruction_loss`."""

    def __init__(self, shape: tuple[int, int, int], outputs: int, config: AutoencoderOptions):
        super().__init__()
        self.config, self.shape = config, shape
        self.reconstruction_weight = config.reconstruction_weight
        self.encoder, shapes = build_encoder(shape, config)
        features = _features(shapes)
        if config.classify_from == "code" or config.reconstruction_weight:  # named as in Autoencoder: they load
            self.latent = nn.Linear(features, config.latent_size)
        if config.classify_from == "code":
            norm = [nn.BatchNorm1d(config.latent_size)] if config.batch_norm else []
            self.code_activation = nn.Sequential(*norm, activation(config.activation))
            features = config.latent_size
        if config.reconstruction_weight:
            self.decoder = build_decoder(shape, shapes, config)
        self.head = nn.Sequential(
            *([nn.Dropout(config.dropout)] if config.dropout else []), nn.Linear(features, outputs)
        )

    def forward(self, inputs: Tensor) -> Tensor:
        features = self.encoder(inputs)
        if self.config.classify_from == "code":
            features = self.code_activation(self.latent(features))
        return self.head(features)

    def reconstruction_loss(self, inputs: Tensor, images: Tensor) -> Tensor:
        """Mean per-pixel binary cross-entropy of reconstructing `images` (uint8, as stored) from `inputs` (the
        same images normalized), the inputs corrupted by the configured noise while training."""
        norms = [module for module in self.encoder if isinstance(module, nn.modules.batchnorm._BatchNorm)]
        momenta = [norm.momentum for norm in norms]
        for norm in norms:  # corrupted, unaugmented images must not move the statistics the classifier runs on
            norm.momentum = 0.0
        try:
            codes = self.latent(self.encoder(corrupt(inputs, self.config) if self.training else inputs))
        finally:
            for norm, momentum in zip(norms, momenta, strict=True):
                norm.momentum = momentum
        logits = self.decoder(codes)[:, :, : self.shape[1], : self.shape[2]]  # (B, C, H, W)
        return nn.functional.binary_cross_entropy_with_logits(logits, pixels(images))


def build_autoencoder(config: AutoencoderOptions, spec: DataSpec) -> nn.Module:
    """Autoencoder (dense/conv, denoising, variational); on labelled data, its encoder with a classifier head."""
    if spec.kind != "image" or len(spec.input_shape) != 3:
        raise ModelError(
            f"model 'autoencoder' needs images (channels, height, width), but the data gives {spec.kind} inputs",
            "use an image data set",
        )
    if task_of(spec).reconstructs:
        return Autoencoder(spec.input_shape, config)
    return AutoencoderClassifier(spec.input_shape, spec.output_size, config)
