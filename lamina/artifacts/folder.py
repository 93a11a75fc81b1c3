"""The run folder: everything a run leaves behind, written so that nothing already written is lost.

runs/<id>/
    config.yaml        the resolved config (every default filled in)
    data.json          the data spec and preprocessing (how raw inputs become model inputs)
    metrics.jsonl      one JSON row per logged step and per epoch, flushed every epoch
    summary.json       status, final metrics, epochs, steps, wall time
    model.safetensors  the final weights (the best epoch's with early stopping's restore_best)
    checkpoints/last/  resumable state; checkpoints/best/ the best epoch so far
    plots/             learning curves and confusion matrices (PNG)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from lamina.core.errors import RunError

__all__ = ["RunFolder", "atomic_write", "write_json", "list_runs"]


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename over it: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=2, default=str) + "\n")


class RunFolder:
    """Paths and atomic writes for one run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunFolder:
        """A new, empty folder `runs_dir/<YYYYmmdd-HHMMSS>-<name>` (suffixed -2, -3… if taken)."""
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(
                f"cannot create the runs folder {runs_dir}: {error.strerror}",
                "pass --runs-dir with a folder you can write to",
            ) from None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
        for attempt in range(1, 1000):
            path = runs_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
            except OSError as error:
                raise RunError(
                    f"cannot create a run folder in {runs_dir}: {error.strerror}",
                    "pass --runs-dir with a folder you can write to",
                ) from None
        raise RunError(f"cannot create a run folder in {runs_dir}", "remove old runs")

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder; RunError naming what is missing otherwise."""
        folder = cls(path)
        if not folder.path.is_dir():
            raise RunError(f"run folder {str(path)!r} does not exist", "list runs with 'lamina runs'")
        if not folder.config.is_file():
            raise RunError(f"{path} is not a lamina run folder (no config.yaml)", "pass a folder under runs/")
        return folder

    # paths
    config = property(lambda self: self.path / "config.yaml")
    data = property(lambda self: self.path / "data.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    summary_path = property(lambda self: self.path / "summary.json")
    weights = property(lambda self: self.path / "model.safetensors")
    last = property(lambda self: self.path / "checkpoints" / "last")
    best = property(lambda self: self.path / "checkpoints" / "best")
    plots = property(lambda self: self.path / "plots")

    @property
    def id(self) -> str:
        return self.path.name

    def summary(self) -> dict[str, Any]:
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return {}

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        summary = {**self.summary(), **fields}
        write_json(self.summary_path, summary)
        return summary

    def history(self) -> list[dict[str, Any]]:
        """The epoch rows of metrics.jsonl (a torn last line from a crash is skipped)."""
        rows = []
        if self.metrics.is_file():
            for line in self.metrics.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("kind") == "epoch":
                    rows.append(row)
        return rows


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """One record per run folder under `runs_dir`, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    records = []
    for path in sorted(runs_dir.iterdir(), reverse=True):
        if not (path / "config.yaml").is_file():
            continue
        summary = RunFolder(path).summary()
        records.append({"id": path.name, "path": str(path), **summary})
    return records
