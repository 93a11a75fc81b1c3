"""Colours and PNG files for the heat maps of sequence explanations (spectrograms, attention maps): a diverging
red/blue scale for signed attributions, a white-to-blue scale for weights in [0, 1], Pillow's fonts, and PNGs
written atomically."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageFont

from lamina.artifacts.folder import atomic_write

__all__ = ["signed_color", "weight_color", "font", "save_png", "scale_of", "POSITIVE", "NEGATIVE"]

POSITIVE, NEGATIVE = (214, 39, 40), (31, 119, 180)  # towards the explained class: red; against it: blue


def scale_of(values) -> float:
    """The magnitude that maps to full colour: the largest absolute value (1 when all are 0)."""
    largest = float(max((abs(float(v)) for v in values), default=0.0))
    return largest if largest > 0 else 1.0


def signed_color(value: float, scale: float) -> tuple[int, int, int]:
    """White at 0, towards red for positive and blue for negative values, full colour at ±`scale`."""
    strength = max(0.0, min(1.0, abs(value) / scale))
    target = POSITIVE if value > 0 else NEGATIVE
    return tuple(round(255 + (channel - 255) * strength) for channel in target)  # type: ignore[return-value]


def weight_color(value: float) -> tuple[int, int, int]:
    """White at 0 to dark blue at 1 (attention weights)."""
    strength = max(0.0, min(1.0, value))
    return (round(255 - 247 * strength), round(255 - 207 * strength), round(255 - 148 * strength))


def font(size: int = 13):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def save_png(image: Image.Image, path: Path) -> Path:
    """The image as a PNG at `path`, written atomically (readers see the old file or the whole new one)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
    return path
