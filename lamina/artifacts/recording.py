"""Callbacks that record a run into its folder: the metrics log, per-layer gradient norms, layer statistics for the
training doctor and resumable checkpoints (the loop itself writes no files)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from lamina.artifacts.checkpoint import rng_state, save_checkpoint, set_rng_state
from lamina.artifacts.folder import RunFolder
from lamina.artifacts.plots import save_figure
from lamina.artifacts.run_plots import gradient_norms_figure
from lamina.core.errors import RunError
from lamina.tasks import task_of
from lamina.training.callbacks import Callback, state_keys
from lamina.training.divergence import check_weights
from lamina.training.gradients import layer_gradient_norms
from lamina.training.instruments import LayerProbe
from lamina.training.loop import Loop, TrainState

__all__ = [
    "MetricsLog",
    "GradientNorms",
    "LayerStatistics",
    "Checkpoints",
    "loop_state",
    "restore_loop",
    "save_resumable",
]


class MetricsLog(Callback):
    """Appends per-step and per-epoch rows to metrics.jsonl; flushed at each epoch end and checkpoint."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.handle = None
        self.epoch_started = time.perf_counter()
        self.samples_at_epoch_start = 0

    def fit_start(self, loop) -> None:
        self.handle = open(self.folder.metrics, "a", encoding="utf-8")  # noqa: SIM115 (closed in fit_end)

    def epoch_start(self, loop) -> None:
        self.epoch_started = time.perf_counter()

    def step_end(self, loop, loss: float | None) -> None:
        if loss is None:
            return
        state = loop.state
        row = {
            "kind": "step",
            "step": state.step,
            "epoch": round(state.epoch + state.batch / loop.steps_per_epoch, 4),
            "loss": loss,
            "learning_rate": loop.learning_rate,
        }
        self.handle.write(json.dumps(row) + "\n")

    def epoch_end(self, loop, row: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self.epoch_started
        row["seconds"] = round(seconds, 3)
        samples = len(loop.data.splits["train"])
        row["samples_per_second"] = round(samples / seconds, 1) if seconds > 0 else None
        if task_of(loop.data.spec).causal:  # a language model learns from every token of each window
            tokens = samples * loop.data.splits["train"].inputs.shape[1]  # windows (N, T)
            row["tokens_per_second"] = round(tokens / seconds, 1) if seconds > 0 else None
        self.handle.write(json.dumps({"kind": "epoch", **row}) + "\n")
        self.handle.flush()

    def fit_end(self, loop, status: str) -> None:
        self.close()

    def offset(self) -> int:
        """Bytes of metrics.jsonl that belong to the run so far (flushed)."""
        if self.handle is None or self.handle.closed:
            return self.folder.metrics.stat().st_size if self.folder.metrics.exists() else 0
        self.handle.flush()
        return self.handle.tell()

    def close(self) -> None:
        if self.handle is not None and not self.handle.closed:
            self.handle.flush()
            self.handle.close()


class GradientNorms(Callback):
    """Every `log_every_steps` steps a row {"kind": "gradients", "step", "total", "layers": {layer: norm}} goes to
    metrics.jsonl through the run's MetricsLog, with norms as they were before clipping; at the end,
    plots/gradient_norms.png shows log10 of each layer's norm over training."""

    def __init__(self, log: MetricsLog, plot_path: Path | None = None):
        self.log, self.plot_path = log, plot_path

    def step_end(self, loop, loss: float | None) -> None:
        if loss is None:
            return
        norms = layer_gradient_norms(getattr(loop.model, "_orig_mod", loop.model))
        if not norms:
            return
        values = torch.stack(list(norms.values())).tolist()
        clip = loop.settings.gradient_clip
        scale = 1.0
        if clip and loop.gradient_norm is not None:  # undo clipping: report what backpropagation produced
            scale = min(1.0, clip / (float(loop.gradient_norm) + 1e-6))
        layers = {layer: value / scale for layer, value in zip(norms, values, strict=True)}
        total = math.sqrt(sum(value * value for value in layers.values()))
        row = {"kind": "gradients", "step": loop.state.step, "total": total, "layers": layers}
        self.log.handle.write(json.dumps(row) + "\n")

    def fit_end(self, loop, status: str) -> None:
        if self.plot_path is None or not self.log.folder.metrics.is_file():
            return
        rows = [json.loads(line) for line in self.log.folder.metrics.read_text().splitlines() if '"gradients"' in line]
        rows = [row for row in rows if row.get("kind") == "gradients"]
        if not rows:
            return
        save_figure(gradient_norms_figure(rows), self.plot_path)


class LayerStatistics(Callback):
    """On every logging step (`log_every_steps`), rows {"kind": "activations", "step", "layers": {layer:
    {"function", "dead" or "saturated"}}} and {"kind": "updates", "step", "layers": {layer: ‖Δw‖/‖w‖}} go to
    metrics.jsonl through the run's MetricsLog (lamina/training/instruments.py). The probe is armed at the end of
    the step before a logging step and read at the end of the logging step, so other steps pay nothing; a compiled
    model gets update ratios only (hooks added and removed would make it recompile)."""

    def __init__(self, log: MetricsLog):
        self.log = log
        self.probe: LayerProbe | None = None

    def fit_start(self, loop) -> None:
        self.probe = LayerProbe(loop.model, activations=loop.forward_model is loop.model)
        self._arm_if_next_logs(loop)

    def step_end(self, loop, loss: float | None) -> None:
        if self.probe.armed and loop.state.step % loop.settings.log_every_steps == 0:
            step, read = loop.state.step, self.probe.read()
            if read["activations"]:
                self.log.handle.write(json.dumps({"kind": "activations", "step": step, "layers": read["activations"]}))
                self.log.handle.write("\n")
            if read["updates"]:
                self.log.handle.write(json.dumps({"kind": "updates", "step": step, "layers": read["updates"]}) + "\n")
        self._arm_if_next_logs(loop)

    def _arm_if_next_logs(self, loop) -> None:
        if (loop.state.step + 1) % loop.settings.log_every_steps == 0 and loop.state.step < loop.total_steps:
            self.probe.arm()

    def fit_end(self, loop, status: str) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks (also when training stops with an error), so the model is left as it was."""
        if self.probe is not None:
            self.probe.disarm()


def loop_state(loop: Loop, metrics_bytes: int) -> dict[str, Any]:
    """Everything beyond the weights that resuming needs, as one record."""
    state = loop.state.to_dict()
    # running sums as tensors: vectors (tokens per expert) and scalars alike, exactly
    state["sums"] = {name: torch.as_tensor(value, dtype=torch.float64).cpu() for name, value in state["sums"].items()}
    return {
        "train_state": state,
        "optimizer": loop.optimizer.state_dict(),
        "callbacks": {
            key: callback.state_dict() for key, callback in zip(state_keys(loop.callbacks), loop.callbacks, strict=True)
        },
        "rng": rng_state(),
        "metrics_bytes": metrics_bytes,
    }


def restore_loop(loop: Loop, checkpoint: dict[str, Any]) -> None:
    """Put a loop back where `checkpoint` (from `read_checkpoint`) left it; weights are loaded separately. A
    checkpoint that does not fit this run (edited, damaged, or another run's) is a RunError naming what differs."""
    path = checkpoint["path"]
    try:
        state = TrainState(**checkpoint["train_state"])
        if not (
            0 <= state.epoch <= loop.epochs
            and 0 <= state.step <= loop.total_steps
            and 0 <= state.batch <= loop.steps_per_epoch
        ):
            raise ValueError(
                f"it is at epoch {state.epoch}, step {state.step}, batch {state.batch}, but this run has "
                f"{loop.epochs} epochs, {loop.total_steps} steps, {loop.steps_per_epoch} per epoch"
            )
        loop.optimizer.load_state_dict(checkpoint["optimizer"])
        saved = checkpoint.get("callbacks", {})
        for key, callback in zip(state_keys(loop.callbacks), loop.callbacks, strict=True):
            if key in saved:
                callback.load_state_dict(saved[key])
        set_rng_state(checkpoint["rng"])
    except (TypeError, ValueError, KeyError, RuntimeError, IndexError) as error:
        raise RunError(
            f"the checkpoint {path} does not fit this run: {str(error).splitlines()[0]}",
            "it was damaged or edited; copy the run folder again, or start the run again",
        ) from None
    loop.state = state


def save_resumable(folder: RunFolder, loop: Loop, log: MetricsLog) -> None:
    """Write checkpoints/last — unless the weights are no longer finite: then the last finite checkpoint stays and
    TrainingDiverged names the layer."""
    check_weights(loop.model, f"after step {loop.state.step} (epoch {loop.state.epoch + (loop.state.batch > 0)})")
    save_checkpoint(folder.last, loop.model, loop_state(loop, log.offset()))


class Checkpoints(Callback):
    """Saves checkpoints/last at every epoch end (and every N steps), checkpoints/best when the monitor improves."""

    def __init__(self, folder: RunFolder, log: MetricsLog, every_steps: int | None = None):
        self.folder, self.log, self.every_steps = folder, log, every_steps

    def step_end(self, loop, loss: float | None) -> None:
        if self.every_steps and loop.state.step % self.every_steps == 0:
            self.save(loop)

    def epoch_end(self, loop, row: dict[str, Any]) -> None:
        self.save(loop)
        if row.get("best"):
            weights = loop.evaluation_model or loop.model  # the weights that earned the score
            check_weights(weights, f"(the weights validated after epoch {loop.state.epoch})")
            save_checkpoint(self.folder.best, weights, loop_state(loop, self.log.offset()))
        self.folder.update_summary(
            status="running",
            epochs=loop.state.epoch,
            steps=loop.state.step,
            best=loop.state.best,
            wall_seconds=round(loop.state.wall_seconds, 3),
        )

    def save(self, loop) -> None:
        save_resumable(self.folder, loop, self.log)
