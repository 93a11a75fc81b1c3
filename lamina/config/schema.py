"""The whole config: `data`, `model`, `train`, `runtime`. Shaped like the pipeline it drives.

Sections chosen by name (`data`, `model`, `train.loss`, `train.optimizer`, `train.schedule`) validate against
the options of the registered entry with that name, so each option is declared once, next to its code.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, create_model, field_validator

from lamina.config.base import Options

__all__ = ["config_class", "TrainOptions", "RuntimeOptions", "EarlyStoppingOptions", "union_paths"]

SPLITS = ("train", "val")


def _check_metric_name(name: str) -> str:
    from pydantic_core import PydanticCustomError

    from lamina.errors import did_you_mean
    from lamina.train.metrics import metrics

    allowed = ["loss", *metrics.names()]
    if name not in allowed:
        suggestion = did_you_mean(name, allowed)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        raise PydanticCustomError(
            "unknown_metric",
            "unknown metric {name}; {hint}metrics: {allowed}",
            {"name": repr(name), "hint": hint, "allowed": ", ".join(allowed)},
        )
    return name


def _check_monitor(value: str | None) -> str | None:
    from pydantic_core import PydanticCustomError

    if value is None:
        return None
    split, _, name = value.partition(".")
    if split not in SPLITS or not name:
        raise PydanticCustomError(
            "bad_monitor",
            "expected '<split>.<metric>' with split train or val, e.g. 'val.accuracy'; received {value}",
            {"value": repr(value)},
        )
    _check_metric_name(name)
    return value


class EarlyStoppingOptions(Options):
    """Stop when train.monitor has not improved for `patience` epochs (the same metric picks the best weights)."""

    patience: int = Field(5, ge=1)
    """Epochs without improvement before stopping."""
    min_delta: float = Field(0.0, ge=0)
    """Smallest change that counts as an improvement."""
    restore_best: bool = True
    """End training with the weights of the best epoch instead of the last."""


class WeightAverageOptions(Options):
    """Evaluate an exponential moving average of the weights (smoother, often better than the last weights)."""

    decay: float = Field(0.999, gt=0, lt=1)
    """Decay per optimizer step (0.99 averages over ~100 steps, 0.999 over ~1000)."""
    every_steps: int = Field(1, ge=1)
    """Update the average every N steps (with decay^N), which costs less on slow devices."""
    lookahead: bool = False
    """Also copy the average back into the trained weights at each update (Zhang et al.'s lookahead, as in
    Jordan's airbench), with the kept weight ramped as decay^N × (step / total steps)³: free early, strongly
    averaged at the end."""


class TrainOptions(Options):
    """How to train: epochs, batches, loss, optimizer, schedule, regularization, metrics, checkpoints."""

    epochs: int = Field(10, ge=1)
    """Passes over the training split."""
    max_steps: int | None = Field(None, ge=1)
    """Train for exactly this many optimizer steps instead of `epochs` (the last epoch may end part-way)."""
    batch_size: int = Field(64, ge=1)
    """Samples per optimizer step."""
    eval_batch_size: int = Field(1024, ge=1)
    """Samples per forward pass when evaluating (no gradients, so larger is fine)."""
    gradient_clip: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value (fixes exploding gradients); none = no clipping."""
    l1: float = Field(0.0, ge=0)
    """L1 penalty coefficient on weight matrices and kernels (sparsity)."""
    l2: float = Field(0.0, ge=0)
    """L2 penalty coefficient added to the loss (prefer the optimizer's weight_decay with AdamW)."""
    metrics: list[str] | None = None
    """Metrics per split; default: accuracy, macro_f1, precision, recall (+ roc_auc if binary) or mse, rmse, mae, r2."""
    monitor: str | None = None
    """Metric that picks the best checkpoint and drives early stopping, '<split>.<metric>'; default val.accuracy
    (classification) or val.loss (regression)."""
    early_stopping: EarlyStoppingOptions | None = None
    """Stop early when the monitored metric stalls; none = train all epochs."""
    weight_average: WeightAverageOptions | None = None
    """Validate, checkpoint as best and keep an exponential moving average of the weights (docs/guide.md)."""
    checkpoint_every_steps: int | None = Field(None, ge=1)
    """Also save a resumable checkpoint every N steps (one is always saved at each epoch end)."""
    log_every_steps: int = Field(10, ge=1)
    """Write a per-step row (loss, learning rate) to metrics.jsonl every N steps."""
    freeze: list[str] = []
    """Modules whose parameters do not train, e.g. [backbone] (everything but the head); see docs/vision.md."""
    unfreeze: dict[str, int] = {}
    """Gradual unfreezing: module → number of epochs after which it trains again, e.g. {backbone: 3}."""
    learning_rate_factors: dict[str, float] = {}
    """Discriminative learning rates: module → factor on the learning rate, e.g. {backbone: 0.1}."""
    log_gradient_norms: bool = True
    """Also log each layer's gradient norm every log_every_steps steps (vanishing/exploding gradients)."""

    _monitor = field_validator("monitor")(_check_monitor)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_check_metric_name(name) for name in value]


class RuntimeOptions(Options):
    """Where and how fast: device, CPU threads, compilation."""

    device: str = "auto"
    """'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    threads: int | None = Field(None, ge=1)
    """CPU threads for PyTorch; default: every core this process may use (see docs/performance.md)."""
    compile: bool = False
    """Compile the model with torch.compile (slow first step, faster after; needs a C compiler on CPU)."""
    deterministic: bool = False
    """Deterministic kernels, so a resumed or repeated run on a GPU matches bitwise (slower there; CPU runs are
    bitwise repeatable either way)."""
    keep_freed_memory: bool = True
    """On CPU, let the C library (glibc) reuse freed memory instead of unmapping every large tensor after each
    step: up to a fifth faster conv-net steps, at the cost of holding more memory (docs/performance.md)."""

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        from pydantic_core import PydanticCustomError

        kind = value.split(":")[0]
        if kind not in ("auto", "cpu", "cuda", "mps") or (":" in value and not value.split(":")[1].isdigit()):
            raise PydanticCustomError(
                "unknown_device",
                "unknown device {value}; use auto, cpu, cuda, cuda:N or mps",
                {"value": repr(value)},
            )
        return value


class ConfigBase(Options):
    """A lamina run: what data, which model, how to train it, on what hardware."""

    name: str | None = None
    """Run name (also part of the run folder's name); default: '<model>-<data>'."""
    seed: int = 0
    """Seeds data splits, shuffling, initialization and dropout; the same seed gives the same run."""
    description: str | None = None
    """Free text kept with the run."""


# Sections whose options depend on the `name` inside them, and the registry that names them.
union_paths = {
    "data": "dataset",
    "data.augment": "augmentation",
    "model": "model",
    "train.loss": "loss",
    "train.optimizer": "optimizer",
    "train.schedule": "schedule",
}


def config_class() -> type[ConfigBase]:
    """The Config class, assembled from everything registered (imports the model and data families).
    Rebuilt when something new is registered, so user-registered families validate like built-in ones."""
    from lamina.data import datasets
    from lamina.models import models
    from lamina.train import reconstruction  # noqa: F401  (registers the reconstruction task, losses, metrics)
    from lamina.train.losses import losses
    from lamina.train.optimizers import optimizers
    from lamina.train.schedules import schedules

    registries = (datasets, models, losses, optimizers, schedules)
    return _assemble(tuple(tuple(registry.names()) for registry in registries))


@functools.cache
def _assemble(names: tuple) -> type[ConfigBase]:
    from lamina.data import datasets
    from lamina.models import models
    from lamina.train.losses import losses
    from lamina.train.optimizers import optimizers
    from lamina.train.schedules import schedules

    def default(registry, name: str) -> Any:
        return Field(default_factory=lambda: registry.get(name).config())

    train_class = create_model(
        "TrainConfig",
        __base__=TrainOptions,
        __doc__=TrainOptions.__doc__,
        loss=(
            losses.union() | None,
            Field(None, description="Loss by name; default: cross_entropy (classification) or mse (regression)."),
        ),
        optimizer=(optimizers.union(), default(optimizers, "adamw")),
        schedule=(schedules.union(), default(schedules, "constant")),
    )
    train_class.model_fields["optimizer"].description = "Optimizer by name: " + ", ".join(optimizers.names())
    train_class.model_fields["schedule"].description = "Learning-rate schedule by name: " + ", ".join(schedules.names())
    return create_model(
        "Config",
        __base__=ConfigBase,
        __doc__=ConfigBase.__doc__,
        data=(datasets.union(), Field(description="Data set by name: " + ", ".join(datasets.names()))),
        model=(models.union(), Field(description="Model family by name: " + ", ".join(models.names()))),
        train=(train_class, Field(default_factory=train_class, description=TrainOptions.__doc__)),
        runtime=(RuntimeOptions, Field(default_factory=RuntimeOptions, description=RuntimeOptions.__doc__)),
    )


def schema() -> dict:
    """JSON Schema of the config, for editor completion (e.g. YAML language servers)."""
    document = config_class().model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "lamina config"
    return document
