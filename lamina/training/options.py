"""The training section of a config and the registries it names: losses, metrics, optimizers (schedules are in
lamina/training/schedules.py). This module is the list of built-in losses, metrics and optimizers; importing it does
not import PyTorch (a loss's or optimizer's builder and a metric's function are imported when first used).
"""

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from lamina.core.errors import did_you_mean
from lamina.core.options import Each, Names, Options
from lamina.core.registry import Registry
from lamina.training.schedules import ConstantOptions, schedules

__all__ = [
    "losses",
    "metrics",
    "optimizers",
    "TrainOptions",
    "EarlyStoppingOptions",
    "WeightAverageOptions",
    "SPLITS",
]

losses = Registry("loss", metadata={"task": "classification"})  # task: the kind of problem the loss is for
metrics = Registry("metric", metadata={"task": "classification", "goal": "max"})  # goal: min or max is better
optimizers = Registry("optimizer")

SPLITS = ("train", "val")  # the splits a monitored metric may come from


# ---- losses -------------------------------------------------------------------------------------------------


@losses.register("lamina.training.losses:cross_entropy")
class CrossEntropyOptions(Options):
    """Softmax cross-entropy over class logits."""

    name: Literal["cross_entropy"] = "cross_entropy"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """Mix this much of a uniform distribution into the targets (0.1 is common)."""
    class_weights: list[Annotated[float, Field(ge=0)]] | Literal["balanced"] | None = None
    """Weight per class, or 'balanced' for weights inversely proportional to train class counts."""

    @field_validator("class_weights")
    @classmethod
    def _some_weight(cls, value: list[float] | str | None) -> list[float] | str | None:
        if isinstance(value, list) and value and not any(value):
            raise ValueError("every class weight is 0, so nothing would be learned; give some class a weight above 0")
        return value


@losses.register("lamina.training.losses:binary_cross_entropy")
class BCEOptions(Options):
    """Sigmoid binary cross-entropy."""

    name: Literal["bce"] = "bce"
    pos_weight: float | None = Field(None, gt=0)
    """Weight of the positive class (binary data only), e.g. negatives/positives for rare positives."""


@losses.register("lamina.training.losses:mse", task="regression")
class MSEOptions(Options):
    """Mean squared error of standardized targets (regression)."""

    name: Literal["mse"] = "mse"


@losses.register("lamina.training.losses:mae", task="regression")
class MAEOptions(Options):
    """Mean absolute error, L1, of standardized targets (regression)."""

    name: Literal["mae"] = "mae"


@losses.register("lamina.training.losses:huber", task="regression")
class HuberOptions(Options):
    """Quadratic below `delta`, linear above: robust to outliers."""

    name: Literal["huber"] = "huber"
    delta: float = Field(1.0, gt=0)
    """Where the loss turns from quadratic to linear, in standard deviations of the target."""


@losses.register("lamina.training.sequence_losses:token_cross_entropy", task="language_modeling")
class TokenCrossEntropyOptions(Options):
    """Cross-entropy of each next token, averaged over real tokens (padding never counts)."""

    name: Literal["token_cross_entropy"] = "token_cross_entropy"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """Mix this much of a uniform distribution into each target token."""


@losses.register("lamina.training.sequence_losses:ctc", task="transcription")
class CTCOptions(Options):
    """Connectionist temporal classification: per-step outputs aligned to a shorter label sequence."""

    name: Literal["ctc"] = "ctc"
    zero_infinity: bool = True
    """Treat impossible alignments (labels longer than the output) as zero loss instead of infinity."""


@losses.register("lamina.training.reconstruction:pixel_bce", task="reconstruction")
class PixelBCEOptions(Options):
    """Binary cross-entropy per pixel (a Bernoulli decoder; sharp digits), summed over pixels."""

    name: Literal["pixel_bce"] = "pixel_bce"


@losses.register("lamina.training.reconstruction:pixel_mse", task="reconstruction")
class PixelMSEOptions(Options):
    """Squared error per pixel of sigmoid(logits) (a Gaussian decoder), summed over pixels."""

    name: Literal["pixel_mse"] = "pixel_mse"


# ---- metrics: name, function, task, goal -------------------------------------------------------------------

for _name, _function, _task, _goal in [
    ("accuracy", "metrics:accuracy", "classification", "max"),
    ("macro_f1", "metrics:macro_f1", "classification", "max"),
    ("precision", "metrics:precision", "classification", "max"),
    ("recall", "metrics:recall", "classification", "max"),
    ("f1", "metrics:f1_positive", "classification", "max"),
    ("roc_auc", "metrics:roc_auc_metric", "classification", "max"),
    ("ece", "calibration:ece_metric", "classification", "min"),
    ("mce", "calibration:mce_metric", "classification", "min"),
    ("brier", "calibration:brier_metric", "classification", "min"),
    ("mse", "metrics:mean_squared_error", "regression", "min"),
    ("rmse", "metrics:root_mean_squared_error", "regression", "min"),
    ("mae", "metrics:mean_absolute_error", "regression", "min"),
    ("r2", "metrics:r2", "regression", "max"),
    ("perplexity", "sequence_metrics:perplexity", "language_modeling", "min"),
    ("bits_per_character", "sequence_metrics:bits_per_character", "language_modeling", "min"),
    ("sequence_accuracy", "sequence_metrics:sequence_accuracy", "transcription", "max"),
    ("token_error_rate", "sequence_metrics:token_error_rate", "transcription", "min"),
    ("pixel_mse", "reconstruction:pixel_mse_metric", "reconstruction", "min"),
    ("pixel_mae", "reconstruction:pixel_mae_metric", "reconstruction", "min"),
    ("psnr", "reconstruction:psnr", "reconstruction", "max"),
]:
    metrics.add_function(_name, f"lamina.training.{_function}", task=_task, goal=_goal)


def metric_goal(name: str) -> str:
    """'min' or 'max' for a metric name such as 'accuracy' or 'loss' (losses and auxiliary terms are minimized)."""
    return metrics.get(name).metadata["goal"] if name in metrics else "min"


# ---- optimizers ---------------------------------------------------------------------------------------------


class OptimizerOptions(Options):
    learning_rate: float = Field(1e-3, gt=0)
    """Peak learning rate; the schedule scales it each step."""
    weight_decay: float = Field(0.0, ge=0)
    """Decoupled (AdamW, Muon) or L2-style (SGD, Adam, RMSprop) decay of weights; never of biases or norms."""
    bias_learning_rate_factor: float = Field(1.0, gt=0)
    """Multiplies the learning rate of biases and normalization parameters (e.g. 64 with frozen norm scales)."""


@optimizers.register("lamina.training.optimizers:sgd")
class SGDOptions(OptimizerOptions):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    name: Literal["sgd"] = "sgd"
    learning_rate: float = Field(0.05, gt=0)
    """Peak learning rate; the schedule scales it each step."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """Momentum factor; 0 is plain SGD."""
    nesterov: bool = True
    """Nesterov momentum (needs momentum > 0)."""


@optimizers.register("lamina.training.optimizers:adam")
class AdamOptions(OptimizerOptions):
    """Adam: per-parameter adaptive steps from running moments of the gradient."""

    name: Literal["adam"] = "adam"
    beta1: float = Field(0.9, ge=0, lt=1)
    """Decay of the running mean of gradients."""
    beta2: float = Field(0.999, ge=0, lt=1)
    """Decay of the running mean of squared gradients (0.99 for short, noisy runs)."""
    eps: float = Field(1e-8, gt=0)
    """Added to the denominator for numerical stability."""


@optimizers.register("lamina.training.optimizers:adamw")
class AdamWOptions(AdamOptions):
    """AdamW: Adam with decoupled weight decay."""

    name: Literal["adamw"] = "adamw"
    weight_decay: float = Field(0.01, ge=0)
    """Decoupled weight decay on weight matrices and kernels."""


@optimizers.register("lamina.training.optimizers:rmsprop")
class RMSpropOptions(OptimizerOptions):
    """RMSprop: steps scaled by a running average of squared gradients."""

    name: Literal["rmsprop"] = "rmsprop"
    alpha: float = Field(0.99, ge=0, lt=1)
    """Decay of the running average of squared gradients."""
    momentum: float = Field(0.0, ge=0, lt=1)
    """Momentum factor."""
    eps: float = Field(1e-8, gt=0)
    """Added to the denominator for numerical stability."""
    centered: bool = False
    """Normalize by the estimated variance of the gradient instead of its second moment."""


@optimizers.register("lamina.training.optimizers:muon")
class MuonOptions(OptimizerOptions):
    """Muon for hidden weight matrices (orthogonalized momentum), AdamW for everything else."""

    name: Literal["muon"] = "muon"
    weight_decay: float = Field(0.01, ge=0)
    """Decoupled weight decay on weight matrices and kernels."""
    momentum: float = Field(0.95, ge=0, lt=1)
    """Muon's momentum."""
    nesterov: bool = True
    """Nesterov momentum for Muon."""
    ns_steps: int = Field(5, ge=1)
    """Newton–Schulz iterations of the orthogonalization."""


# ---- the train and runtime sections -------------------------------------------------------------------------


def _check_metric_name(name: str) -> str:
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
    metrics: Names | None = None
    """Metrics per split; default: accuracy, macro_f1, precision, recall (+ roc_auc if binary) or mse, rmse, mae, r2."""
    monitor: str | None = None
    """Metric that picks the best checkpoint and drives early stopping, '<split>.<metric>'; default val.accuracy
    (classification) or val.loss (regression)."""
    calibrate: Literal["temperature"] | None = None
    """After training, fit one temperature on the val split's probabilities (minimum NLL) and apply it wherever the
    run gives probabilities: evaluate, predict, explanations, ensembles (docs/insight.md, Calibration)."""
    early_stopping: EarlyStoppingOptions | None = None
    """Stop early when the monitored metric stalls; none = train all epochs."""
    weight_average: WeightAverageOptions | None = None
    """Validate, checkpoint as best and keep an exponential moving average of the weights (docs/guide.md)."""
    checkpoint_every_steps: int | None = Field(None, ge=1)
    """Also save a resumable checkpoint every N steps (one is always saved at each epoch end)."""
    log_every_steps: int = Field(10, ge=1)
    """Write a per-step row (loss, learning rate) to metrics.jsonl every N steps."""
    freeze: Names = []
    """Modules whose parameters do not train, e.g. [backbone] (everything but the head); see docs/vision.md."""
    unfreeze: Annotated[dict[str, int], Each(ge=0)] = {}
    """Gradual unfreezing: module → number of epochs after which it trains again, e.g. {backbone: 3}."""
    learning_rate_factors: Annotated[dict[str, float], Each(ge=0)] = {}
    """Discriminative learning rates: module → factor on the learning rate, e.g. {backbone: 0.1}."""
    log_gradient_norms: bool = True
    """Also log each layer's gradient norm every log_every_steps steps (vanishing/exploding gradients)."""
    log_layer_statistics: bool = True
    """Also log, every log_every_steps steps, the share of dead ReLU units and saturated sigmoid/tanh outputs per
    layer and each layer's update-to-weight ratio, for the training doctor (under 1 % of step time,
    bench/doctor_overhead.py)."""
    group_thresholds: str | None = None
    """Two classes: choose a decision threshold per group of this data.groups attribute on val, by the rule of the
    run's own threshold, to narrow the gaps in error rates between groups; groups without one use the run's."""
    loss: losses.union() | None = None  # type: ignore[valid-type]
    """Loss by name; default: cross_entropy (classification) or mse (regression)."""
    balance_groups: str | None = None
    """Group-balanced training: the data.groups attribute (e.g. speaker) whose groups count alike in training,
    each sample weighted by 1 / (its group's train count); none = every sample alike."""
    balance_method: Literal["sampling", "loss_weights"] = "sampling"
    """sampling: each epoch draws its samples (as many as the train split holds, with replacement) with those
    weights, from (seed, epoch) alone; loss_weights: the usual order, each sample's classification loss times its
    weight (mean 1 over train)."""
    optimizer: optimizers.union() = Field(  # type: ignore[valid-type]
        default_factory=lambda: optimizers.get("adamw").options(),
        description="Optimizer by name: " + ", ".join(optimizers.names()),
    )
    schedule: schedules.union() = Field(  # type: ignore[valid-type]
        default_factory=ConstantOptions, description="Learning-rate schedule by name: " + ", ".join(schedules.names())
    )

    _monitor = field_validator("monitor")(_check_monitor)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_check_metric_name(name) for name in value]
