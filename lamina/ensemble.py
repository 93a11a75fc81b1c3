"""Ensembles of trained runs: the mean of several runs' predictions, evaluated like one run.

Averaging the class probabilities of networks trained from different random starts (deep ensembles,
Lakshminarayanan et al., 2017) is the most reliable way to buy accuracy and calibration with compute alone:
each member errs differently, and the mean errs less. Regression members' predictions are averaged likewise.

    lamina evaluate runs/A runs/B runs/C            # one table: each member and the ensemble

Every member must have been trained on the same data: the same classes and the same held-out images. Runs of
different seeds split a data set differently unless its split is official (MedMNIST, MNIST's test set) or
`data.seed` fixes it; that is checked sample by sample, so an ensemble is never scored on data one of its
members trained on. For two classes, the decision threshold is chosen on the ensemble's validation
predictions with the rule training runs use (max Youden's J), then applied unchanged to the split evaluated; each
member's column decides at that member's own stored threshold, as `lamina evaluate RUN` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lamina.core.errors import RunError
from lamina.data.spec import DataSpec
from lamina.run import SPLITS, Run, load_run, run_data
from lamina.tasks import task_of, tasks
from lamina.training.evaluate import model_outputs
from lamina.training.metrics import Predictions, compute_metrics

__all__ = ["evaluate_ensemble"]


def evaluate_ensemble(paths: list[str | Path], split: str = "test") -> dict[str, Any]:
    """Metrics of each run and of their ensemble (mean probabilities, or mean predictions) on `split`.

    Returns {"split", "members": [run folders], "metrics": {"ensemble": {...}, "<run folder>": {...}},
    "threshold": {...} (two classes with a val split)}.

    Example:
        >>> import tempfile, lamina
        >>> folder = tempfile.mkdtemp()
        >>> runs = [lamina.train({"data": {"name": "digits", "seed": 0}, "model": "mlp", "seed": seed,
        ...                       "train": {"epochs": 2}}, runs_dir=folder, progress="quiet") for seed in (1, 2)]
        >>> result = evaluate_ensemble([run.dir for run in runs])
        >>> result["metrics"]["ensemble"]["accuracy"] > 0.9
        True
    """
    if len(paths) < 2:
        raise RunError(f"an ensemble needs at least two runs; got {len(paths)}", "name two or more run folders")
    if split not in SPLITS:
        raise RunError(f"unknown split {split!r}", f"use {', '.join(SPLITS)}")
    runs = [load_run(path) for path in paths]
    for run in runs:
        run.require_completed("an ensemble")
    first = runs[0]
    spec = first.spec
    task = task_of(spec)
    if not task.ensembles:
        able = [other.name for other in tasks.values() if other.ensembles]
        raise RunError(
            f"{first.dir} is a {spec.task} run; ensembles average classifiers and regressors only",
            f"ensemble runs whose task is one of: {', '.join(able)}",
        )
    for run in runs[1:]:
        mine = (run.spec.task, run.spec.output_size, run.spec.class_names, run.spec.target_names)
        if mine != (spec.task, spec.output_size, spec.class_names, spec.target_names):
            raise RunError(
                f"{run.dir} predicts {_describe(run.spec)}, but {first.dir} predicts {_describe(spec)}",
                "ensemble runs trained on the same data set",
            )
    splits = [split]
    if task.chooses_threshold(spec) and split != "val":
        splits.append("val")  # where the threshold is chosen
    scores = _member_scores(runs, splits)  # {split: (targets, [scores per run])}
    names = first.config.train.metrics or task.defaults(spec)[1]
    result: dict[str, Any] = {"split": split, "members": [str(run.dir) for run in runs], "metrics": {}}
    combined = {
        name: Predictions(spec.task, torch.stack(values).mean(dim=0), targets, spec.positive_index)
        for name, (targets, values) in scores.items()
    }
    added, facts = task.report(combined, spec)  # the threshold is chosen on the ensemble's val predictions
    result["metrics"]["ensemble"] = {**compute_metrics(combined[split], names), **added[split]}
    for position, run in enumerate(runs):  # each member decides at its own stored threshold
        own = {
            name: Predictions(spec.task, values[position], targets, spec.positive_index)
            for name, (targets, values) in scores.items()
        }
        threshold = run.threshold if "threshold" in run.summary else None  # none stored: chosen on its val here
        report, _ = task.report(own, spec, threshold=threshold)
        result["metrics"][str(run.dir)] = {**compute_metrics(own[split], names), **report[split]}
    return {**result, **facts}


def _describe(spec: DataSpec) -> str:
    task = task_of(spec)
    if task.classes:
        return f"{task.describe(spec)} ({', '.join(spec.class_names or [])})"
    return f"{spec.task} of {spec.output_size} value(s)"


def _member_scores(runs: list[Run], splits: list[str]) -> dict[str, tuple[torch.Tensor, list[torch.Tensor]]]:
    """Each run's probabilities (or predictions) on each split, after checking that every run holds out the
    same samples. Data is read once per distinct (data options, split seed)."""
    built: dict[str, Any] = {}
    found: dict[str, tuple[torch.Tensor, list[torch.Tensor]]] = {}
    reference: dict[str, tuple[Any, Any]] = {}
    for run in runs:
        config = run.config
        data_seed = getattr(config.data, "seed", None)  # build_data's rule: data.seed, else the run's seed
        key = json.dumps(
            [config.data.model_dump(mode="json"), config.seed if data_seed is None else data_seed], sort_keys=True
        )  # runs of several seeds on one data.seed read the data once
        if key not in built:
            built[key] = run_data(config)
        data = built[key]
        for name in splits:
            if name not in data.splits:
                if name == "val" and name != splits[0]:
                    continue  # no val split: no threshold
                raise RunError(f"the data of {run.dir} has no {name} split", f"use one of: {', '.join(data.splits)}")
            part = data.splits[name]
            if name not in reference:
                reference[name] = (run.dir, part)
            else:
                other_dir, other = reference[name]
                same = (
                    len(part) == len(other)
                    and torch.equal(part.targets, other.targets)
                    and torch.equal(part.inputs, other.inputs)
                )
                if not same:
                    raise RunError(
                        f"{run.dir} and {other_dir} hold out different {name} samples, so a member "
                        f"may have trained on what the ensemble is scored on",
                        "train the members with the same data options and data.seed (a seed for the "
                        "split only; the runs' seeds can then differ)",
                    )
            outputs, _, _ = model_outputs(run.model, part, data.transform, config.train.eval_batch_size)
            values = run.objective().scores(outputs).cpu()
            found.setdefault(name, (part.targets.cpu(), []))[1].append(values)
    return found
