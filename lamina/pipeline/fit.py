"""The second step of a run: train the prepared model, recording into its run folder.

The callbacks are declared in one list, in the order they observe each event; the step function (plain
supervised, or a semi-supervised one) is given to the loop when it is built.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from lamina.artifacts.checkpoint import load_weights
from lamina.artifacts.folder import RunFolder, disk_error
from lamina.artifacts.recording import (
    Checkpoints,
    GradientNorms,
    LayerStatistics,
    MetricsLog,
    restore_loop,
    save_resumable,
)
from lamina.core.errors import RunInterrupted, TrainingDiverged
from lamina.pipeline.costs import accounting_for, cost_summary
from lamina.pipeline.finish import record_doctor
from lamina.pipeline.prepare import Session
from lamina.run import Run
from lamina.training.averaging import WeightAverage
from lamina.training.balance import group_balance
from lamina.training.callbacks import Callback, EarlyStopping
from lamina.training.loop import Interrupted, Loop
from lamina.training.optimizers import build_optimizer
from lamina.training.progress import Progress
from lamina.training.semi_supervised import semi_supervised_step
from lamina.training.transfer import Freezing, with_learning_rate_factors

__all__ = ["fit", "callbacks_for", "stopped", "BudgetReached"]


class BudgetReached(Exception):
    """Training reached a limit of runtime.budget and stopped with a checkpoint (status "budget"); `train` and
    `resume` return the run."""


def callbacks_for(session: Session, folder: RunFolder, log: MetricsLog, progress: str, extra: list[Callback]):
    """The run's callbacks, in the order they observe each event. The weight average comes first: a checkpoint
    taken at a step must see the average updated by that step. The progress display comes last."""
    settings = session.config.train
    average, stopping = settings.weight_average, settings.early_stopping
    candidates = [
        WeightAverage(average.decay, average.every_steps, average.lookahead) if average is not None else None,
        accounting_for(session),  # before the checkpoints, so each holds the FLOPs, time and energy of its step
        log,
        Checkpoints(folder, log, settings.checkpoint_every_steps),
        GradientNorms(log, folder.plots / "gradient_norms.png") if settings.log_gradient_norms else None,
        LayerStatistics(log) if settings.log_layer_statistics else None,
        EarlyStopping(session.monitor, stopping.patience, stopping.min_delta) if stopping is not None else None,
        Freezing(settings.freeze, settings.unfreeze) if settings.freeze else None,
        *extra,
        Progress(progress, session.monitor, warnings=session.data.warnings),
    ]
    return [callback for callback in candidates if callback is not None]


def fit(session: Session, folder: RunFolder, checkpoint: dict | None, progress: str, extra: list[Callback]) -> Loop:
    """Train from the start or from `checkpoint`; a Ctrl-C saves a checkpoint and raises RunInterrupted."""
    config, settings, model = session.config, session.config.train, session.model
    log = MetricsLog(folder)
    callbacks = callbacks_for(session, folder, log, progress, extra)
    forward_model = torch.compile(model) if config.runtime.compile else None
    optimizer = with_learning_rate_factors(
        build_optimizer(settings.optimizer, model), model, settings.learning_rate_factors
    )
    step_function = semi_supervised_step(config.model, config.data, session.data)
    loop = Loop(
        model,
        session.data,
        session.objective,
        optimizer,
        settings,
        metric_names=session.metric_names,
        monitor=session.monitor,
        seed=config.seed,
        callbacks=callbacks,
        step_function=step_function,
        forward_model=forward_model,
        balance=group_balance(settings.balance_groups, settings.balance_method, session.data, settings.batch_size),
    )
    if checkpoint is not None:
        load_weights(model, checkpoint["path"] / "model.safetensors")
        restore_loop(loop, checkpoint)
        _truncate(folder.metrics, checkpoint["metrics_bytes"])
    else:
        _truncate(folder.metrics, 0)
    try:
        with _interrupts(loop):
            loop.run()
        return loop
    except Interrupted:
        _close_probes(callbacks)
        costs = cost_summary(session, loop)  # the last readings, before the checkpoint keeps them
        save_resumable(folder, loop, log)
        log.close()
        reached = costs.get("budget", {}).get("reached")
        folder.update_summary(
            status="budget" if reached else "interrupted",
            epochs=loop.state.epoch,
            steps=loop.state.step,
            wall_seconds=round(loop.state.wall_seconds, 3),
            **costs,
        )
        if reached:
            raise BudgetReached(reached) from None
        raise RunInterrupted(folder.path) from None
    except BaseException as error:
        for callback in callbacks:
            if isinstance(callback, MetricsLog | Progress | LayerStatistics):
                callback.close()
        failure = stopped(folder, error)
        if failure is error:
            raise
        raise failure from None


def stopped(folder: RunFolder, error: BaseException) -> BaseException:
    """Record why a run stopped in its summary (as far as the disk allows) and return the error to raise: a full
    or read-only disk becomes a RunError naming the file."""
    if isinstance(error, KeyboardInterrupt):
        status = "interrupted"
    else:
        status = "diverged" if isinstance(error, TrainingDiverged) else "failed"
    if isinstance(error, OSError):
        error = disk_error(error) or error
    if isinstance(error, TrainingDiverged) and error.hint:
        kept = "checkpoints/last holds the last finite state" if folder.last.exists() else "no checkpoint was saved"
        error.hint = f"{error.hint}; {kept}"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    with contextlib.suppress(OSError):  # the disk may be full: the lock shows the run is no longer going
        folder.update_summary(status=status, error=text)
    if isinstance(error, TrainingDiverged):
        error.run_dir = folder.path  # so `lamina train` can print the doctor's findings
        with contextlib.suppress(Exception):  # the divergence is the error to report, whatever the doctor meets
            record_doctor(folder, Run(folder.path))
    return error


def _close_probes(callbacks: list[Callback]) -> None:
    for callback in callbacks:
        if isinstance(callback, LayerStatistics):
            callback.close()


@contextmanager
def _interrupts(loop: Loop) -> Iterator[None]:
    """Ctrl-C, or SIGTERM (what schedulers and `docker stop` send): stop after the current step with a
    checkpoint. A second one: stop at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if loop.interrupt_requested:
            raise KeyboardInterrupt
        loop.interrupt_requested = True

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, earlier in previous.items():
            signal.signal(number, earlier)


def _truncate(path: Path, size: int) -> None:
    """Drop metric rows written after the checkpoint we resume from, so none appear twice."""
    if path.exists():
        with open(path, "r+b") as handle:
            handle.truncate(size)
    else:
        path.touch()
