"""What explaining a run's inputs needs, gathered from its data: the transform, the train split's mean model input
(a baseline), the val split and the metric that scores it (permutation importance), the token texts. `Run.explain`
and training's `explain:` step call `explain_data`, which calls the driver (lamina/insight/explain.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lamina.core.errors import UsageError
from lamina.data.bundle import DataBundle, Split
from lamina.data.spec import DataSpec
from lamina.data.tokenizers import tokenizer_from_dict
from lamina.insight.explain import Explanation, explain
from lamina.insight.modality import ExplainContext
from lamina.tasks import task_of
from lamina.training.options import metrics

__all__ = ["explain_data", "chosen_inputs"]


def chosen_inputs(split: Split, name: str, count: int) -> tuple[torch.Tensor, list[str], torch.Tensor, dict]:
    """(stored inputs, names 'test:17', targets, facts for the record) of the first `count` inputs of a random
    order of the split, seeded by 0: the same inputs every time, not just the first of the file."""
    if count < 1:
        raise UsageError(f"count must be at least 1; received {count}", "explain 16 inputs: --count 16")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:count]
    facts = {
        "split": name,
        "chosen": f"the first {len(order)} of a random order of the {name} split (torch.randperm seeded by 0)",
    }
    index = order.to(split.inputs.device)
    return split.inputs[index], [f"{name}:{int(i)}" for i in order], split.targets[index], facts


def split_texts(data: DataBundle, names: list[str]) -> list[str] | None:
    """The texts of inputs chosen from a split ('test:17'), when the data keeps them (text classification)."""
    split = names[0].partition(":")[0] if names else None
    kept = data.texts.get(split)
    return [kept[int(name.partition(":")[2])] for name in names] if kept else None


def explain_data(
    model: nn.Module,
    data: DataBundle,
    probabilities: Any,
    stored: torch.Tensor,
    names: list[str],
    folder: Path,
    method: str | None = None,
    target: str | int | None = None,
    true_labels: torch.Tensor | None = None,
    layer: str | None = None,
    facts: dict | None = None,
    monitor: str | None = None,
    spec: DataSpec | None = None,
    threshold: dict | None = None,
    texts: list[str] | None = None,
) -> Explanation:
    """Explain `stored` inputs of a run's data with its model (lamina/insight/explain.py), gathering what the
        modalities read: the transform, the train split's mean model input, the val split and the metric to score it
        with (permutation importance), the token texts. `Run.explain` and training's `explain:` step call it. `spec`: the
    run's own (its output size set by the loss: one logit for two classes under binary cross-entropy), else data's.
    `threshold`: a two-class run's decision record, so that "predicted" is the class `predict` gives. `texts`: the
    inputs' texts when they are known (`split_texts`)."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    transform = data.transform
    validation = None
    if "val" in data.splits and len(data.splits["val"]):
        val = data.splits["val"]
        validation = (transform(val.inputs[:5000].to(device)), val.targets[:5000].to(device))
    metric = (monitor or "").partition(".")[2]
    if metric not in metrics:
        metric = "accuracy" if task_of(data.spec).classes else "r2"
    tokenizer = tokenizer_from_dict(data.preprocessing["tokenizer"]) if "tokenizer" in data.preprocessing else None
    context = ExplainContext(
        model=model.eval(),
        spec=spec or data.spec,
        stored=stored.to(device),
        inputs=transform(stored.to(device)),
        train_mean=_train_mean(data.splits["train"].inputs, transform, device),
        tokens=[tokenizer.decode([i]) for i in range(tokenizer.size)]
        if tokenizer and tokenizer.size <= 65536
        else None,
        pad_id=getattr(tokenizer, "pad_id", None),
        layer=layer,
        extra={**({"tokenizer": tokenizer} if tokenizer else {}), **({"threshold": threshold} if threshold else {})},
        transform=transform,
        probabilities=probabilities,
        validation=validation,
        metric=metric,
        preprocessing=data.preprocessing,
        texts=texts,
    )
    return explain(context, names, Path(folder), method, target, true_labels, facts)


def _train_mean(train: torch.Tensor, transform: Any, device: torch.device) -> torch.Tensor | None:
    """The mean model input over (at most 10,000 inputs spread over) the train split; None when model inputs differ
    in shape (text trimmed to each batch's longest)."""
    picked = torch.linspace(0, len(train) - 1, min(len(train), 10_000)).long()
    total = None
    for start in range(0, len(picked), 1000):
        chunk = transform(train[picked[start : start + 1000]].to(device)).double().sum(dim=0)
        if total is not None and chunk.shape != total.shape:
            return None
        total = chunk if total is None else total + chunk
    return (total / len(picked)).float() if total is not None else None
