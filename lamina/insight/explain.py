"""The explanation driver: attributions of a run's model for some inputs, checked for faithfulness, written.

`explain(context, ...)` picks the modality of the run's inputs (a lazy "module:Class" mapping, so a modality
that is not installed is a clear error), computes one attribution per input with the chosen method, and measures
what the attributions are worth (lamina/insight/faithfulness.py):

- the randomization sanity check: the same method on a copy of the model whose every module was re-initialized
  (`reset_parameters()`, seeded), rank-correlated with the trained model's attributions — against the *self*
  reference: the trained model's attributions of the inputs plus a little seeded Gaussian noise (5 % of the
  inputs' standard deviation; token ids: the same noise on the embeddings they look up). A
  method that explains the model correlates far less with the randomized model than with itself.
- the deletion curve: the model's confidence in the explained class as the most attributed units are replaced
  by the baseline, its area against that of a seeded random order.

Everything lands in one folder: the modality's pictures or pages and `explanation.json`.
"""

from __future__ import annotations

import copy
import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lamina.artifacts.folder import write_json
from lamina.core.errors import ModelError, UsageError, did_you_mean
from lamina.insight import faithfulness
from lamina.insight.methods import ClassScores
from lamina.insight.modality import ExplainContext, Explained, Modality
from lamina.models.output import split_output
from lamina.tasks import task_of
from lamina.tasks.decisions import decide

__all__ = ["MODALITIES", "explain", "modality_for", "randomized_copy", "resolve_target", "Explanation", "NOISE"]

MODALITIES = {
    "image": "lamina.insight.images:ImageModality",
    "tabular": "lamina.insight.tables:TableModality",
    "text": "lamina.insight.text:TextModality",
    "audio": "lamina.insight.audio:AudioModality",
    "language": "lamina.insight.language:LanguageModality",
}
NOISE = 0.05  # the self reference's input noise, as a fraction of the inputs' standard deviation
CHUNK = 32  # inputs attributed at a time (integrated gradients run steps × chunk samples through the model)


@dataclass
class Explanation:
    """What `explain` made: the record written as explanation.json, the explained inputs, the files written
    (explanation.json last) and the lines for the terminal."""

    record: dict[str, Any]
    items: list[Explained]
    files: list[Path]
    shown: str


def modality_for(spec) -> tuple[str, Modality]:
    """(its key in MODALITIES, a new instance) of the modality that explains a run with this DataSpec; a
    ModelError for tasks that have nothing to explain towards and modalities not available."""
    task = task_of(spec)
    if task.causal:
        key = "language"
    elif task.reconstructs or task.per_step:
        raise ModelError(
            f"explanations of {task.name} runs are not available: they explain one score per input (a class "
            f"probability, a predicted value, a next token), and a {task.name} model's output is "
            + ("the whole input again" if task.reconstructs else "a sequence of labels"),
            "explain a classification, regression or language-model run",
        )
    else:
        key = spec.kind
    if key not in MODALITIES:
        raise ModelError(
            f"explanations for {spec.kind} inputs are not available",
            f"lamina explains {', '.join(k for k in MODALITIES if k != 'language')} inputs and language models",
        )
    return key, modality_class(key)()


def modality_class(key: str) -> type:
    """The class of a modality of MODALITIES, imported on first use (as the registries import their entries)."""
    module, _, name = MODALITIES[key].partition(":")
    return getattr(importlib.import_module(module), name)


def randomized_copy(model: nn.Module, seed: int) -> nn.Module:
    """A copy of `model` with every module's parameters re-initialized by its own `reset_parameters()` (batch
    norms' running statistics too), seeded: the sanity check's model that learned nothing."""
    copied = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        for module in copied.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return copied.eval()


def resolve_target(target: str | int | None, spec, predicted: Tensor) -> Tensor:
    """(N,) the class each input is explained towards: the predicted one ('predicted' or None), or the class
    given by name or index (regression: the output given by target name or index, default the first)."""
    names = spec.class_names or spec.target_names or []
    count = spec.num_classes or spec.num_targets or 1
    if target is None or target == "predicted":
        return predicted
    text = str(target)
    if text in names:
        index = names.index(text)
    elif text.lstrip("-").isdigit() and 0 <= int(text) < count:
        index = int(text)
    else:
        close = did_you_mean(text, [*names, "predicted"])
        raise UsageError(
            f"unknown target {text!r}: this run has {count} {'classes' if spec.num_classes else 'outputs'}",
            (f"did you mean {close!r}? " if close else "")
            + f"use 'predicted', a name ({', '.join(names[:12]) or 'none'}) or an index from 0 to {count - 1}",
        )
    return torch.full_like(predicted, index)


def explain(
    context: ExplainContext,
    names: list[str],
    folder: Path,
    method: str | None = None,
    target: str | int | None = "predicted",
    true_labels: Tensor | None = None,
    facts: dict[str, Any] | None = None,
) -> Explanation:
    """Explain `context.inputs` (named `names`) towards `target` with `method` (None: the modality's default),
    run both faithfulness checks and write the modality's pictures and explanation.json into `folder`.
    `facts`: more entries for the record (the run, the split, how the inputs were chosen)."""
    started = time.perf_counter()
    key, modality = modality_for(context.spec)
    method = method or modality.methods[0]
    if method not in modality.methods:
        close = did_you_mean(method, modality.methods)
        raise UsageError(
            f"unknown explanation method {method!r} for {modality.kind} inputs",
            (f"did you mean {close!r}? " if close else "") + f"methods: {', '.join(modality.methods)} (default: "
            f"{modality.methods[0]})",
        )
    model = context.model.eval()
    spec = context.spec
    if true_labels is not None and true_labels.dim() > 1:  # a language model's windows: the token after the last
        true_labels = true_labels[:, -1]
    single_logit = spec.num_classes == 2 and spec.output_size == 1
    forward = ClassScores(model, single_logit)
    probabilities = _probabilities(model, context.inputs, context, modality)
    regression = not task_of(spec).classes and not hasattr(modality, "probabilities")  # an LM: tokens are classes
    threshold = context.extra.get("threshold")  # a two-class run decides at its threshold, as `predict` does
    if regression:
        predicted = torch.zeros(len(names), dtype=torch.long)
    else:
        predicted = decide(threshold, probabilities, spec.class_names) if threshold else probabilities.argmax(dim=1)
    targets = resolve_target(target, spec, predicted).to(context.inputs.device)
    timings: dict[str, float] = {}

    def attributed(scores_model: nn.Module, inputs: Tensor, seed: int) -> Tensor:
        context.seed = seed
        parts = [
            modality.attribute(
                scores_model, inputs[start : start + CHUNK], targets[start : start + CHUNK], method, context
            )
            .detach()
            .float()
            .cpu()
            for start in range(0, len(inputs), CHUNK)
        ]
        return torch.cat(parts)

    seed = context.seed
    tick = time.perf_counter()
    attribution = attributed(forward, context.inputs, seed)
    timings["attribution"] = time.perf_counter() - tick
    tick = time.perf_counter()
    randomized = attributed(ClassScores(randomized_copy(model, seed), single_logit), context.inputs, seed)
    if not context.inputs.is_floating_point():  # token ids: the noise goes onto the embeddings they look up
        context.extra["embedding_noise"] = (NOISE, seed + 1)
    reference = attributed(forward, _noised(context.inputs, seed), seed + 1)
    context.extra.pop("embedding_noise", None)
    differs = _differs_from_baseline(modality, context, attribution.shape[1:])
    random_correlation = faithfulness.rank_correlation(attribution, randomized, differs)
    self_correlation = faithfulness.rank_correlation(attribution, reference, differs)
    timings["sanity_check"] = time.perf_counter() - tick
    context.seed = seed
    tick = time.perf_counter()
    curves = _deletion(modality, context, attribution, targets, differs)
    timings["deletion"] = time.perf_counter() - tick
    areas = {name: faithfulness.curve_area(curve) for name, curve in curves.items()}

    items = [
        Explained(
            name=name,
            target=int(targets[index]),
            predicted=int(predicted[index]),
            probability=float(probabilities[index, targets[index]]),
            attribution=attribution[index],
            true_label=None if true_labels is None or regression else int(true_labels[index]),
        )
        for index, name in enumerate(names)
    ]
    folder = Path(folder)
    summary = modality.summarize(items, context) if hasattr(modality, "summarize") else None
    files = list(modality.write(folder, items, method, context))
    shown = modality.show(items, context)
    timings["total"] = time.perf_counter() - started
    record = {
        "method": method,
        "modality": key,
        "baseline": modality.baseline_description,
        "target": "predicted" if target in (None, "predicted") else str(target),
        **({"layer": context.extra["layer"]} if "layer" in context.extra else {}),
        **(facts or {}),
        "sanity_check": {
            "randomized_rank_correlation": _mean(random_correlation),
            "self_rank_correlation": _mean(self_correlation),
            "reference": f"the trained model's attributions of the inputs plus Gaussian noise of {NOISE:g} × their "
            "standard deviation (token ids: the same noise on the embeddings they look up)",
            "randomized": "every module re-initialized by reset_parameters(), seeded",
            "ranks": "Spearman, of absolute attributions, per input over its units that differ from the baseline",
        },
        "deletion": {
            "auc": _mean(areas["attribution"]),
            "random_auc": _mean(areas["random"]),
            "fraction_below_random": faithfulness.fraction_below(areas["attribution"], areas["random"]),
            "steps": faithfulness.DELETION_STEPS,
            "units": "those that differ from the baseline, in both orders (the rest would change nothing)",
            "confidence": "the predicted value of the target output"
            if regression
            else "the probability of the explained class",
        },
        "seconds": {name: round(value, 3) for name, value in timings.items()},
        **({"summary": summary} if summary else {}),
        "inputs": [
            {
                "name": item.name,
                "target": _class_name(item.target, spec),
                "predicted": _class_name(item.predicted, spec),
                ("value" if regression else "probability"): round(item.probability, 6),
                **({"true": _class_name(item.true_label, spec)} if item.true_label is not None else {}),
                "randomized_rank_correlation": round(float(random_correlation[index]), 4),
                "self_rank_correlation": round(float(self_correlation[index]), 4),
                "deletion_auc": round(float(areas["attribution"][index]), 4),
                "random_deletion_auc": round(float(areas["random"][index]), 4),
            }
            for index, item in enumerate(items)
        ],
        "files": [path.name for path in files],
    }
    write_json(folder / "explanation.json", record)
    return Explanation(record, items, [*files, folder / "explanation.json"], shown)


def _probabilities(model: nn.Module, inputs: Tensor, context: ExplainContext, modality: Any = None) -> Tensor:
    """(N, classes) probabilities (regression: predictions) of the model for these model inputs; a modality whose
    model gives more than one score per input (a language model: one per position) says which by its own
    `probabilities(model, inputs, context)`."""
    if hasattr(modality, "probabilities"):
        with torch.no_grad():
            return modality.probabilities(model, inputs, context).float().cpu()
    parts = []
    with torch.no_grad():
        for start in range(0, len(inputs), 256):
            prediction, _, _ = split_output(model(inputs[start : start + 256]))
            scores = context.probabilities(prediction) if context.probabilities else prediction.softmax(dim=1)
            parts.append(scores.float().cpu())
    return torch.cat(parts)


def _differs_from_baseline(modality: Modality, context: ExplainContext, unit_shape: tuple[int, ...]) -> Tensor:
    """(N, *units) True where the input differs from the baseline (a pixel in any channel); every unit when the
    inputs do not map onto the units that simply."""
    inputs = context.inputs
    everything = torch.ones(len(inputs), *unit_shape, dtype=torch.bool)
    removed = modality.delete(inputs, everything.to(inputs.device), context)
    differs = (removed != inputs).cpu()
    if differs.dim() == len(unit_shape) + 2 and tuple(differs.shape[2:]) == tuple(unit_shape):
        differs = differs.any(dim=1)  # (N, C, *units) → (N, *units): a pixel differs in any channel
    return differs if tuple(differs.shape[1:]) == tuple(unit_shape) else everything


def _noised(inputs: Tensor, seed: int) -> Tensor:
    if not inputs.is_floating_point():
        return inputs
    generator = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(inputs.shape, generator=generator).to(inputs.device, inputs.dtype)
    return inputs + noise * NOISE * inputs.float().std()


def _deletion(
    modality: Modality, context: ExplainContext, attribution: Tensor, targets: Tensor, differs: Tensor
) -> dict:
    """{'attribution': (N, steps + 1), 'random': (N, steps + 1)} deletion curves over the units that differ from
    the baseline (`differs`, (N, *units)): an MNIST digit's strokes, a text's tokens, not the black background or
    the padding, which removing would not change."""
    inputs, unit_shape = context.inputs, tuple(attribution.shape[1:])
    units = attribution[0].numel()
    rows = torch.arange(len(inputs), device=inputs.device)

    def confidence(changed: Tensor) -> Tensor:
        return _probabilities(context.model, changed, context, modality)[rows.cpu(), targets.cpu()]

    def remove(changed: Tensor, mask: Tensor) -> Tensor:
        return modality.delete(changed, mask, context)

    orders = {
        "attribution": faithfulness.deletion_order(attribution, differs),
        "random": faithfulness.random_order(len(inputs), units, context.seed, differs),
    }
    counts = differs.reshape(len(inputs), -1).sum(dim=1)  # (N,)
    return {
        name: faithfulness.deletion_curve(inputs, order, unit_shape, remove, confidence, counts=counts)
        for name, order in orders.items()
    }


def _class_name(index: int, spec) -> str | int:
    names = spec.class_names or spec.target_names
    return names[index] if names and 0 <= index < len(names) else index


def _mean(values: Tensor) -> float:
    return round(float(values.double().mean()), 4) if len(values) else float("nan")
