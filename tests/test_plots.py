"""Plots as figures (lamina/artifacts/plots.py, run_plots.py): one colour per split in every panel, legends beside
the data, a look of its own for each of many layers, whole-number epoch and step ticks, curves by step, and the
ROC and precision-recall curves of two-class runs."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from lamina.artifacts.plots import DASHES, PALETTE, SPLIT_COLORS, _ticks, layout, line_panel, save_figure
from lamina.artifacts.run_plots import (
    gradient_norms_figure,
    learning_curves_figure,
    precision_recall_figure,
    roc_figure,
)
from lamina.tasks.decisions import rates_at
from lamina.training.metrics import Predictions


def history(epochs: int, steps_per_epoch: int = 10) -> list[dict]:
    return [
        {
            "epoch": epoch,
            "step": epoch * steps_per_epoch,
            "train.loss": 1 / epoch,
            "val.loss": 1.1 / epoch,
            "train.accuracy": 1 - 0.5 / epoch,
            "val.accuracy": 1 - 0.6 / epoch,
        }
        for epoch in range(1, epochs + 1)
    ]


def test_each_split_keeps_its_colour_in_every_panel():
    figure = learning_curves_figure(history(3), [], "val.accuracy")
    seen = [(panel.title, series.label, series.color) for panel in figure.panels for series in panel.series]
    assert seen == [
        ("loss", "train", SPLIT_COLORS["train"]),
        ("loss", "val", SPLIT_COLORS["val"]),
        ("accuracy", "train", SPLIT_COLORS["train"]),
        ("accuracy", "val", SPLIT_COLORS["val"]),
    ]
    assert SPLIT_COLORS == {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
    # the order series are given in does not matter: val first still draws val in orange
    panel = line_panel("accuracy", {"val": ([1, 2], [0.5, 0.6]), "train": ([1, 2], [0.4, 0.7])})
    assert [(series.label, series.color) for series in panel.series] == [("val", "#ff7f0e"), ("train", "#1f77b4")]


@pytest.mark.parametrize(
    ("low", "high", "whole", "ticks"),
    [
        (1, 3, True, [1, 2, 3]),  # three epochs: no 1.5, 2.5
        (1, 2, True, [1, 2]),
        (1, 8, True, [2, 4, 6, 8]),
        (1, 120, True, [25, 50, 75, 100]),
        (0.5, 1.5, True, [1]),
        (-0.02, 1.02, False, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (0.25, 0.3, False, [0.25, 0.26, 0.27, 0.28, 0.29, 0.3]),
    ],
)
def test_ticks_are_round_and_whole_on_epoch_and_step_axes(low, high, whole, ticks):
    found = _ticks(low, high, whole=whole)
    assert found == pytest.approx(ticks)
    assert all(type(tick) is int for tick in found) == whole


def test_epoch_and_step_axes_of_a_run_have_whole_ticks():
    steps = [{"step": step, "loss": 1 / step} for step in range(1, 13)]
    figure = learning_curves_figure(history(3, steps_per_epoch=4), steps, "val.loss")
    assert [panel.x_label for panel in figure.panels] == ["epoch", "step"]
    assert figure.panels[0].x_ticks == [1, 2, 3] and figure.panels[1].x_ticks == [2, 4, 6, 8, 10, 12]
    assert all(type(tick) is int for panel in figure.panels for tick in panel.x_ticks)


def test_language_model_curves_are_also_drawn_by_step():
    steps = [{"kind": "step", "step": step, "epoch": step / 250, "loss": 4 - step / 250} for step in range(10, 751, 10)]
    figure = learning_curves_figure(history(3, steps_per_epoch=250), steps, "val.loss")
    by_step = figure.panels[-1]
    assert by_step.title == "loss by step" and by_step.x_label == "step"
    train, val = by_step.series
    assert (train.label, train.xs[:3], train.ys[0], train.color) == (
        "train (logged steps)",
        [10, 20, 30],
        3.96,
        "#1f77b4",
    )
    assert (val.label, val.xs, val.ys, val.color) == ("val", [250, 500, 750], [1.1, 0.55, 1.1 / 3], "#ff7f0e")
    assert [panel.title for panel in learning_curves_figure(history(3), [], "val.loss").panels] == ["loss"]


def test_legends_sit_beside_the_plots_never_over_the_data(tmp_path):
    figure = learning_curves_figure(history(4), [{"step": 5, "loss": 1.0}, {"step": 10, "loss": 0.5}], "val.accuracy")
    boxes = layout(figure)
    for (plot, legend), (next_plot, _) in zip(boxes, boxes[1:] + [((10**9, 0, 0, 0), None)], strict=True):
        assert plot[2] < legend[0] and legend[2] < next_plot[0]  # plot | legend | next panel, left to right
    save_figure(figure, tmp_path / "curves.png")
    image = Image.open(tmp_path / "curves.png")
    assert image.width == boxes[-1][1][2] + 20
    # the legend area holds the split colours (its swatches); the plot box holds the lines
    plot, legend = boxes[0]
    swatches = {image.getpixel((legend[0] + 15, legend[1] + 4 + 18 * row + 7)) for row in range(2)}
    assert swatches == {(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)}


def test_many_gradient_norm_layers_each_get_a_look_of_their_own():
    layers = [f"layer{index}" for index in range(14)]
    rows = [{"step": step, "layers": {name: 0.1 * (i + 1) for i, name in enumerate(layers)}} for step in (5, 10)]
    panel = gradient_norms_figure(rows).panels[0]
    assert panel.title == "log10 gradient norm per layer (12 of 14)"
    assert [s.label for s in panel.series] == layers[:6] + layers[-6:]  # the first and the last layers
    looks = [(s.color, s.dash) for s in panel.series]
    assert len(set(looks)) == 12
    assert looks[:10] == [(color, None) for color in PALETTE] and looks[10] == (PALETTE[0], DASHES[1])
    many = line_panel("norms", {f"l{index}": ([1, 2], [index, index]) for index in range(40)}, "step")
    assert len({(s.color, s.dash) for s in many.series}) == 40
    assert panel.x_ticks == [5, 6, 7, 8, 9, 10]


def two_class_predictions() -> dict[str, Predictions]:
    generator = torch.Generator().manual_seed(2)
    found = {}
    for split, count in (("val", 80), ("test", 120)):
        targets = (torch.rand(count, generator=generator) < 0.4).long()
        benign = (targets.float() * 0.5 + torch.rand(count, generator=generator) * 0.6).clamp(0, 1)
        found[split] = Predictions("classification", torch.stack([1 - benign, benign], dim=1), targets)
    return found


def test_roc_and_precision_recall_figures_name_their_areas_and_mark_the_threshold():
    from sklearn.metrics import average_precision_score, roc_auc_score

    predictions = two_class_predictions()
    record = {"positive_class": "benign", "positive_index": 1, "value": 0.55, "chosen_on": "val"}
    roc = roc_figure(predictions, record, ["malignant", "benign"]).panels[0]
    recall = precision_recall_figure(predictions, record, ["malignant", "benign"]).panels[0]
    for split, series in zip(("val", "test"), roc.series, strict=False):
        scores, positives = predictions[split].scores[:, 1], predictions[split].targets == 1
        rates = rates_at(scores, positives, 0.55)
        assert series.label == f"{split} (AUC {roc_auc_score(positives, scores):.3f})"
        assert series.color == SPLIT_COLORS[split]
        assert series.marks == [pytest.approx((1 - rates["specificity"], rates["sensitivity"]))]
        curve = recall.series[["val", "test"].index(split)]
        assert curve.label == f"{split} (AP {average_precision_score(positives, scores):.3f})"
        assert curve.marks == [pytest.approx((rates["sensitivity"], rates["precision"]))]
    assert (roc.series[-1].label, roc.series[-1].color, roc.series[-1].dots) == ("chance", "#999999", False)
    assert roc.notes == recall.notes == ["threshold 0.550 for 'benign' (chosen on val)"]
    assert roc.x_ticks == [0.0, 0.25, 0.5, 0.75, 1.0] and roc.x_label == "1 - specificity"
