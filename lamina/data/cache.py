"""Decode once: image files become a uint8 tensor file in a cache folder, keyed by what they were made from.

The key hashes each source's resolved path, size and modification time plus the decoding options, so editing,
replacing or touching a source makes a new entry, and a read-only data folder is never written to. The cache
holds safetensors (tensors) beside JSON (names, counts), never pickles.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor

__all__ = ["cache_folder", "cached", "source_key"]

FORMAT = 1


def cache_folder(option: str | None) -> Path:
    """`data.cache_dir`, else $LAMINA_CACHE_DIR, else $XDG_CACHE_HOME/lamina or ~/.cache/lamina."""
    if option:
        return Path(option).expanduser()
    if os.environ.get("LAMINA_CACHE_DIR"):
        return Path(os.environ["LAMINA_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lamina"


def source_key(paths: list[Path], options: dict[str, Any]) -> str:
    """A hash of the sources' identities (path, size, mtime) and the options that shape the decoded tensors."""
    parts: list[Any] = [FORMAT, options]
    for path in paths:
        stat = path.stat()
        parts.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cached(
    folder: Path, key: str, build: Callable[[], tuple[dict[str, Tensor], dict]]
) -> tuple[dict[str, Tensor], dict, bool]:
    """(tensors, record, was_cached): read `key` from `folder`, or `build()` it and store it there.

    A folder that cannot be written is not an error: the data is decoded again next time."""
    tensors_path, record_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    if tensors_path.is_file() and record_path.is_file():
        try:
            return load_file(str(tensors_path)), json.loads(record_path.read_text()), True
        except (OSError, ValueError):
            pass  # a damaged entry is rebuilt below
    tensors, record = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = tensors_path.with_name(tensors_path.name + f".{os.getpid()}.partial")
        save_file({name: value.contiguous() for name, value in tensors.items()}, str(partial))
        record_path.write_text(json.dumps(record))
        os.replace(partial, tensors_path)  # the tensors appear last, so a half-written entry is never read
    except OSError:
        pass
    return tensors, record, False
