"""Callbacks that record a run into its folder: the metrics log and resumable checkpoints."""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from lamina.artifacts.checkpoint import rng_state, save_checkpoint, set_rng_state
from lamina.artifacts.folder import RunFolder
from lamina.train.callbacks import Callback

__all__ = ["MetricsLog", "Checkpoints", "loop_state", "restore_loop"]


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
        row = {"kind": "step", "step": state.step, "epoch": round(state.epoch + state.batch / loop.steps_per_epoch, 4),
               "loss": loss, "learning_rate": loop.learning_rate}  # fmt: skip
        self.handle.write(json.dumps(row) + "\n")

    def epoch_end(self, loop, row: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self.epoch_started
        row["seconds"] = round(seconds, 3)
        samples = len(loop.data.splits["train"])
        row["samples_per_second"] = round(samples / seconds, 1) if seconds > 0 else None
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


def loop_state(loop, metrics_bytes: int) -> dict[str, Any]:
    """Everything beyond the weights that resuming needs, as one record."""
    state = loop.state.to_dict()
    # running sums as tensors: vectors (tokens per expert) and scalars alike, exactly
    state["sums"] = {name: torch.as_tensor(value, dtype=torch.float64).cpu() for name, value in state["sums"].items()}
    return {
        "train_state": state,
        "optimizer": loop.optimizer.state_dict(),
        "callbacks": {type(callback).__name__: callback.state_dict() for callback in loop.callbacks},
        "rng": rng_state(),
        "metrics_bytes": metrics_bytes,
    }


def restore_loop(loop, checkpoint: dict[str, Any]) -> None:
    """Put a loop back where `checkpoint` (from `read_checkpoint`) left it; weights are loaded separately."""
    from lamina.train.loop import TrainState

    loop.state = TrainState(**checkpoint["train_state"])
    loop.optimizer.load_state_dict(checkpoint["optimizer"])
    saved = checkpoint.get("callbacks", {})
    for callback in loop.callbacks:
        if type(callback).__name__ in saved:
            callback.load_state_dict(saved[type(callback).__name__])
    set_rng_state(checkpoint["rng"])


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
            save_checkpoint(self.folder.best, weights, loop_state(loop, self.log.offset()))
        self.folder.update_summary(status="running", epochs=loop.state.epoch, steps=loop.state.step,
                                   best=loop.state.best, wall_seconds=round(loop.state.wall_seconds, 3))  # fmt: skip

    def save(self, loop) -> None:
        save_checkpoint(self.folder.last, loop.model, loop_state(loop, self.log.offset()))
