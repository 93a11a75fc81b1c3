"""Attributions as colours, and the PNG pages explanations are drawn on (Pillow, as lamina/artifacts/plots.py).

Two colour maps: `diverging` for signed attributions (blue against the explained class, white none, red
towards it) and `sequential` for maps that are never negative (Grad-CAM, saliency): black → red → yellow →
white. Both scale each map by its 99th percentile of |value|, so a single extreme pixel does not wash out the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy
from PIL import Image, ImageDraw, ImageFont

from lamina.artifacts.plots import save_image

__all__ = [
    "font",
    "scaled",
    "diverging",
    "sequential",
    "heat_colors",
    "save_png",
    "new_page",
    "bar_panel",
    "side_by_side",
    "stacked",
]

_DIVERGING = numpy.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], dtype=numpy.float64)  # -1, 0, +1
_SEQUENTIAL = numpy.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=numpy.float64
)  # inferno at 0, 0.25, 0.5, 0.75, 1


def font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def scaled(values: numpy.ndarray, signed: bool) -> numpy.ndarray:
    """Values divided by their 99th percentile of |value| and clipped: [-1, 1] when signed, else [0, 1]."""
    scale = float(numpy.percentile(numpy.abs(values), 99)) or float(numpy.abs(values).max()) or 1.0
    return numpy.clip(values / scale, -1.0 if signed else 0.0, 1.0)


def _interpolate(anchors: numpy.ndarray, positions: numpy.ndarray) -> numpy.ndarray:
    """(…, 3) uint8 colours at `positions` in [0, 1] along evenly spaced anchor colours."""
    where = positions * (len(anchors) - 1)
    low = numpy.clip(numpy.floor(where).astype(int), 0, len(anchors) - 2)
    fraction = (where - low)[..., None]
    return (anchors[low] * (1 - fraction) + anchors[low + 1] * fraction).round().astype(numpy.uint8)


def diverging(values: numpy.ndarray) -> numpy.ndarray:
    """(…, 3) colours of values in [-1, 1]: blue, white at 0, red."""
    return _interpolate(_DIVERGING, (values + 1) / 2)


def sequential(values: numpy.ndarray) -> numpy.ndarray:
    """(…, 3) colours of values in [0, 1]: black, purple, red, orange, pale yellow."""
    return _interpolate(_SEQUENTIAL, values)


def heat_colors(values: numpy.ndarray, signed: bool) -> tuple[numpy.ndarray, numpy.ndarray]:
    """((…, 3) colours, (…) strength in [0, 1]) of an attribution map, scaled as `scaled` does."""
    unit = scaled(values, signed)
    return (diverging(unit) if signed else sequential(unit)), numpy.abs(unit)


def save_png(image: Image.Image, path: Path) -> None:
    """Save a PNG atomically (written whole, or not at all)."""
    save_image(image, path)


def new_page(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (width, height), "white")
    return image, ImageDraw.Draw(image)


def bar_panel(title: str, labels: list[str], values: list[float], width: int = 300) -> Image.Image:
    """A horizontal bar chart: one bar per label, red for positive values and blue for negative ones, from a zero
    line placed so that both signs fit; each bar's value written beside it."""
    small = font(12)
    label_width = max((int(small.getlength(label)) for label in labels), default=0) + 12
    row, top = 18, 30
    image, draw = new_page(label_width + width + 70, top + row * len(labels) + 10)
    draw.text((6, 6), title, fill="black", font=font(13))
    low, high = min(0.0, *values) if values else 0.0, max(0.0, *values) if values else 1.0
    span = (high - low) or 1.0
    zero = label_width + width * (-low / span)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + index * row
        draw.text((label_width - 6, y + row / 2), label, fill="black", font=small, anchor="rm")
        end = zero + width * value / span
        colour = tuple(int(c) for c in (_DIVERGING[2] if value >= 0 else _DIVERGING[0]))
        draw.rectangle((min(zero, end), y + 3, max(zero, end), y + row - 3), fill=colour)
        draw.text((max(zero, end) + 4, y + row / 2), f"{value:.3g}", fill="#444", font=small, anchor="lm")
    draw.line((zero, top - 2, zero, top + row * len(labels)), fill="#888")
    return image


def side_by_side(images: list[Image.Image], gap: int = 10) -> Image.Image:
    """Images next to each other on white, tops aligned."""
    page, _ = new_page(
        sum(image.width for image in images) + gap * (len(images) + 1), max(image.height for image in images) + 2 * gap
    )
    left = gap
    for image in images:
        page.paste(image, (left, gap))
        left += image.width + gap
    return page


def stacked(images: list[Image.Image], gap: int = 10) -> Image.Image:
    """Images one below the other on white, left edges aligned."""
    page, _ = new_page(
        max(image.width for image in images) + 2 * gap, sum(image.height for image in images) + gap * (len(images) + 1)
    )
    top = gap
    for image in images:
        page.paste(image, (gap, top))
        top += image.height + gap
    return page
