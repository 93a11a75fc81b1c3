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

import errno
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lamina.core.errors import RunError, resolved

__all__ = ["RunFolder", "atomic_write", "write_json", "new_file_mode", "list_runs", "disk_error", "DISK_ERRORS"]

# the disk is full, over quota or a size limit, read-only, or not ours: a user's problem to fix, not lamina's
DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def disk_error(error: OSError) -> RunError | None:
    """A RunError naming the file, for an OSError that says the disk cannot take a write; None for others.

    Example:
        >>> print(disk_error(OSError(errno.ENOSPC, "No space left on device", "runs/x/metrics.jsonl")))
        cannot write runs/x/metrics.jsonl: No space left on device
          hint: free some space (or raise the file size limit, or pass --runs-dir on another disk); ...
    """
    if error.errno not in DISK_ERRORS:
        return None
    where = error.filename or "a file of the run"
    return RunError(
        f"cannot write {where}: {error.strerror or error}",
        "free some space (or raise the file size limit, or pass --runs-dir on another disk); a run "
        "stopped this way resumes from its last checkpoint: lamina train --resume RUN_DIR",
    )


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename over it: readers see the old or the new file. The file
    gets the permissions of any new file (0644 under the usual umask 022; tempfile.mkstemp's would be 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def new_file_mode() -> int:
    """The permissions `open()` gives a new file: 0o666 less the process's umask (0o644 under umask 022), for files
    that a library writes with narrower ones."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # Linux: read without changing it
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore, the only way to read it
    os.umask(mask)
    return 0o666 & ~mask


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=2, default=str) + "\n")


class RunFolder:
    """Paths and atomic writes for one run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunFolder:
        """A new, empty folder `runs_dir/<YYYYmmdd-HHMMSS>-<name>` (suffixed -2, -3… if taken)."""
        runs_dir = Path(runs_dir).expanduser()
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
            raise RunError(f"run folder {str(path)!r} does not exist{resolved(path)}", "list runs with 'lamina runs'")
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

    lock_path = property(lambda self: self.path / "lock")

    @property
    def id(self) -> str:
        return self.path.name

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's lock file (pid, host, since) while training it: a second `lamina train --resume` of the
        same run is refused while the first one lives; a lock left by a process that died is taken over."""
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                descriptor = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self.lock_holder()
                if holder is not None and _alive(holder):
                    raise RunError(
                        f"run {self.path} is being trained by process {holder.get('pid')} on "
                        f"{holder.get('host')} since {holder.get('since')}",
                        f"wait for it or stop it; if that process is gone, delete {self.lock_path}",
                    ) from None
                self.lock_path.unlink(missing_ok=True)  # left by a process that died: stale
                continue
            try:
                with os.fdopen(descriptor, "w") as handle:
                    json.dump(record, handle)
            except OSError:
                self.lock_path.unlink(missing_ok=True)
                raise
            break
        else:
            raise RunError(f"cannot take the lock {self.lock_path}", "delete it if no process is training the run")
        try:
            yield
        finally:
            if self.lock_holder() == record:
                self.lock_path.unlink(missing_ok=True)

    def lock_holder(self) -> dict | None:
        """Who holds the lock ({"pid", "host", "since"}), or None; a damaged lock file counts as no holder."""
        try:
            holder = json.loads(self.lock_path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def training_now(self) -> bool:
        """Whether a live process holds the run's lock."""
        holder = self.lock_holder()
        return holder is not None and _alive(holder)

    def summary(self) -> dict[str, Any]:
        """summary.json as a dict; {} when it is missing, and {"status": "damaged"} when it is not a JSON object."""
        try:
            summary = json.loads(self.summary_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {"status": "damaged"}
        return summary if isinstance(summary, dict) else {"status": "damaged"}

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        summary = {**self.summary(), **fields}
        write_json(self.summary_path, summary)
        return summary

    def history(self, kind: str = "epoch") -> list[dict[str, Any]]:
        """The rows of one kind (epoch, step, gradients, activations, updates) of metrics.jsonl."""
        return [row for row in self.rows() if row.get("kind") == kind]

    def rows(self) -> list[dict[str, Any]]:
        """Every row of metrics.jsonl, in order (a torn last line from a crash is skipped)."""
        rows = []
        if self.metrics.is_file():
            for line in self.metrics.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
        return rows


def _alive(holder: dict) -> bool:
    """Whether the lock's holder still runs: a process of this host that exists; on another host, assumed so."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid")), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    except (TypeError, ValueError):
        return False
    return True


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """One record per run folder under `runs_dir`, newest first. A run whose summary says "running" while no live
    process holds its lock is "stopped" (killed, or its machine went down)."""
    runs_dir = Path(runs_dir).expanduser()
    if not runs_dir.is_dir():
        return []
    records = []
    for path in sorted(runs_dir.iterdir(), reverse=True):
        if not (path / "config.yaml").is_file():
            continue
        folder = RunFolder(path)
        record = {"id": path.name, "path": str(path), **folder.summary()}
        if record.get("status") == "running" and not folder.training_now():
            record["status"] = "stopped"
        records.append(record)
    return records
