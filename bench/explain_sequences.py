"""Explain 16 inputs of finished text, audio and language-model runs with each modality's default method, and
measure it: wall time (attributions, a randomization check, deletion curves, the pages and pictures), the rank
correlation between the trained and a randomized-weights model's attributions, and the deletion curve's area
(probability of the explained class as the most-attributed units go first) against a random order.

    .venv/bin/python bench/explain_sequences.py runs/insight/<run> [more runs] [--out DIR] [--method M]

It drives the modality classes directly (lamina/insight/{text,audio,language}.py), as the explanation driver does,
with minimal faithfulness helpers of its own; one CPU thread unless --threads.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lamina.data.text import labelled_splits
from lamina.insight.audio import AudioModality
from lamina.insight.language import LanguageModality
from lamina.insight.modality import ExplainContext, Explained
from lamina.insight.text import TextModality
from lamina.models.output import split_output
from lamina.models.registry import build_model
from lamina.run import load_run, run_data
from lamina.tasks import task_of


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    ranks = [values.flatten().argsort().argsort().double() for values in (first, second)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def probabilities(model, inputs: torch.Tensor, last: bool) -> torch.Tensor:
    with torch.no_grad():
        outputs = split_output(model(inputs))[0]
    return (outputs[:, -1] if last else outputs).float().softmax(dim=-1)


def deletion_auc(model, modality, context, inputs, targets, order, real, last: bool, upto: float = 1.0) -> float:
    """Mean probability of `targets` over 11 steps deleting 0 … `upto` (a fraction) of each input's real units in
    `order` (N, U) (flat unit indices, first deleted first)."""
    flat_real = real.flatten(1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    curve = []
    for fraction in torch.linspace(0, upto, 11):
        mask = flat_real & (rank < (fraction * flat_real.sum(dim=1, keepdim=True)).round())
        deleted = modality.delete(inputs, mask.view_as(real), context)
        curve.append(probabilities(model, deleted, last).gather(1, targets[:, None]).mean())
    return float(torch.stack(curve).mean())


def explain(run_dir: str, out: Path, count: int, method: str | None) -> dict:
    run = load_run(run_dir)
    config, spec, model = run.config, run.spec, run.model
    preprocessing = run.data_record["preprocessing"]
    data = run_data(config)
    causal = task_of(spec).causal
    modality = LanguageModality() if causal else AudioModality() if spec.kind == "audio" else TextModality()
    split = "test" if "test" in data.splits else "val"
    stored = data.splits[split].inputs[:count]
    labels = data.splits[split].targets[:count]
    texts = None
    if spec.kind == "text" and not causal:
        read, _, _, index = labelled_splits(config.data, config.seed)
        texts = [read.texts[i] for i in index[split][:count].tolist()]
    start = time.perf_counter()
    inputs = data.transform(stored)
    context = ExplainContext(model, spec, stored, inputs, pad_id=spec.extra.get("pad_id"),
                             preprocessing=preprocessing, texts=texts)  # fmt: skip
    method = method or modality.methods[0]
    scores = probabilities(model, inputs, causal)
    targets = scores.argmax(dim=1)
    attribution = modality.attribute(model, inputs, targets, method, context)
    explained_seconds = time.perf_counter() - start
    torch.manual_seed(0)
    randomized = build_model(config.model, spec).eval()
    fresh = modality.attribute(randomized, inputs, targets, method, context)
    if spec.kind == "audio":
        real = torch.ones_like(attribution, dtype=torch.bool)
    elif causal:
        real = torch.ones_like(inputs, dtype=torch.bool)
    else:
        real = inputs != context.pad_id
    correlation = rank_correlation(attribution[real], fresh[real])
    flat = attribution.flatten(1).masked_fill(~real.flatten(1), -torch.inf)
    upto = 0.2 if spec.kind == "audio" else 1.0  # 6,464 cells: a tenth of them at random already silences a digit
    by_score = flat.argsort(dim=1, descending=True)
    guided = deletion_auc(model, modality, context, inputs, targets, by_score, real, causal, upto)
    random_order = torch.rand(flat.shape, generator=torch.Generator().manual_seed(0)).argsort(dim=1)
    at_random = deletion_auc(model, modality, context, inputs, targets, random_order, real, causal, upto)
    items = []
    for index in range(len(inputs)):
        true = labels[index, -1] if causal else labels[index]
        items.append(Explained(f"{split}:{index}", int(targets[index]), int(targets[index]),
                               float(scores[index, targets[index]]), attribution[index], int(true)))  # fmt: skip
    folder = out / Path(run_dir).name
    paths = modality.write(folder, items, method, context)
    shown = modality.show(items[:3], context)
    seconds = time.perf_counter() - start
    return {
        "run": Path(run_dir).name,
        "modality": modality.kind,
        "method": method,
        "inputs": len(inputs),
        "units": list(attribution.shape[1:]),
        "seconds_attribution": round(explained_seconds, 2),
        "seconds_total": round(seconds, 2),
        "rank_correlation_randomized": round(correlation, 3),
        "deletion_auc": round(guided, 3),
        "deletion_auc_random": round(at_random, 3),
        "deletion_upto": upto,
        "files": len(paths),
        "shown": shown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", type=Path, default=Path("runs/explain_sequences"))
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--method", default=None)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    for run_dir in arguments.runs:
        result = explain(run_dir, arguments.out, arguments.count, arguments.method)
        shown = result.pop("shown")
        print(json.dumps(result))
        print(shown)


if __name__ == "__main__":
    main()
