"""Normalization and input layers for fast image training (Page's "bag of tricks" for ResNet-9, 2018).

`GhostBatchNorm` normalizes each group of `group_size` training samples with that group's own statistics
(Hoffer et al. 2017): noisier statistics regularize like a smaller batch, at the speed of a large one.
`PatchWhitening` is a fixed first layer that decorrelates 3×3 patches; it sets itself from the first training
batch it sees, so it needs no pass over the data before training and is saved with the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GhostBatchNorm", "PatchWhitening", "batch_norm"]


class GhostBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from groups of `group_size` samples; evaluation is unchanged."""

    def __init__(self, channels: int, group_size: int, momentum: float = 0.1):
        super().__init__(channels, momentum=momentum)
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        if not self.training or batch % self.group_size or batch == self.group_size:
            return super().forward(x)  # a ragged last batch (or one group) uses plain batch statistics
        groups = batch // self.group_size
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # channels-last memory is (B, H, W, C): each group of consecutive samples is one contiguous block
            grouped = x.permute(0, 2, 3, 1).reshape(groups, -1, channels)  # (G, B/G·H·W, C)
            variance, mean = torch.var_mean(grouped, dim=1, keepdim=True, correction=0)  # (G, 1, C)
            scale = torch.rsqrt(variance + self.eps) * self.weight
            out = torch.addcmul(self.bias - mean * scale, grouped, scale)  # (x − mean)·scale + bias
            out = out.view(batch, height, width, channels).permute(0, 3, 1, 2)  # channels-last (B, C, H, W)
        else:
            grouped = x.reshape(groups, batch // groups, channels, height * width)  # (G, B/G, C, H·W)
            variance, mean = torch.var_mean(grouped, dim=(1, 3), keepdim=True, correction=0)  # (G, 1, C, 1)
            scale = torch.rsqrt(variance + self.eps) * self.weight.view(-1, 1)
            out = torch.addcmul(self.bias.view(-1, 1) - mean * scale, grouped, scale).view_as(x)
        with torch.no_grad():  # one step toward the mean of the group statistics, as BatchNorm2d would take
            count = batch // groups * height * width
            unbiased = variance.mean(dim=0).flatten() * count / max(1, count - 1)
            self.running_mean.lerp_(mean.mean(dim=0).flatten(), self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
            self.num_batches_tracked += 1
        return out


def batch_norm(channels: int, group_size: int | None, train_scale: bool, momentum: float = 0.1) -> nn.BatchNorm2d:
    """BatchNorm2d, ghost when `group_size` is set; `train_scale=False` fixes every scale at 1; `momentum` is
    PyTorch's: the weight of each new batch in the running statistics."""
    norm = GhostBatchNorm(channels, group_size, momentum) if group_size else nn.BatchNorm2d(channels, momentum=momentum)
    norm.weight.requires_grad_(train_scale)
    return norm


class PatchWhitening(nn.Module):
    """A fixed k×k convolution onto the whitened basis of image patches: (B, C, H, W) → (B, C·k², H', W').

    The filters are the eigenvectors of the patch covariance scaled by 1/√(eigenvalue + ε), computed once from
    the first training batch (then kept, and saved with the weights); they are never trained. Odd sizes pad to
    keep H × W; even sizes do not pad (H' = H − k + 1). `signed` adds each filter's negative (2·C·k² outputs)
    and a trained bias, as the first layer of Jordan's airbench (2024), so an activation after it loses nothing."""

    def __init__(self, channels: int, size: int = 3, epsilon: float = 1e-2, signed: bool = False):
        super().__init__()
        self.size, self.epsilon, self.signed = size, epsilon, signed
        self.register_buffer("weight", torch.zeros(channels * size * size, channels, size, size))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))
        self.bias = nn.Parameter(torch.zeros(self.outputs)) if signed else None

    @property
    def outputs(self) -> int:
        return self.weight.shape[0] * (2 if self.signed else 1)

    def forward(self, images: Tensor) -> Tensor:
        if self.training and not bool(self.ready):
            self.fit(images)
        weight = torch.cat([self.weight, -self.weight]) if self.signed else self.weight
        return F.conv2d(images, weight, self.bias, padding=self.size // 2 if self.size % 2 else 0)

    @torch.no_grad()
    def fit(self, images: Tensor) -> None:
        channels, size = images.shape[1], self.size
        patches = images.float().unfold(2, size, 1).unfold(3, size, 1)  # (B, C, H', W', k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels * size * size)  # (B·H'·W', C·k·k)
        patches = patches - patches.mean(dim=0)
        covariance = patches.T @ patches / max(1, len(patches) - 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())  # ascending
        filters = eigenvectors.T.flip(0) / torch.sqrt(eigenvalues.flip(0) + self.epsilon)[:, None]
        self.weight.copy_(filters.reshape(self.weight.shape).to(self.weight.dtype))
        self.ready.fill_(True)
