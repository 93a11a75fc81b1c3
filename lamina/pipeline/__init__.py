"""config → data → model → train → run folder, in three named steps: `prepare` (check and build everything,
lamina/pipeline/prepare.py), `fit` (train, recording into the run folder, lamina/pipeline/fit.py) and `finish`
(evaluate and write the results, lamina/pipeline/finish.py). `train` and `resume` run them in order.

Everything a user can get wrong is checked in `prepare`, before the run folder is created, so a bad run leaves
nothing behind.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from lamina.artifacts.checkpoint import checkpoint_path, read_checkpoint
from lamina.artifacts.folder import RunFolder, atomic_write, disk_error, write_json
from lamina.config.loading import load_config
from lamina.config.schema import Config
from lamina.core.errors import RunError
from lamina.data.checks import data_facts
from lamina.data.given import Given, given_data
from lamina.data.paths import absolute_paths
from lamina.pipeline.costs import resumed_config
from lamina.pipeline.finish import finish
from lamina.pipeline.fit import BudgetReached, fit, stopped
from lamina.pipeline.prepare import prepare
from lamina.run import Run
from lamina.training.callbacks import Callback

__all__ = ["train", "resume"]


def train(
    config: Config | dict | str | Path,
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    progress: str = "auto",
    callbacks: list[Callback] | None = None,
    data: Any = None,
) -> Run:
    """Train a model from a config (YAML path, dict or Config) and return the finished Run.

    Args:
        config: the config; `overrides` set dotted keys in it ({"train.epochs": 5} or ["train.epochs=5"]).
        runs_dir: where the run folder is made. name: the run's name (part of the folder's name).
        progress: "auto", "rich", "plain" or "quiet". callbacks: more observers of the loop.
        data: data from Python instead of files — (x, y) arrays or tensors, {"train": (x, y), "test": (x2, y2)},
            a pandas DataFrame (with data.target), or (features, target); the config's data section may then
            leave out its name (arrays, or dataframe). The run keeps a fingerprint of it, not a copy.

    Raises:
        ConfigError, DataError, ModelError: before anything is written. RunInterrupted: after Ctrl-C, with a
        checkpoint saved. (A run that reaches runtime.budget is returned, with status "budget" and a checkpoint.)

    Example:
        >>> import tempfile
        >>> run = train({"data": "digits", "model": "mlp", "train": {"epochs": 2}}, runs_dir=tempfile.mkdtemp(),
        ...             progress="quiet")
        >>> run.summary["status"], run.metrics["test"]["accuracy"] > 0.8
        ('completed', True)
    """
    given = given_data(data) if data is not None else None
    config = load_config(config, overrides, data_defaults=given.defaults if given else None)
    if name:
        config = config.model_copy(update={"name": name})
    session = prepare(config, given=given)
    # file paths absolute, so the run can be resumed or evaluated from anywhere
    config = session.config = session.config.model_copy(update={"data": absolute_paths(session.config.data)})
    folder = RunFolder.create(runs_dir, config.name or f"{config.model.name}-{config.data.name}")
    with ExitStack() as held:
        try:
            held.enter_context(folder.locked())
            atomic_write(folder.config, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
            record = {
                "spec": session.data.spec.to_dict(),
                "preprocessing": session.data.preprocessing,
                "notes": session.data.notes,
                "warnings": session.data.warnings,
                "facts": data_facts(session.data),  # class counts, copies of training samples (the doctor reads them)
                **({"given": {"fingerprint": given.fingerprint, "described": given.describe()}} if given else {}),
            }
            write_json(folder.data, record)
            folder.update_summary(
                status="running",
                model=config.model.name,
                data=config.data.name,
                parameters=sum(p.numel() for p in session.model.parameters()),
                warnings=session.data.warnings,
                **({"init_from": session.transfer} if session.transfer else {}),
            )
        except OSError as error:  # a run folder that could not be written in full is no run: nothing is kept
            held.close()
            shutil.rmtree(folder.path, ignore_errors=True)
            raise (disk_error(error) or error) from None
        try:
            loop = fit(session, folder, None, progress, callbacks or [])
        except BudgetReached:  # stopped cleanly, with a checkpoint: status "budget"
            return Run(folder.path)
        return _finish(folder, session, loop, given)


def resume(
    run_dir: str | Path,
    *,
    progress: str = "auto",
    callbacks: list[Callback] | None = None,
    data: Any = None,
    overrides: dict[str, Any] | list[str] | None = None,
) -> Run:
    """Continue an interrupted run, or one stopped by its budget, from its last checkpoint; ends with the weights
    an uninterrupted run has. A run trained on data passed from Python needs the same `data` again (checked against
    the fingerprint it keeps). `overrides` may raise or remove the budget, and nothing else:
    {"runtime.budget.minutes": 10} or ["runtime.budget=null"] (recorded in the run's config.yaml). A run stopped by
    its budget again is returned with status "budget".

    Example:
        >>> import tempfile
        >>> run = train({"data": "digits", "model": "mlp", "train": {"epochs": 1}}, runs_dir=tempfile.mkdtemp(),
        ...             progress="quiet")
        >>> resume(run.dir)
        Traceback (most recent call last):
        lamina.core.errors.RunError: run ... already completed
          hint: start a new run with 'lamina train CONFIG'
    """
    folder = RunFolder.open(run_dir)
    with folder.locked():
        status = folder.summary().get("status")
        if status == "completed":
            raise RunError(f"run {folder.path} already completed", "start a new run with 'lamina train CONFIG'")
        if status == "diverged":
            raise RunError(
                f"run {folder.path} diverged; resuming would repeat the same steps and diverge again",
                "fix the config and train again (model.init_from can start from its checkpoints/last)",
            )
        given = Run(folder.path).given_data(data, "resuming it")
        checkpoint = read_checkpoint(folder.last) if checkpoint_path(folder.last) else None
        config = resumed_config(folder, overrides, checkpoint["train_state"] if checkpoint else None)
        # a checkpoint holds the weights, so the pretrained source need not exist any more
        session = prepare(config, pretrained=checkpoint is None, given=given)
        folder.update_summary(status="running")
        try:
            loop = fit(session, folder, checkpoint, progress, callbacks or [])
        except BudgetReached:
            return Run(folder.path)
        return _finish(folder, session, loop, given)


def _finish(folder: RunFolder, session, loop, given: Given | None) -> Run:
    """`finish`, with a failure to write its results recorded in the summary (a full disk: a RunError)."""
    try:
        run = finish(folder, session, loop)
        run.given = given
        return run
    except BaseException as error:
        failure = stopped(folder, error)
        if failure is error:
            raise
        raise failure from None
