"""config → data → model → train → run folder. The whole path in two functions, `train` and `resume`.

Everything a user can get wrong is checked in `prepare` — the config, the data, the model against the data,
the loss and metrics against the task — before the run folder is created, so a bad run leaves nothing behind.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from lamina.artifacts.checkpoint import checkpoint_path, load_weights, read_checkpoint, save_checkpoint
from lamina.artifacts.folder import RunFolder, write_json
from lamina.artifacts.recording import Checkpoints, MetricsLog, loop_state, restore_loop
from lamina.config import load_config
from lamina.data import DataBundle, build_data
from lamina.errors import ConfigError, ModelError, Problem, RunError, RunInterrupted
from lamina.models import build_model
from lamina.train.averaging import WeightAverage
from lamina.train.callbacks import Callback, EarlyStopping
from lamina.train.loop import Interrupted, Loop
from lamina.train.losses import Objective, build_objective, losses
from lamina.train.metrics import metrics
from lamina.train.optimizers import build_optimizer
from lamina.train.progress import Progress
from lamina.train.pseudo_labels import online_pseudo_labels
from lamina.train.reconstruction import unlabelled_reconstruction
from lamina.train.runtime import auto_threads, keep_freed_memory, select_device, set_deterministic, set_threads
from lamina.train.tasks import defaults_for
from lamina.train.transfer import Freezing, with_learning_rate_factors

__all__ = ["train", "resume", "prepare", "Session"]


@dataclass
class Session:
    """A run, fully checked and built, ready to train."""

    config: Any
    device: torch.device
    data: DataBundle
    model: nn.Module
    objective: Objective
    metric_names: list[str]
    monitor: str
    sample_flops: int  # forward FLOPs per sample
    transfer: dict | None = None  # what model.init_from loaded (lamina/train/transfer.py)


def _reconstruction_problems(config: Any, data: Any) -> list[Problem]:
    """A semi-supervised autoencoder (model.reconstruction_weight) needs unlabelled images and its own step."""
    weight = getattr(config.model, "reconstruction_weight", 0.0)
    if not weight:
        return []
    if data.spec.task != "classification":
        return [Problem("model.reconstruction_weight", f"is {weight:g}, but it trains a classifier beside its "
                        f"decoder and the task is {data.spec.task!r}", "remove it: a reconstruction task "
                        "already trains the whole autoencoder")]  # fmt: skip
    if "unlabelled" not in data.splits:
        return [Problem("model.reconstruction_weight", f"is {weight:g}, but there are no unlabelled images to "
                        "reconstruct", "set data.labelled_fraction below 1, or the weight to 0")]  # fmt: skip
    online = getattr(config.data, "pseudo_labels", None)
    if online is not None and online.teacher is None:
        return [Problem("model.reconstruction_weight", "cannot be combined with online pseudo-labels "
                        "(data.pseudo_labels without a teacher)", "choose one of the two")]  # fmt: skip
    return []


def prepare(config: Any, pretrained: bool = True) -> Session:
    """Check and build everything the config names; raises a lamina error before anything is written.
    `pretrained=False` skips loading model.init_from (a resumed run loads its own checkpoint instead)."""
    set_threads(config.runtime.threads or 1)
    set_deterministic(config.runtime.deterministic)
    device = select_device(config.runtime.device)
    if config.runtime.keep_freed_memory and device.type == "cpu":
        keep_freed_memory()  # on a GPU, activations live in PyTorch's own caching allocator already
    data = build_data(config.data, config.seed)
    spec = data.spec
    default_loss, default_metrics, default_monitor = defaults_for(spec)
    if config.train.loss is None:
        config.train.loss = losses.get(default_loss).config()
    objective = build_objective(config.train.loss, spec, data.splits["train"].targets)
    data.spec = spec = replace(spec, output_size=objective.output_size)
    metric_names = config.train.metrics or default_metrics
    problems = [
        Problem(
            "train.metrics",
            f"{name!r} is a {metrics.get(name).function.task} metric, the data is {spec.task}",
            f"use {', '.join(default_metrics)}",
        )  # fmt: skip
        for name in metric_names
        if metrics.get(name).function.task != spec.task
    ]
    monitor = config.train.monitor or default_monitor
    split, metric = monitor.split(".", 1)
    if split == "val":
        available = ["loss", *metric_names]
    else:  # the train split only has running loss (and accuracy) during each epoch
        available = ["loss"] + (["accuracy"] if spec.task == "classification" else [])
    if metric not in available:
        problems.append(Problem("train.monitor", f"{monitor!r} is not computed by this run",
                                f"choose one of: {', '.join(f'{split}.{m}' for m in available)}"))  # fmt: skip
    problems += _reconstruction_problems(config, data)
    milestones = getattr(config.train.schedule, "milestones", None)
    if milestones and config.train.max_steps is None and milestones[-1] >= config.train.epochs:
        problems.append(Problem("train.schedule.milestones", f"epoch {milestones[-1]} is not before the end of "
                                f"training (train.epochs {config.train.epochs}), so it never decays the rate",
                                f"use epochs below {config.train.epochs}, or more epochs"))  # fmt: skip
    if problems:
        raise ConfigError(problems)
    config.train.metrics, config.train.monitor = metric_names, monitor  # saved resolved in config.yaml
    _apply_family_defaults(config)
    torch.manual_seed(config.seed)  # the same seed gives the same initial weights
    model = build_model(config.model, spec)
    _check_norm_groups(config, model)
    transfer = _transfer(config, model, pretrained)
    sample_flops = _dry_run(model, data, config)
    set_threads(config.runtime.threads or auto_threads(sample_flops * config.train.batch_size))
    return Session(config, device, data.to(device), model.to(device), objective, metric_names, monitor,
                   sample_flops, transfer)  # fmt: skip


def _transfer(config: Any, model: nn.Module, pretrained: bool) -> dict | None:
    """Check train.freeze/unfreeze/learning_rate_factors against the model; load model.init_from."""
    from lamina.train.transfer import check_prefixes, load_pretrained

    settings = config.train
    problems = check_prefixes(model, settings.freeze, "train.freeze")
    problems += check_prefixes(model, list(settings.unfreeze), "train.unfreeze")
    problems += check_prefixes(model, list(settings.learning_rate_factors), "train.learning_rate_factors")
    if problems:
        raise ConfigError(problems)
    source = getattr(config.model, "init_from", None)
    return load_pretrained(model, source) if source and pretrained else None


def _check_norm_groups(config: Any, model: nn.Module) -> None:
    """Ghost batch norm splits each training batch into groups; a batch size it does not divide would make every
    batch fall back to plain batch statistics without a word."""
    from lamina.models.normalization import GhostBatchNorm

    sizes = {module.group_size for module in model.modules() if isinstance(module, GhostBatchNorm)}
    batch = config.train.batch_size
    for size in sorted(size for size in sizes if batch % size):
        divisor = max(d for d in range(1, size + 1) if batch % d == 0)
        fix = f"use a divisor of {batch} such as {divisor}, or " if divisor > 1 else ""
        raise ConfigError([Problem("model.norm_group_size",
                                   f"is {size}, which does not divide train.batch_size {batch}, so no batch "
                                   "would be split into groups",
                                   f"{fix}make train.batch_size a multiple of {size}")])  # fmt: skip


def _apply_family_defaults(config: Any) -> None:
    """Training defaults a model family declares (recurrent families clip gradients to norm 1), for options
    the config leaves unset; `gradient_clip: null` written out keeps clipping off."""
    from lamina.models import models

    family = models.get(config.model.name).function
    for option, value in getattr(family, "train_defaults", {}).items():
        if option not in config.train.model_fields_set:
            setattr(config.train, option, value)


def _dry_run(model: nn.Module, data: DataBundle, config: Any) -> int:
    """One small batch through the model, so a mismatch is a clear error and not a mid-training traceback.
    Returns the forward FLOPs per sample."""
    inputs = data.splits["train"].inputs[:2]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            from lamina.models.output import split_output

            prediction, _, _ = split_output(model(data.transform(inputs)))
    except (RuntimeError, ValueError, IndexError) as error:
        raise ModelError(
            f"model {config.model.name!r} cannot process {config.data.name!r} inputs of shape "
            f"{tuple(inputs.shape[1:])}: {str(error).splitlines()[0]}",
            "check the model's options against the data (see 'lamina datasets summary CONFIG')",
        ) from None
    finally:
        model.train(was_training)
    expected = data.spec.output_size
    if data.spec.task in ("language_modeling", "transcription") and prediction.ndim != 3:
        raise ModelError(f"model {config.model.name!r} gives {tuple(prediction.shape[1:])} outputs per sample; "
                         f"{data.spec.task} needs (steps, {expected})", "use a sequence family (rnn, transformer)")  # fmt: skip
    if data.spec.task in ("classification", "regression") and prediction.shape[-1] != expected:
        raise ModelError(f"model {config.model.name!r} gives {prediction.shape[-1]} outputs per sample, the loss "
                         f"needs {expected}", "the model must size its head from spec.output_size")  # fmt: skip
    from lamina.models.summary import forward_flops

    return forward_flops(model, data.transform(inputs)) // len(inputs)


def train(
    config: Any,
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    progress: str = "auto",
    callbacks: list[Callback] | None = None,
):
    """Train a model from a config (YAML path, dict or Config) and return the finished Run.

    Example:
        >>> run = train({"data": "digits", "model": "mlp", "train": {"epochs": 2}}, progress="quiet")
        >>> run.metrics["test"]["accuracy"] > 0.8
        True
    """
    config = load_config(config, overrides)
    if name:
        config.name = name
    session = prepare(config)
    if getattr(config.data, "path", None):  # absolute, so the run can be resumed or evaluated from anywhere
        config.data.path = str(Path(config.data.path).expanduser().resolve())
    folder = RunFolder.create(runs_dir, config.name or f"{config.model.name}-{config.data.name}")
    document = config.model_dump(mode="json")
    folder.config.write_text(yaml.safe_dump(document, sort_keys=False))
    write_json(folder.data, {"spec": session.data.spec.to_dict(), "preprocessing": session.data.preprocessing,
                             "notes": session.data.notes})  # fmt: skip
    folder.update_summary(status="running", model=config.model.name, data=config.data.name,
                          parameters=sum(p.numel() for p in session.model.parameters()),
                          **({"init_from": session.transfer} if session.transfer else {}))  # fmt: skip
    return _execute(session, folder, None, progress, callbacks or [])


def resume(run_dir: str | Path, *, progress: str = "auto", callbacks: list[Callback] | None = None):
    """Continue an interrupted run from its last checkpoint; ends with the weights an uninterrupted run has."""
    folder = RunFolder.open(run_dir)
    if folder.summary().get("status") == "completed":
        raise RunError(f"run {folder.path} already completed", "start a new run with 'lamina train CONFIG'")
    checkpoint = read_checkpoint(folder.last) if checkpoint_path(folder.last) else None
    # a checkpoint holds the weights, so the pretrained source need not exist any more
    session = prepare(load_config(folder.config), pretrained=checkpoint is None)
    return _execute(session, folder, checkpoint, progress, callbacks or [])


@contextmanager
def _interrupts(loop: Loop) -> Iterator[None]:
    """First Ctrl-C: stop after the current step with a checkpoint. Second: stop at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if loop.interrupt_requested:
            raise KeyboardInterrupt
        loop.interrupt_requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _execute(session: Session, folder: RunFolder, checkpoint: dict | None, progress: str, extra: list[Callback]):
    from lamina.run import finish_run

    config, settings = session.config, session.config.train
    log = MetricsLog(folder)
    callbacks: list[Callback] = [log, Checkpoints(folder, log, settings.checkpoint_every_steps)]
    if settings.weight_average is not None:  # first: checkpoints taken at a step must see the updated average
        average = settings.weight_average
        callbacks.insert(0, WeightAverage(average.decay, average.every_steps, average.lookahead))
    if settings.log_gradient_norms:
        from lamina.train.gradients import GradientNorms

        callbacks.append(GradientNorms(log, folder.plots / "gradient_norms.png"))
    if settings.early_stopping is not None:
        stopping = settings.early_stopping
        callbacks.append(EarlyStopping(session.monitor, stopping.patience, stopping.min_delta))
    if settings.freeze:
        callbacks.append(Freezing(settings.freeze, settings.unfreeze))
    callbacks += [*extra, Progress(progress, session.monitor)]
    forward_model = torch.compile(session.model) if config.runtime.compile else None
    optimizer = with_learning_rate_factors(build_optimizer(settings.optimizer, session.model), session.model,
                                           settings.learning_rate_factors)  # fmt: skip
    loop = Loop(session.model, session.data, session.objective, optimizer, settings,
                metric_names=session.metric_names, monitor=session.monitor, seed=config.seed,
                callbacks=callbacks, forward_model=forward_model)  # fmt: skip
    # (prepare checked that at most one of the two applies)
    loop.step_function = (
        online_pseudo_labels(loop, config.data) or unlabelled_reconstruction(loop) or loop.step_function
    )
    if checkpoint is not None:
        load_weights(session.model, checkpoint["path"] / "model.safetensors")
        restore_loop(loop, checkpoint)
        _truncate(folder.metrics, checkpoint["metrics_bytes"])
    else:
        _truncate(folder.metrics, 0)
    try:
        with _interrupts(loop):
            loop.run()
    except Interrupted:
        save_checkpoint(folder.last, loop.model, loop_state(loop, log.offset()))
        log.close()
        folder.update_summary(status="interrupted", epochs=loop.state.epoch, steps=loop.state.step)
        raise RunInterrupted(folder.path) from None
    except BaseException as error:
        log.close()
        for callback in callbacks:
            if isinstance(callback, Progress):
                callback.close()
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        folder.update_summary(status=status, error=str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise
    return finish_run(folder, session, loop)


def _truncate(path: Path, size: int) -> None:
    """Drop metric rows written after the checkpoint we resume from, so none appear twice."""
    if path.exists():
        with open(path, "r+b") as handle:
            handle.truncate(size)
    else:
        path.touch()
