"""The first step of a run: check and build everything the config names, before anything is written.

optional packages the config needs → runtime (threads, determinism, device) → data → the config's defaults for
that data → objective → model → every cross-field check at once (lamina/pipeline/checks.py) → pretrained weights
→ one batch through the model → the FLOPs of a training step (counted on a copy of the model)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from lamina.config.schema import Config
from lamina.core.errors import ConfigError, ModelError
from lamina.core.packages import missing_packages
from lamina.data.bundle import DataBundle
from lamina.data.given import Given
from lamina.data.spec import DataSpec
from lamina.models.options import models
from lamina.models.output import split_output
from lamina.models.registry import build_model
from lamina.models.summary import forward_flops
from lamina.pipeline.checks import CHECKS
from lamina.run import run_data
from lamina.tasks import task_of
from lamina.training.accounting import training_flops
from lamina.training.losses import Objective, build_objective
from lamina.training.options import losses
from lamina.training.runtime import auto_threads, keep_freed_memory, select_device, set_deterministic, set_threads
from lamina.training.runtime_options import RuntimeOptions
from lamina.training.semi_supervised import semi_supervised_step
from lamina.training.steps import StepContext
from lamina.training.transfer import load_pretrained

__all__ = ["Session", "prepare", "with_defaults", "setup_runtime"]


@dataclass
class Session:
    """A run, fully checked and built, ready to train."""

    config: Config  # with the defaults the data decides filled in (saved as the run's config.yaml)
    device: torch.device
    data: DataBundle
    model: nn.Module
    objective: Objective
    sample_flops: int  # forward FLOPs per sample
    transfer: dict | None = None  # what model.init_from loaded (lamina/training/transfer.py)
    training_sample_flops: int = 0  # FLOPs of a training step (forward + backward) per sample

    @property
    def metric_names(self) -> list[str]:
        return self.config.train.metrics

    @property
    def monitor(self) -> str:
        return self.config.train.monitor


def prepare(config: Config, pretrained: bool = True, given: Given | None = None) -> Session:
    """Check and build everything the config names; raises a lamina error before anything is written.
    `pretrained=False` skips loading model.init_from (a resumed run loads its own checkpoint instead); `given`:
    data passed from Python (lamina/data/given.py)."""
    missing = missing_packages(config)  # before reading any data: each at the option that needs it
    if missing:
        raise ConfigError(missing)
    device = setup_runtime(config.runtime)
    data = run_data(config, given)
    config = with_defaults(config, data.spec)
    objective = build_objective(config.train.loss, data.spec, data.splits["train"].targets)
    data.spec = replace(data.spec, output_size=objective.output_size)
    torch.manual_seed(config.seed)  # the same seed gives the same initial weights
    model = build_model(config.model, data.spec)
    problems = [problem for check in CHECKS for problem in check(config, data, model)]
    if problems:
        raise ConfigError(problems)
    source = config.model.init_from
    transfer = load_pretrained(model, source) if source and pretrained else None
    sample_flops = dry_run(model, data, config)
    step_function = semi_supervised_step(config.model, config.data, data)
    step_flops = training_flops(
        model, data, step_function, StepContext(objective, data, config.seed), config.train.batch_size
    )
    set_threads(config.runtime.threads or auto_threads(sample_flops * config.train.batch_size))
    return Session(config, device, data.to(device), model.to(device), objective, sample_flops, transfer, step_flops)


def setup_runtime(runtime: RuntimeOptions) -> torch.device:
    """Threads (one until the model's size is known), deterministic kernels if asked, the device, and on CPU the
    allocator setting that keeps freed memory for reuse."""
    set_threads(runtime.threads or 1)
    set_deterministic(runtime.deterministic)
    device = select_device(runtime.device)
    if runtime.keep_freed_memory and device.type == "cpu":
        keep_freed_memory()  # on a GPU, activations live in PyTorch's own caching allocator already
    return device


def with_defaults(config: Config, spec: DataSpec) -> Config:
    """The config with what the data decides filled in where the config leaves it unset: the task's loss, metrics
    and monitor, and the training options the model family sets (recurrent families clip gradients; writing
    `gradient_clip: null` keeps clipping off)."""
    loss, metric_names, monitor = task_of(spec).defaults(spec)
    train = config.train
    updates = {"metrics": train.metrics or metric_names, "monitor": train.monitor or monitor}
    if train.loss is None:
        updates["loss"] = losses.get(loss).options()
    for option, value in models.get(config.model.name).metadata["train_defaults"].items():
        if option not in train.model_fields_set:
            updates[option] = value
    return config.model_copy(update={"train": train.model_copy(update=updates)})


def dry_run(model: nn.Module, data: DataBundle, config: Config) -> int:
    """One small batch through the model, so a mismatch is a clear error and not a mid-training traceback.
    Returns the forward FLOPs per sample."""
    inputs = data.splits["train"].inputs[:2]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            prediction, _, _ = split_output(model(data.transform(inputs)))
    except (RuntimeError, ValueError, IndexError) as error:
        raise ModelError(
            f"model {config.model.name!r} cannot process {config.data.name!r} inputs of shape "
            f"{tuple(inputs.shape[1:])}: {str(error).splitlines()[0]}",
            "check the model's options against the data (see 'lamina datasets summary CONFIG')",
        ) from None
    finally:
        model.train(was_training)
    mismatch = task_of(data.spec).output_mismatch(tuple(prediction.shape[1:]), data.spec.output_size)
    if mismatch is not None:
        raise ModelError(f"model {config.model.name!r} {mismatch[0]}", mismatch[1])
    return forward_flops(model, data.transform(inputs)) // len(inputs)
