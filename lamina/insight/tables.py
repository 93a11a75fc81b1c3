"""Explaining models of table rows (mlp on csv, parquet, breast_cancer, arrays of features): which features
drove each prediction, and which matter overall.

Per row, methods (the first is the default): `integrated_gradients` from the baseline row; `saliency`, |gradient|
at the row; `feature_ablation`, the drop in the class score when one feature is set to its baseline value. The
baseline is the train split's mean row (as the model reads it: zero in every standardized feature, the train
share of each one-hot category), so an attribution says how far a feature's value moves the score away from the
score of an average row.

Overall (`summarize`), two measures side by side: the mean |attribution| over the explained rows, and
permutation importance on the val split — how much the run's metric drops when one feature column is shuffled
(seeded, `REPEATS` shuffles, averaged), which asks the model directly and needs no attribution at all.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from lamina.insight.drawing import bar_panel, save_png, side_by_side, stacked
from lamina.insight.methods import integrated_gradients, occlusion, saliency
from lamina.insight.modality import ExplainContext, Explained
from lamina.models.output import split_output
from lamina.tasks import task_of
from lamina.training.metrics import Predictions, compute_metrics
from lamina.training.options import metric_goal

__all__ = ["TableModality", "permutation_importance", "REPEATS", "SHOWN_FEATURES"]

REPEATS = 5  # shuffles per feature in permutation importance
SHOWN_FEATURES = 15  # features in the charts and the terminal table (the most important by mean |attribution|)
ROW_FEATURES = 8  # features in each row's chart
PAGE_ROWS = 8  # row charts per PNG page


def permutation_importance(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    probabilities,
    task: str,
    metric: str,
    seed: int = 0,
    repeats: int = REPEATS,
    positive: int = 1,
) -> tuple[float, Tensor]:
    """(the metric on the unshuffled inputs, (F,) its mean drop when each feature column is shuffled): the drop
    is positive when shuffling hurts, whichever way the metric is better (accuracy up, mse down)."""
    generator = torch.Generator().manual_seed(seed)
    sign = 1.0 if metric_goal(metric) == "max" else -1.0

    def score(rows: Tensor) -> float:
        with torch.no_grad():
            prediction, _, _ = split_output(model(rows))
        predictions = Predictions(task, probabilities(prediction).float().cpu(), targets.cpu(), positive)
        return compute_metrics(predictions, [metric])[metric]

    reference = score(inputs)
    drops = torch.zeros(inputs.shape[1])
    for feature in range(inputs.shape[1]):
        for _ in range(repeats):
            shuffled = inputs.clone()
            order = torch.randperm(len(inputs), generator=generator).to(inputs.device)
            shuffled[:, feature] = inputs[order, feature]
            drops[feature] += sign * (reference - score(shuffled)) / repeats
    return reference, drops


class TableModality:
    kind = "tabular"
    methods = ("integrated_gradients", "saliency", "feature_ablation")
    baseline_description = (
        "the train split's mean row, as the model reads it (0 in every standardized numeric feature, each "
        "category's train share in its one-hot column)"
    )

    def baseline(self, context: ExplainContext) -> Tensor:
        mean = context.train_mean if context.train_mean is not None else torch.zeros_like(context.inputs[0])
        return mean.to(context.inputs.device, context.inputs.dtype)[None]  # (1, F)

    def attribute(
        self, model: nn.Module, inputs: Tensor, targets: Tensor, method: str, context: ExplainContext
    ) -> Tensor:
        baseline = self.baseline(context)
        if method == "integrated_gradients":
            return integrated_gradients(model, inputs, baseline, targets)
        if method == "saliency":
            return saliency(model, inputs, targets)
        return occlusion(model, inputs, baseline, targets, (1,), (1,))  # one feature at a time

    def delete(self, inputs: Tensor, mask: Tensor, context: ExplainContext) -> Tensor:
        return torch.where(mask, self.baseline(context), inputs)

    def feature_names(self, context: ExplainContext) -> list[str]:
        count = context.inputs.shape[1]
        names = context.spec.feature_names or []
        return list(names) if len(names) == count else [f"feature {index}" for index in range(count)]

    def summarize(self, items: list[Explained], context: ExplainContext) -> dict:
        """The global importance of each feature: mean |attribution| over the explained rows, and permutation
        importance on the val split (when the run has one); kept in context.extra['importance'] too."""
        names = self.feature_names(context)
        attributions = torch.stack([item.attribution for item in items])  # (N, F)
        importance = {
            "features": names,
            "mean_abs_attribution": [round(float(v), 6) for v in attributions.abs().mean(dim=0)],
        }
        if context.validation is not None and context.metric is not None:
            inputs, targets = context.validation
            task = context.spec.task
            reference, drops = permutation_importance(
                context.model,
                inputs,
                targets,
                context.probabilities or (lambda p: p.softmax(dim=1)),
                task,
                context.metric,
                context.seed,
                positive=context.spec.positive_index if task_of(task).classes else 1,
            )
            importance["permutation_importance"] = [round(float(v), 6) for v in drops]
            importance["permutation"] = (
                f"the drop in val {context.metric} (unshuffled: {reference:.4f}) when the feature's column is "
                f"shuffled, mean of {REPEATS} seeded shuffles"
            )
        context.extra["importance"] = importance
        return {"importance": importance}

    def write(self, folder: Path, items: list[Explained], method: str, context: ExplainContext) -> list[Path]:
        names = self.feature_names(context)
        importance = context.extra.get("importance") or self.summarize(items, context)["importance"]
        shown = _top(importance["mean_abs_attribution"], SHOWN_FEATURES)
        panels = [
            bar_panel(
                f"mean |{method.replace('_', ' ')}| over {len(items)} rows",
                [names[i] for i in shown],
                [importance["mean_abs_attribution"][i] for i in shown],
            )
        ]
        if "permutation_importance" in importance:
            values = importance["permutation_importance"]
            panels.append(
                bar_panel("permutation importance (val)", [names[i] for i in shown], [values[i] for i in shown])
            )
        paths = [folder / "importance.png"]
        save_png(side_by_side(panels), paths[0])
        class_names = context.spec.class_names
        for page in range(math.ceil(len(items) / PAGE_ROWS)):
            charts = []
            for item in items[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]:
                values = item.attribution.tolist()
                top = _top([abs(v) for v in values], ROW_FEATURES)
                charts.append(bar_panel(_title(item, class_names), [names[i] for i in top], [values[i] for i in top]))
            path = folder / f"rows-{page + 1}.png"
            save_png(stacked(charts), path)
            paths.append(path)
        return paths

    def show(self, items: list[Explained], context: ExplainContext) -> str:
        names = self.feature_names(context)
        lines = []
        for item in items:
            values = item.attribution.tolist()
            top = _top([abs(v) for v in values], 3)
            features = ", ".join(f"{names[i]} {values[i]:+.3g}" for i in top)
            lines.append(f"  {_title(item, context.spec.class_names)} — {features}")
        importance = context.extra.get("importance")
        if importance:
            permutation = importance.get("permutation_importance")
            lines.append(
                "\nfeature importance (mean |attribution| over these rows; permutation: drop in val "
                f"{context.metric} when the column is shuffled)"
            )
            width = max(len(names[i]) for i in range(len(names)))
            for index in _top(importance["mean_abs_attribution"], SHOWN_FEATURES):
                line = f"  {names[index]:<{width}}  {importance['mean_abs_attribution'][index]:10.4g}"
                lines.append(line + (f"  {permutation[index]:10.4g}" if permutation else ""))
        return "\n".join(lines)


def _top(values: list[float], count: int) -> list[int]:
    return sorted(range(len(values)), key=lambda index: -values[index])[:count]


def _title(item: Explained, class_names: list[str] | None) -> str:
    def name(index: int | None) -> str:
        return str(class_names[index]) if class_names and index is not None and index < len(class_names) else str(index)

    if not class_names:  # regression: the value predicted
        return f"{item.name}: predicted {item.probability:.4g}"
    text = f"{item.name}: predicted {name(item.predicted)} ({item.probability:.2f})"
    text += f", true {name(item.true_label)}" if item.true_label is not None else ""
    return text + (f"; explaining {name(item.target)}" if item.target != item.predicted else "")
