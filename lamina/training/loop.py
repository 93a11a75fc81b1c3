"""The fit loop: one readable function of epochs and steps, observed by callbacks.

Everything a resumed run needs is in `TrainState` plus the model, optimizer and RNG; the data order is a
function of (seed, epoch), so resuming at (epoch, batch) replays the uninterrupted run exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lamina.data.bundle import DataBundle, batch_bounds, epoch_order, iterate_batches
from lamina.tasks import task_of
from lamina.training.balance import GroupBalance
from lamina.training.callbacks import Callback, emit, improved
from lamina.training.divergence import check_loss, check_weights
from lamina.training.evaluate import evaluate_split, plain
from lamina.training.losses import Objective
from lamina.training.optimizers import decayed_parameters
from lamina.training.options import TrainOptions, metric_goal
from lamina.training.schedules import apply_schedule, factor
from lamina.training.steps import StepContext, StepFunction, supervised_step

__all__ = ["Loop", "TrainState", "Interrupted"]


class Interrupted(Exception):
    """Training was asked to stop (Ctrl-C); the loop stopped between two steps, so its state is consistent."""


@dataclass
class TrainState:
    """Where training is, and what it has seen: saved as JSON in every checkpoint."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches finished in the current epoch
    step: int = 0  # optimizer steps overall
    sums: dict[str, float] = field(default_factory=dict)  # current epoch's running train sums
    history: list[dict] = field(default_factory=list)  # one row per finished epoch
    best: dict | None = None  # {"monitor", "value", "epoch", "step"}
    wall_seconds: float = 0.0  # training time over all sessions of this run
    first_loss: float | None = None  # the loss of the run's first step: a loss far above it has diverged
    # what training has cost so far, over all sessions of this run (lamina.training.accounting fills them in;
    # runtime.budget reads them)
    flops: float = 0.0  # training FLOPs (forward + backward) of the steps taken
    cpu_seconds: float = 0.0  # CPU time of this process while training (user + system, all threads)
    energy_joules: float = 0.0  # measured, or estimated as the run's energy record says

    def to_dict(self) -> dict:
        return asdict(self)


class Loop:
    """A training run in progress: what callbacks observe. Set `should_stop` to end after this epoch."""

    def __init__(
        self,
        model: nn.Module,
        data: DataBundle,
        objective: Objective,
        optimizer: Any,
        settings: TrainOptions,
        *,
        metric_names: list[str],
        monitor: str,
        seed: int,
        callbacks: list[Callback],
        step_function: StepFunction = supervised_step,
        forward_model: nn.Module | None = None,  # e.g. a torch.compile'd view of `model`
        balance: GroupBalance | None = None,  # train.balance_groups: each epoch's order or each sample's weight
    ):
        self.model, self.data, self.objective, self.optimizer = model, data, objective, optimizer
        self.settings, self.metric_names, self.monitor, self.seed = settings, metric_names, monitor, seed
        self.callbacks, self.step_function = callbacks, step_function
        self.forward_model = forward_model or model
        self.balance = balance
        self.evaluation_model: nn.Module | None = None  # what validation uses, e.g. averaged weights
        self.state = TrainState()
        self.should_stop = False
        self.stop_reason = ""
        self.interrupt_requested = False
        self.learning_rate = 0.0
        self.gradient_norm: Tensor | None = None  # global norm of the last step's gradients before clipping
        self.steps_per_epoch = len(batch_bounds(len(data.splits["train"]), settings.batch_size))
        # max_steps, when set, replaces epochs: the last epoch may end part-way
        self.total_steps = settings.max_steps or self.steps_per_epoch * settings.epochs
        self.epochs = -(-self.total_steps // self.steps_per_epoch)
        self.classification = task_of(data.spec).classes
        self.context = StepContext(objective, data, seed)
        self._penalized = decayed_parameters(model) if settings.l1 or settings.l2 else []

    # ---- the loop ---------------------------------------------------------------------------------

    def run(self) -> TrainState:
        """Train until the configured epochs are done or a callback stops it; returns the final state."""
        state = self.state
        emit(self.callbacks, "fit_start", self)
        started = time.perf_counter()
        while state.epoch < self.epochs and not self.should_stop:
            if state.batch == 0:
                state.sums = {}
                emit(self.callbacks, "epoch_start", self)
            self._train_epoch(started)
            row = self._end_epoch()
            state.wall_seconds += time.perf_counter() - started
            started = time.perf_counter()
            emit(self.callbacks, "epoch_end", self, row)
        emit(self.callbacks, "fit_end", self, "completed")
        return state

    def _train_epoch(self, started: float) -> None:
        state, settings = self.state, self.settings
        train = self.data.training_split(self.seed, state.epoch)
        model, transform = self.forward_model, self.data.transform
        model.train()
        sums = _tensor_sums(state.sums, train.inputs.device)
        order = epoch_order(len(train), self.seed, state.epoch)
        if self.balance is not None:  # train.balance_groups: a weighted draw (sampling), or the order as it is
            order = self.balance.order(order, self.seed, state.epoch)
        for inputs, targets in iterate_batches(train, settings.batch_size, order, start_batch=state.batch):
            if state.step >= self.total_steps:
                break
            inputs = transform(inputs)
            if self.data.augment is not None:
                # a generator per batch, seeded by its position: different every epoch, identical on resume
                position = (self.seed * 1_000_003 + state.epoch) * 1_000_003 + state.batch
                generator = torch.Generator(inputs.device).manual_seed(position % (2**63))
                inputs, targets = self.data.augment(inputs, targets, generator)
            self.learning_rate = self.base_rate() * apply_schedule(
                self.optimizer, settings.schedule, state.step, self.total_steps, self.steps_per_epoch
            )
            self.context.step, self.context.evaluation_model = state.step, self.evaluation_model
            if self.balance is not None:  # loss_weights: the weights of this batch's samples
                self.context.sample_weights = self.balance.batch_weights(order, state.batch, inputs.device)
            loss, prediction, logged_values = self.step_function(model, (inputs, targets), self.context)
            objective_loss = loss
            if self._penalized:
                loss = loss + self._penalty()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.gradient_clip:  # the norm before clipping, for the gradient-norm log
                self.gradient_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), settings.gradient_clip)
            self.optimizer.step()
            # running sums stay on the device: no synchronization per step
            count = len(targets)
            sums["loss"] += objective_loss.detach().double() * count
            sums["samples"] += count
            if self.classification and prediction.ndim == 2:
                sums["correct"] += _correct(prediction.detach(), targets)
            for name, value in logged_values.items():
                sums[name] = sums.get(name, 0.0) + value.detach().double() * count
            state.step += 1
            state.batch += 1
            logged = None
            if state.step % settings.log_every_steps == 0 or state.first_loss is None:
                logged = float(objective_loss.detach())  # the only synchronization, every log_every_steps steps
                where = f"at step {state.step} (epoch {state.epoch + 1})"
                if not math.isfinite(logged):  # name the layer that went first, when there is one
                    check_weights(self.model, where)
                check_loss(logged, state.first_loss, where)
                state.first_loss = logged if state.first_loss is None else state.first_loss
                logged = logged if state.step % settings.log_every_steps == 0 else None
            state.sums = sums  # tensors while the epoch runs; checkpoints turn them into floats
            emit(self.callbacks, "step_end", self, logged)
            if self.interrupt_requested:
                state.wall_seconds += time.perf_counter() - started
                raise Interrupted()

    def _end_epoch(self) -> dict[str, Any]:
        state = self.state
        sums = {name: torch.as_tensor(value, dtype=torch.float64) for name, value in state.sums.items()}
        samples = max(1.0, float(sums["samples"]))
        row: dict[str, Any] = {
            "epoch": state.epoch + 1,
            "step": state.step,
            "train.loss": float(sums["loss"]) / samples,
        }
        if "correct" in sums and self.classification:
            row["train.accuracy"] = float(sums["correct"]) / samples
        for name in sorted(sums.keys() - {"loss", "samples", "correct"}):
            row[f"train.{name}"] = plain(sums[name] / samples)
        metrics = self.evaluate("val")
        row.update({f"val.{name}": value for name, value in metrics.items()})
        # the rate of the epoch's last step, from the schedule itself (so it is right after a resume, too)
        row["learning_rate"] = self.base_rate() * factor(
            self.settings.schedule, max(0, state.step - 1), self.total_steps, self.steps_per_epoch
        )
        check_loss(row["train.loss"], state.first_loss, f"over epoch {state.epoch + 1} (its mean)")
        state.epoch += 1
        state.batch = 0
        state.sums = {}
        value = row.get(self.monitor)
        goal = metric_goal(self.monitor.split(".", 1)[1])
        if value is not None and improved(value, state.best["value"] if state.best else None, goal):
            state.best = {"monitor": self.monitor, "value": value, "epoch": state.epoch, "step": state.step}
        row["best"] = bool(state.best and state.best["epoch"] == state.epoch)
        state.history.append(row)
        return row

    def evaluate(self, split: str) -> dict[str, float]:
        """Loss and metrics over the whole `split` with the current weights."""
        metrics, _ = evaluate_split(
            self.evaluation_model or self.forward_model,
            self.data.splits[split],
            self.data.transform,
            self.objective,
            self.data.spec.task,
            self.metric_names,
            self.settings.eval_batch_size,
            self.data.spec.positive_index,
        )
        emit(self.callbacks, "evaluate_end", self, split, metrics)
        return metrics

    # ---- helpers ------------------------------------------------------------------------------------

    def base_rate(self) -> float:
        return self.settings.optimizer.learning_rate

    def _penalty(self) -> Tensor:
        l1, l2 = self.settings.l1, self.settings.l2
        total = torch.zeros((), device=self._penalized[0].device)
        for weight in self._penalized:
            if l1:
                total = total + l1 * weight.abs().sum()
            if l2:
                total = total + l2 * weight.pow(2).sum()
        return total


def _tensor_sums(sums: dict[str, Any], device: torch.device) -> dict[str, Tensor]:
    tensors = {name: torch.as_tensor(value, dtype=torch.float64, device=device) for name, value in sums.items()}
    for name in ("loss", "samples", "correct"):
        tensors.setdefault(name, torch.zeros((), dtype=torch.float64, device=device))
    return tensors


def _correct(prediction: Tensor, targets: Tensor) -> Tensor:
    if targets.ndim == 2:  # soft targets (mixup, cutmix): the class with the most weight
        targets = targets.argmax(dim=1)
    if prediction.shape[1] == 1:  # one logit (binary cross-entropy)
        return ((prediction[:, 0] > 0).long() == targets).sum()
    return (prediction.argmax(dim=1) == targets).sum()
