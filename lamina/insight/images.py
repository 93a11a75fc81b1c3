"""Explaining image classifiers (cnn, resnet, an autoencoder's classifier): which pixels drove a prediction.

Methods (the first is the default):
- `integrated_gradients`: gradients integrated along the straight path from the baseline to the image; signed,
  and the pixels' scores sum to score(image) − score(baseline).
- `grad_cam`: the class-weighted feature maps of the last convolutional stage before global pooling (found
  automatically; `layer` names another), upsampled to the image; coarse (a 28×28 MNIST CNN's last stage is 3×3)
  but a view of what the network's deep features look at.
- `saliency`: |gradient| of the class score at the image itself; fast, noisy.
- `occlusion`: the drop in the class score when a square of the image (about an eighth of its side) is replaced
  by the baseline.

A unit is a pixel: channel scores are summed. The baseline is a black image (zero in the stored uint8 pixels,
normalized as the run's inputs are): "nothing here" for MNIST-like digits on black; for photographs it is one
choice among several (the train mean image is another), and integrated gradients explain relative to it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.insight.drawing import font, heat_colors, new_page, save_png
from lamina.insight.methods import ClassScores, grad_cam, integrated_gradients, occlusion, saliency
from lamina.insight.modality import ExplainContext, Explained

__all__ = ["ImageModality", "conv_stages", "last_conv_stage", "PAGE_ROWS"]

PAGE_ROWS = 8  # inputs per PNG page
TILE = 112  # pixels of each panel's side


def conv_stages(model: nn.Module, sample: Tensor) -> list[str]:
    """Names of the modules holding a convolution whose output is a spatial map (N, C, h, w), in the order they
    finish in a forward pass of `sample`, up to the first global pooling (a 1×1 map or a flat output)."""
    finished: list[tuple[str, nn.Module, Tensor]] = []
    handles = [
        module.register_forward_hook(lambda m, a, output, name=name: finished.append((name, m, output)))
        for name, module in model.named_modules()
        if name
    ]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
    stages, seen = [], set()
    for name, module, output in finished:
        if not isinstance(output, Tensor):
            continue
        spatial = output.dim() == 4 and output.shape[2] * output.shape[3] > 1
        if output.dim() <= 2 or (output.dim() == 4 and not spatial):  # flattened, or pooled to 1×1: the head
            break
        if spatial and name not in seen and any(isinstance(m, nn.Conv2d) for m in module.modules()):
            stages.append(name)
            seen.add(name)
    return stages


def last_conv_stage(model: nn.Module, sample: Tensor) -> str:
    """The layer Grad-CAM explains by default: the last module holding a convolution that finishes before global
    pooling — the last stage of a ResNet ('backbone.3'), a CNN's `features`."""
    stages = conv_stages(model, sample)
    if not stages:
        raise ModelError(
            f"{type(model).__name__} has no convolutional layer for Grad-CAM",
            "use --method integrated_gradients, saliency or occlusion",
        )
    return stages[-1]


class ImageModality:
    kind = "image"
    methods = ("integrated_gradients", "grad_cam", "saliency", "occlusion")
    baseline_description = "a black image (zero in every stored pixel, normalized as the run's inputs are)"

    def baseline(self, context: ExplainContext) -> Tensor:
        black = torch.zeros_like(context.stored[:1])  # (1, C, H, W) uint8
        return context.transform(black).to(context.inputs.dtype)

    def attribute(
        self, model: nn.Module, inputs: Tensor, targets: Tensor, method: str, context: ExplainContext
    ) -> Tensor:
        if method == "grad_cam":
            inner = model.model if isinstance(model, ClassScores) else model  # the same layers, their own weights
            layer = dict(inner.named_modules())[self.layer_name(context)]
            maps = grad_cam(model, layer, inputs, targets)  # (N, h, w)
            size = inputs.shape[2:]
            return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
        baseline = self.baseline(context)
        if method == "integrated_gradients":
            scores = integrated_gradients(model, inputs, baseline, targets)
        elif method == "saliency":
            scores = saliency(model, inputs, targets)
        else:
            side = max(1, round(inputs.shape[2] / 8))
            channels = inputs.shape[1]
            scores = occlusion(model, inputs, baseline, targets, (channels, side, side), (channels, side, side))
        return scores.sum(dim=1)  # (N, C, H, W) → (N, H, W): one score per pixel

    def layer_name(self, context: ExplainContext) -> str:
        """The Grad-CAM layer's name in the run's model: context.layer, checked, or the last convolutional stage;
        kept in context.extra['layer'] (written into explanation.json)."""
        if "layer" not in context.extra:
            model, sample = context.model, context.inputs[:1]
            if context.layer is None:
                context.extra["layer"] = last_conv_stage(model, sample)
            elif not context.layer or context.layer not in dict(model.named_modules()):
                raise ModelError(
                    f"the model has no layer {context.layer!r}",
                    f"name one of its convolutional stages: {', '.join(conv_stages(model, sample))} (default: the "
                    "last)",
                )
            else:
                context.extra["layer"] = context.layer
        return context.extra["layer"]

    def delete(self, inputs: Tensor, mask: Tensor, context: ExplainContext) -> Tensor:
        baseline = self.baseline(context).to(inputs.device)
        return torch.where(mask[:, None], baseline, inputs)  # mask (N, H, W) → every channel of the pixel

    def write(self, folder: Path, items: list[Explained], method: str, context: ExplainContext) -> list[Path]:
        paths = []
        for page in range(math.ceil(len(items) / PAGE_ROWS)):
            rows = items[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
            stored = context.stored[page * PAGE_ROWS : page * PAGE_ROWS + len(rows)]
            path = folder / f"images-{page + 1}.png"
            save_png(self.page(rows, stored, method, context), path)
            paths.append(path)
        return paths

    def page(self, items: list[Explained], stored: Tensor, method: str, context: ExplainContext) -> Image.Image:
        """One row per input: the input, the heat map, the heat map over the input in grey, and a caption."""
        caption, gap = 34, 6
        width = 3 * TILE + 4 * gap
        image, draw = new_page(max(width, 420), len(items) * (TILE + caption + gap) + gap)
        signed = method in ("integrated_gradients", "occlusion")
        names = context.spec.class_names
        for row, (item, pixels) in enumerate(zip(items, stored, strict=True)):
            top = gap + row * (TILE + caption + gap)
            draw.text((gap, top), _caption(item, names), fill="black", font=font(12))
            heat, strength = heat_colors(item.attribution.float().cpu().numpy(), signed)
            picture = pixels.permute(1, 2, 0).cpu().numpy()  # (C, H, W) → (H, W, C) uint8
            colour = numpy.repeat(picture, 3, axis=2) if picture.shape[2] == 1 else picture[:, :, :3]
            grey = colour.mean(axis=2, keepdims=True).repeat(3, axis=2)
            alpha = (0.85 * strength)[:, :, None]
            overlay = (grey * (1 - alpha) + heat * alpha).astype(numpy.uint8)
            for column, panel in enumerate((colour, heat, overlay)):
                tile = Image.fromarray(numpy.ascontiguousarray(panel.astype(numpy.uint8)), "RGB")
                tile = tile.resize((TILE, TILE), Image.NEAREST)  # pixels stay pixels: a map is per pixel
                image.paste(tile, (gap + column * (TILE + gap), top + caption - 4))
        return image

    def show(self, items: list[Explained], context: ExplainContext) -> str:
        return ""


def _caption(item: Explained, names: list[str] | None) -> str:
    def name(index: int | None) -> str:
        return "?" if index is None else (names[index] if names and index < len(names) else str(index))

    line = f"{item.name}: predicted {name(item.predicted)} ({item.probability:.2f})"
    line += f", true {name(item.true_label)}" if item.true_label is not None else ""
    if item.target != item.predicted:
        line += f"; explaining {name(item.target)}"
    return line + "\ninput · attribution · overlay"
