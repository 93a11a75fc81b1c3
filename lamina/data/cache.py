"""Decode once: image files become a uint8 tensor file in a cache folder, keyed by what they were made from.

The key hashes every source file's path, size and modification time (for an archive: the archive's) plus the
decoding options, so editing, replacing, adding or touching any image makes a new entry, and a read-only data
folder is never written to. A damaged entry is decoded again, and a cache folder that cannot be written keeps the
decode in memory, each with a note. The cache holds safetensors (tensors) beside JSON (names, counts), never
pickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

__all__ = ["cache_folder", "cached", "source_key"]

FORMAT = 2  # 2: one (name, size, mtime) per source file, not per folder


def cache_folder(option: str | None) -> Path:
    """`data.cache_dir`, else $LAMINA_CACHE_DIR, else $XDG_CACHE_HOME/lamina or ~/.cache/lamina."""
    if option:
        return Path(option).expanduser()
    if os.environ.get("LAMINA_CACHE_DIR"):
        return Path(os.environ["LAMINA_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lamina"


def source_key(paths: list[Path], options: dict[str, Any], root: Path | None = None) -> str:
    """A hash of every source file's identity (path, size, mtime) and the options that shape the decoded tensors.

    Files under `root` are named relative to it (the root is resolved once, not each of thousands of files)."""
    parts: list[Any] = [FORMAT, options, str(root.resolve()) if root else None]
    for path in paths:
        stat = path.stat()
        name = str(path.relative_to(root)) if root else str(path.resolve())
        parts.append([name, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cached(
    folder: Path,
    key: str,
    build: Callable[[], tuple[dict[str, Tensor], dict]],
    what: str,
    valid: Callable[[dict[str, Tensor], Any], bool] = lambda tensors, record: True,
) -> tuple[dict[str, Tensor], dict, str, list[str]]:
    """(tensors, record, how, notes): read `key` from `folder`, or `build()` it and store it there. `how` is
    "cached" (read back), "stored" (built and written) or "memory" (built; the folder cannot be written).

    Neither a damaged entry (unreadable, or not `valid`) nor a folder that cannot be written is an error: the
    entry is built again, and kept in memory only if it cannot be written; `notes` say so, naming `what`."""
    tensors_path, record_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    notes = []
    if tensors_path.is_file() and record_path.is_file():
        try:
            tensors, record = load_file(str(tensors_path)), json.loads(record_path.read_text())
            if valid(tensors, record):
                return tensors, record, "cached", notes
        except (OSError, ValueError, SafetensorError):
            pass
        notes.append(f"the cached decode of {what} was damaged; decoded again")
    tensors, record = build()
    suffix = f".{os.getpid()}.partial"
    partials = [tensors_path.with_name(tensors_path.name + suffix), record_path.with_name(record_path.name + suffix)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({name: value.contiguous() for name, value in tensors.items()}, str(partials[0]))
        partials[1].write_text(json.dumps(record))
        os.replace(partials[1], record_path)
        os.replace(partials[0], tensors_path)  # the tensors appear last, so a half-written entry is never read
    except (OSError, SafetensorError) as error:
        for partial in partials:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        notes.append(
            f"the cache folder {folder} cannot be written ({reason}); the decoded images are kept in memory for "
            "this run only"
        )
        return tensors, record, "memory", notes
    return tensors, record, "stored", notes
