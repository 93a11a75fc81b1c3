"""PNG plots drawn with Pillow (a core dependency), so every run gets pictures without matplotlib."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["line_chart", "confusion_chart", "image_grid"]

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _font(size: int = 14):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.ceil(low / step) * step
    return [start + i * step for i in range(int((high - start) / step) + 1)]


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
) -> None:
    left, top, right, bottom = box
    font, small = _font(15), _font(12)
    draw.text((left, top - 24), title, fill="black", font=font)
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True) if y == y]
    if not points:
        return
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
    y_low, y_high = y_low - pad, y_high + pad
    x_high = x_high if x_high > x_low else x_low + 1

    def place(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_low) / (x_high - x_low) * (right - left),
            bottom - (y - y_low) / (y_high - y_low) * (bottom - top),
        )

    for y in _ticks(y_low, y_high):
        _, py = place(x_low, y)
        draw.line([(left, py), (right, py)], fill="#e6e6e6")
        draw.text((left - 8, py), f"{y:.4g}", fill="#444", font=small, anchor="rm")
    for x in _ticks(x_low, x_high):
        px, _ = place(x, y_low)
        draw.text((px, bottom + 6), f"{x:g}", fill="#444", font=small, anchor="mt")
    draw.rectangle(box, outline="#888")
    for index, (label, (xs, ys)) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        line = [place(x, y) for x, y in zip(xs, ys, strict=True) if y == y]
        if len(line) > 1:
            draw.line(line, fill=color, width=2)
        for px, py in line if len(line) < 60 else []:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
        draw.text((right - 8, top + 8 + 18 * index), label, fill=color, font=small, anchor="ra")


def line_chart(
    path: Path, panels: dict[str, dict[str, tuple[Sequence[float], Sequence[float]]]], x_label: str = "epoch"
) -> None:
    """Panels side by side, each {title: {series label: (xs, ys)}}, saved as PNG."""
    width, height = 520 * len(panels), 400
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for index, (title, series) in enumerate(panels.items()):
        offset = index * 520
        _panel(draw, (offset + 80, 50, offset + 500, height - 60), title, series)
        draw.text((offset + 290, height - 28), x_label, fill="black", font=_font(13), anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def confusion_chart(path: Path, matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str) -> None:
    """Confusion matrix (rows: true class, columns: predicted) with counts, shaded by row-normalized rate."""
    count = len(matrix)
    cell = max(24, min(64, 640 // max(count, 1)))
    margin_left, margin_top = 110, 70
    size = (margin_left + cell * count + 30, margin_top + cell * count + 60)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(15), _font(max(9, min(14, cell // 3)))
    draw.text((10, 10), title, fill="black", font=font)
    draw.text((margin_left + cell * count / 2, margin_top - 22), "predicted", fill="black", font=small, anchor="mm")
    draw.text((10, margin_top + cell * count / 2), "true", fill="black", font=small, anchor="lm")
    for row in range(count):
        total = sum(matrix[row]) or 1
        name = str(class_names[row])[:10] if row < len(class_names) else str(row)
        draw.text((margin_left - 6, margin_top + row * cell + cell / 2), name, fill="black", font=small, anchor="rm")
        draw.text(
            (margin_left + row * cell + cell / 2, margin_top + cell * count + 6),
            name,
            fill="black",
            font=small,
            anchor="mt",
        )
        for column in range(count):
            rate = matrix[row][column] / total
            shade = int(255 - 200 * rate)
            box = [
                margin_left + column * cell,
                margin_top + row * cell,
                margin_left + (column + 1) * cell,
                margin_top + (row + 1) * cell,
            ]
            draw.rectangle(box, fill=(shade, shade, 255), outline="#ccc")
            text_color = "white" if rate > 0.6 else "black"
            draw.text(
                (box[0] + cell / 2, box[1] + cell / 2),
                str(matrix[row][column]),
                fill=text_color,
                font=small,
                anchor="mm",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def image_grid(path: Path, images, columns: int = 8, scale: int = 3) -> None:
    """uint8 images (N, C, H, W) as one PNG grid (used for samples and reconstructions)."""
    count, channels, height, width = images.shape
    rows = math.ceil(count / columns)
    mode = "L" if channels == 1 else "RGB"
    grid = Image.new(mode, (columns * (width + 2) + 2, rows * (height + 2) + 2), 0)
    for index in range(count):
        array = images[index].permute(1, 2, 0).squeeze(-1).contiguous().numpy()
        tile = Image.fromarray(array, mode)
        grid.paste(tile, (2 + (index % columns) * (width + 2), 2 + (index // columns) * (height + 2)))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
