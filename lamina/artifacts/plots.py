"""PNG plots drawn with Pillow (a core dependency), so every run gets pictures without matplotlib.

A line plot is first described as a `Figure`: panels of styled series with their ticks, ranges and legend, as
plain values a test can read (the colour of each line, the tick values). `save_figure` then draws it. The rules
every figure keeps: a split has one colour in every panel (train blue, val orange, test green), the legend sits
beside the plot and never over the data, series beyond the ten colours of the palette change line style instead
of repeating a look, and axes of epochs or steps have whole-number ticks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lamina.artifacts.folder import atomic_write

__all__ = [
    "Series",
    "Panel",
    "Figure",
    "SPLIT_COLORS",
    "series_style",
    "line_panel",
    "layout",
    "save_figure",
    "line_chart",
    "confusion_chart",
    "image_grid",
]

SPLIT_COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
REFERENCE_STYLES = {"chance": ("#999999", (2, 4))}  # lines to compare with, grey and dotted
PALETTE = [  # matplotlib's tab10: ten colours told apart at a glance
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip
DASHES: list[tuple[int, ...] | None] = [None, (9, 5), (2, 4), (9, 4, 2, 4)]  # solid, dashed, dotted, dash-dot
PLOT_WIDTH, PLOT_HEIGHT, LEFT, TOP, BOTTOM, GAP = 420, 290, 80, 50, 60, 20


@dataclass
class Series:
    """One line: its points, colour, dash pattern (None: solid; else on/off lengths in pixels), the points it
    marks (e.g. the operating point of a decision threshold) and whether its data points show as dots."""

    label: str
    xs: list[float]
    ys: list[float]
    color: str
    dash: tuple[int, ...] | None = None
    marks: list[tuple[float, float]] = field(default_factory=list)
    dots: bool = True  # a dot at each point (of lines with fewer than 60)


@dataclass
class Panel:
    """A plot with its axes: ranges, ticks and labels, and the legend's extra lines (what the marks mean)."""

    title: str
    x_label: str
    series: list[Series]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_ticks: list[float]
    y_ticks: list[float]
    notes: list[str] = field(default_factory=list)


@dataclass
class Figure:
    panels: list[Panel]

    def colors(self) -> dict[str, str]:
        """{series label: colour} over every panel (a label that changed colour between panels would show as the
        last one)."""
        return {series.label: series.color for panel in self.panels for series in panel.series}


def series_style(label: str, index: int) -> tuple[str, tuple[int, ...] | None]:
    """(colour, dash) of a series: a split's own colour when the label starts with a split's name ('val',
    'val (AUC 0.93)'), grey dots for a reference ('chance'), else the `index`-th look: the ten palette colours
    solid, then dashed, dotted, dash-dot."""
    first = label.split(" ", 1)[0]
    if first in REFERENCE_STYLES:
        return REFERENCE_STYLES[first]
    if first in SPLIT_COLORS:
        return SPLIT_COLORS[first], None
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


def line_panel(
    title: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    x_label: str = "epoch",
    whole_x: bool = True,
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
    marks: Mapping[str, list[tuple[float, float]]] | None = None,
    notes: Sequence[str] = (),
) -> Panel:
    """A panel of {label: (xs, ys)} (NaN values are gaps). `whole_x`: the x axis counts epochs or steps, so its
    ticks are whole numbers. `bounds`: fixed ((x low, x high), (y low, y high)), else fitted to the data with 5 %
    room above and below. `marks`: points to mark on the series of that label; `notes`: legend lines below the
    series (what a mark means)."""
    styled, others = [], 0
    for label, (xs, ys) in series.items():
        color, dash = series_style(label, others)
        others += label.split(" ", 1)[0] not in {*SPLIT_COLORS, *REFERENCE_STYLES}
        dots = whole_x and label.split(" ", 1)[0] not in REFERENCE_STYLES  # curves and references: lines only
        styled.append(Series(label, list(xs), list(ys), color, dash, list((marks or {}).get(label, [])), dots))
    points = [(x, y) for s in styled for x, y in zip(s.xs, s.ys, strict=True) if y == y]
    if bounds is not None:
        (x_low, x_high), (y_low, y_high) = bounds
    elif points:
        x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
        y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
        pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
        y_low, y_high = y_low - pad, y_high + pad
    else:
        x_low, x_high, y_low, y_high = 0.0, 1.0, 0.0, 1.0
    x_high = x_high if x_high > x_low else x_low + 1
    return Panel(
        title,
        x_label,
        styled,
        (x_low, x_high),
        (y_low, y_high),
        _ticks(x_low, x_high, whole=whole_x),
        _ticks(y_low, y_high),
        list(notes),
    )


def _ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values from `low` to `high`, as near `count` of them as steps of 1, 2, 2.5 or 5 times a power of
    ten allow (the larger step on a tie); `whole`: whole numbers only (steps of at least 1, never 2.5), as ints."""
    if high <= low:
        high = low + 1.0
    exponent = math.floor(math.log10((high - low) / count))
    steps = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 2.5, 5)]
    if whole:
        steps = [step for step in steps if step >= 1 and step % 1 == 0] or [1.0]

    def placed(step: float) -> list[float]:
        start = math.ceil(low / step - 1e-9) * step
        return [start + i * step for i in range(max(0, math.floor((high - start) / step + 1e-9) + 1))]

    ticks = placed(min(steps, key=lambda step: (abs(len(placed(step)) - count), -step)))
    return [int(round(t)) for t in ticks] if whole else [round(t, 12) for t in ticks]


def _font(size: int = 14):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _legend_width(panel: Panel) -> int:
    small = _font(12)
    labels = [s.label for s in panel.series] + panel.notes
    return int(max((small.getlength(label) for label in labels), default=0)) + 44


def layout(figure: Figure) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(plot box, legend box) of each panel in pixels, as (left, top, right, bottom): panels side by side, each
    legend to the right of its plot."""
    boxes, offset = [], 0
    for panel in figure.panels:
        plot = (offset + LEFT, TOP, offset + LEFT + PLOT_WIDTH, TOP + PLOT_HEIGHT)
        rows = len(panel.series) + len(panel.notes)
        legend = (plot[2] + GAP, TOP, plot[2] + GAP + _legend_width(panel), TOP + 4 + 18 * rows)
        boxes.append((plot, legend))
        offset = legend[2] + GAP
    return boxes


def save_figure(figure: Figure, path: Path) -> None:
    """Draw the figure as `layout` places it and save a PNG."""
    boxes = layout(figure)
    image = Image.new("RGB", (boxes[-1][1][2] + GAP, TOP + PLOT_HEIGHT + BOTTOM), "white")
    draw = ImageDraw.Draw(image)
    for panel, (plot, legend) in zip(figure.panels, boxes, strict=True):
        _draw_panel(draw, panel, plot, legend)
    save_image(image, path)


def _draw_panel(draw: ImageDraw.ImageDraw, panel: Panel, plot: tuple, legend: tuple) -> None:
    left, top, right, bottom = plot
    font, small = _font(15), _font(12)
    draw.text((left, top - 24), panel.title, fill="black", font=font)
    (x_low, x_high), (y_low, y_high) = panel.x_range, panel.y_range

    def place(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_low) / (x_high - x_low) * (right - left),
            bottom - (y - y_low) / (y_high - y_low) * (bottom - top),
        )

    for y in panel.y_ticks:
        _, py = place(x_low, y)
        draw.line([(left, py), (right, py)], fill="#e6e6e6")
        draw.text((left - 8, py), f"{y:.4g}", fill="#444", font=small, anchor="rm")
    for x in panel.x_ticks:
        px, _ = place(x, y_low)
        draw.text((px, bottom + 6), f"{x:g}", fill="#444", font=small, anchor="mt")
    draw.text(((left + right) / 2, bottom + 32), panel.x_label, fill="black", font=_font(13), anchor="mm")
    draw.rectangle((left, top, right, bottom), outline="#888")
    for series in panel.series:
        line = [place(x, y) for x, y in zip(series.xs, series.ys, strict=True) if y == y]
        _polyline(draw, line, series.color, series.dash)
        for px, py in line if series.dots and len(line) < 60 else []:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=series.color)
        for px, py in (place(x, y) for x, y in series.marks):
            draw.ellipse([px - 6, py - 6, px + 6, py + 6], outline="black", width=2)
    legend_x, legend_y = legend[0], legend[1] + 4
    for index, series in enumerate(panel.series):
        y = legend_y + 18 * index + 7
        _polyline(draw, [(legend_x, y), (legend_x + 30, y)], series.color, series.dash)
        draw.text((legend_x + 38, y), series.label, fill="black", font=small, anchor="lm")
    for index, note in enumerate(panel.notes):
        y = legend_y + 18 * (len(panel.series) + index) + 7
        draw.ellipse([legend_x + 9, y - 6, legend_x + 21, y + 6], outline="black", width=2)
        draw.text((legend_x + 38, y), note, fill="black", font=small, anchor="lm")


def _polyline(
    draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], color: str, dash: tuple[int, ...] | None
) -> None:
    """A line through `points`, solid or dashed (the pattern runs on across the corners)."""
    if len(points) < 2:
        return
    if dash is None:
        draw.line(points, fill=color, width=2, joint="curve")
        return
    pattern, position = list(dash), 0.0  # position: how far into the pattern the pen is
    period = sum(pattern)
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while done < length:
            phase, index = position % period, 0
            while phase >= pattern[index] and index < len(pattern) - 1:
                phase -= pattern[index]
                index += 1
            piece = min(pattern[index] - phase, length - done)
            if index % 2 == 0:  # an "on" stretch
                a, b = done / length, (done + piece) / length
                draw.line(
                    [(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                    fill=color,
                    width=2,
                )
            done += piece
            position += piece


def line_chart(
    path: Path, panels: dict[str, dict[str, tuple[Sequence[float], Sequence[float]]]], x_label: str = "epoch"
) -> Figure:
    """Panels side by side, each {title: {series label: (xs, ys)}} over whole-number x values (epochs or steps),
    saved as PNG; returns the Figure drawn."""
    figure = Figure([line_panel(title, series, x_label) for title, series in panels.items()])
    save_figure(figure, path)
    return figure


def confusion_chart(
    path: Path, matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str, columns: str = "predicted"
) -> None:
    """Confusion matrix (rows: true class, columns: predicted, or as `columns` says) with counts, shaded by
    row-normalized rate."""
    count = len(matrix)
    cell = max(24, min(64, 640 // max(count, 1)))
    margin_left, margin_top = 110, 70
    size = (max(margin_left + cell * count + 30, int(_font(15).getlength(title)) + 20), margin_top + cell * count + 60)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(15), _font(max(9, min(14, cell // 3)))
    draw.text((10, 10), title, fill="black", font=font)
    draw.text((margin_left + cell * count / 2, margin_top - 22), columns, fill="black", font=small, anchor="mm")
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
    save_image(image, path)


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
    save_image(grid, path)


def save_image(image: Image.Image, path: Path) -> None:
    """Save a PNG atomically: a reader (or a run interrupted while saving) sees the old file or the whole new one."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(Path(path), buffer.getvalue())
