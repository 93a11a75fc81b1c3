"""Progress display: a live rich bar on a terminal, one plain line per epoch otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from lamina.tasks import task_of
from lamina.training.callbacks import Callback

__all__ = ["Progress", "format_row"]


def format_row(row: dict[str, Any], epochs: int, main_metric: str) -> str:
    """'epoch 3/10  train.loss 0.2100  val.loss 0.1800  val.accuracy 0.9500  1234 samples/s  2.1s' (tokens/s for
    language models)."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"train.loss {row['train.loss']:.4f}"]
    for key in dict.fromkeys(("val.loss", main_metric)):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    if row.get("tokens_per_second"):
        parts.append(f"{row['tokens_per_second']:.0f} tokens/s")
    elif row.get("samples_per_second"):
        parts.append(f"{row['samples_per_second']:.0f} samples/s")
    if row.get("seconds") is not None:
        parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts) + ("  *" if row.get("best") else "")


class Progress(Callback):
    """mode: 'auto' (rich on a terminal, plain otherwise), 'rich', 'plain' or 'quiet'."""

    def __init__(self, mode: str = "auto", main_metric: str = "val.loss", stream=None, warnings: Sequence[str] = ()):
        self.stream = stream or sys.stdout
        self.warnings = list(warnings)  # printed before the first epoch (e.g. the data's class balance)
        if mode == "auto":
            mode = "rich" if self.stream.isatty() else "plain"
        self.mode, self.main_metric = mode, main_metric
        self.bar = None
        self.task = None
        self.last_loss: float | None = None
        self.epoch_started = time.perf_counter()
        self.samples = 0
        self.per_sample, self.unit = 1, "samples/s"

    def fit_start(self, loop) -> None:
        if self.mode != "quiet":
            for warning in self.warnings:
                print(f"warning: {warning}", file=self.stream, flush=True)
        if self.mode != "rich":
            return
        if task_of(loop.data.spec).causal:  # language models: every token of a window is a prediction
            self.per_sample, self.unit = loop.data.splits["train"].inputs.shape[1], "tokens/s"
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[metric]}"),
            TextColumn("{task.fields[speed]} " + self.unit),
            TimeRemainingColumn(),
            transient=True,
        )
        self.bar.start()
        total = loop.total_steps
        self.task = self.bar.add_task(
            "train", total=total, completed=loop.state.step, epoch="-", loss="-", metric="", speed="-"
        )

    def epoch_start(self, loop) -> None:
        self.epoch_started = time.perf_counter()
        self.samples = 0

    def step_end(self, loop, loss: float | None) -> None:
        if self.bar is None:
            return
        self.samples += loop.settings.batch_size * self.per_sample
        fields = {"epoch": f"{loop.state.epoch + 1}/{loop.epochs}"}
        if loss is not None:
            elapsed = time.perf_counter() - self.epoch_started
            fields.update(loss=f"{loss:.4f}", speed=f"{self.samples / max(elapsed, 1e-9):.0f}")
        self.bar.update(self.task, advance=1, **fields)

    def epoch_end(self, loop, row: dict[str, Any]) -> None:
        line = format_row(row, loop.epochs, self.main_metric)
        if self.bar is not None:
            value = row.get(self.main_metric)
            if value is not None:
                self.bar.update(self.task, metric=f"{self.main_metric} {value:.4f}")
            self.bar.console.print(line, highlight=False)
        elif self.mode == "plain":
            print(line, file=self.stream, flush=True)

    def fit_end(self, loop, status: str) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
