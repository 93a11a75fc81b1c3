"""The last step of a run: restore the best weights if asked, evaluate val and test with the task's report (a
two-class run's threshold is chosen on val here, once), and write the final weights, plots and summary."""

from __future__ import annotations

import platform
from typing import Any

import torch

from lamina.artifacts.checkpoint import checkpoint_path, load_weights, save_weights
from lamina.artifacts.folder import RunFolder
from lamina.artifacts.run_plots import write_run_plots
from lamina.core.errors import LaminaError
from lamina.core.version import __version__
from lamina.insight.calibration import calibrate_at_end, calibrated_objective
from lamina.insight.explain import modality_for
from lamina.insight.gather import chosen_inputs, explain_data, split_texts
from lamina.insight.groups import group_sources, group_summary
from lamina.pipeline.costs import cost_summary
from lamina.pipeline.prepare import Session
from lamina.run import Run
from lamina.tasks import task_of
from lamina.training.divergence import check_weights
from lamina.training.evaluate import evaluate_split
from lamina.training.loop import Loop

__all__ = ["finish", "record_doctor"]


def finish(folder: RunFolder, session: Session, loop: Loop) -> Run:
    """After the last epoch: the final weights, metrics and report of val and test, plots, summary.json."""
    config, model, spec = session.config, session.model, session.data.spec
    stopping = config.train.early_stopping
    restored = False
    best = checkpoint_path(folder.best)
    if stopping is not None and stopping.restore_best and best is not None and loop.state.best:
        load_weights(model, best / "model.safetensors")
        restored = True
    elif loop.evaluation_model is not None:  # averaged weights are the model
        getattr(model, "_orig_mod", model).load_state_dict(loop.evaluation_model.state_dict())
    final: dict[str, Any] = {}
    predictions = {}
    for split in ("val", "test"):
        if split not in session.data.splits:  # e.g. a language model with nanoGPT's train/val split only
            continue
        final[split], predictions[split] = evaluate_split(
            model,
            session.data.splits[split],
            session.data.transform,
            session.objective,
            spec.task,
            session.metric_names,
            config.train.eval_batch_size,
            spec.positive_index,
        )
    calibration, predictions = calibrate_at_end(  # before the report: a threshold is chosen on calibrated scores
        final, predictions, spec, config.train.calibrate, session.metric_names, folder.path
    )
    session.objective = calibrated_objective(session.objective, calibration)  # explanations read calibrated scores
    added, facts = task_of(spec).report(predictions, spec)
    for split, values in added.items():
        final[split].update(values)
    check_weights(model, "in the final weights")
    temporary = folder.weights.with_name(".model.safetensors.partial")
    save_weights(model, temporary)
    temporary.replace(folder.weights)
    history = loop.state.history
    write_run_plots(
        folder.plots, history, folder.history("step"), session.monitor, final, predictions, facts, spec.class_names
    )
    speeds = [row["samples_per_second"] for row in history if row.get("samples_per_second")]
    token_speeds = [row["tokens_per_second"] for row in history if row.get("tokens_per_second")]
    summary = folder.update_summary(
        status="completed",
        metrics=final,
        epochs=loop.state.epoch,
        steps=loop.state.step,
        wall_seconds=round(loop.state.wall_seconds, 3),
        best=loop.state.best,
        restored_best=restored,
        **facts,
        stopped_early=loop.stop_reason or None,
        samples_per_second=round(sum(speeds) / len(speeds), 1) if speeds else None,
        **({"tokens_per_second": round(sum(token_speeds) / len(token_speeds), 1)} if token_speeds else {}),
        device=str(session.device),
        threads=torch.get_num_threads(),
        forward_flops_per_sample=session.sample_flops,
        **cost_summary(session, loop),  # compute, energy, budget (lamina/pipeline/costs.py)
        **({"calibration": calibration} if calibration else {}),
        versions={"lamina": __version__, "torch": torch.__version__, "python": platform.python_version()},
    )
    assert summary["status"] == "completed"
    if task_of(spec).classes and session.data.groups:  # the group audit (docs/insight.md, "Groups and fairness")
        chosen = config.train.group_thresholds, group_sources(session.data.preprocessing), config.seed
        threshold = facts.get("threshold")
        folder.update_summary(
            **group_summary(folder.plots, predictions, session.data.groups, spec.class_names, threshold, *chosen)
        )
    if config.explain.enabled:
        folder.update_summary(explain=explain_at_end(folder, session, model, facts.get("threshold")))
    run = Run(folder.path, model=model.eval())
    record_doctor(folder, run)
    return run


def explain_at_end(
    folder: RunFolder, session: Session, model: torch.nn.Module, threshold: dict | None
) -> dict[str, Any]:
    """The `explain:` step: explain `count` inputs of the split into RUN/explanations/<method>-<split>/ and return
    the faithfulness figures for summary.json (an error that explaining meets is recorded there, and the run stays
    completed: its weights and metrics are written)."""
    options, data = session.config.explain, session.data
    stored, names, targets, facts = chosen_inputs(data.splits[options.split], options.split, options.count)
    _, modality = modality_for(data.spec)
    method = options.method or modality.methods[0]
    try:
        result = explain_data(
            model.eval(),
            data,
            session.objective.scores,
            stored,
            names,
            folder.path / "explanations" / f"{method}-{options.split}",
            method,
            options.target,
            targets,
            None,
            facts,
            session.config.train.monitor,
            None,
            threshold,
            split_texts(data, names),
        )
    except LaminaError as error:
        return {"error": str(error).splitlines()[0]}
    record = result.record
    return {key: record[key] for key in ("method", "split", "sanity_check", "deletion", "seconds")} | {
        "folder": str(result.files[-1].parent.relative_to(folder.path))
    }


def record_doctor(folder: RunFolder, run: Run) -> None:
    """The training doctor's findings, kept in summary.json under "doctor" (a finished or a diverged run)."""
    folder.update_summary(doctor=[finding.to_dict() for finding in run.doctor()])
