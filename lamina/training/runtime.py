"""Hardware: pick the device and the number of CPU threads, and whether kernels must be deterministic."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from lamina.core.errors import ConfigError, Problem

__all__ = [
    "select_device",
    "set_threads",
    "set_deterministic",
    "default_threads",
    "auto_threads",
    "keep_freed_memory",
    "SMALL_BATCH_FLOPS",
]

# Below this many forward FLOPs per batch, one thread beats several: waking OpenMP workers for each small op
# costs more than the work (measured crossover ≈ 350 MFLOP on 2 cores; docs/performance.md).
SMALL_BATCH_FLOPS = 400e6


def auto_threads(batch_flops: float) -> int:
    """The default thread count for a training batch of `batch_flops` forward FLOPs. It depends only on the
    config and the machine, never on the current load, so the same seed gives the same numbers on re-run."""
    return 1 if batch_flops < SMALL_BATCH_FLOPS else default_threads()


def default_threads() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    count = threads or default_threads()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def select_device(name: str) -> torch.device:
    """'auto' → cuda, then mps, then cpu; an explicit device that is absent is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }[kind]
    if not available:
        raise ConfigError(
            [Problem("runtime.device", f"is {name!r} but this machine has no {kind} device", "use auto or cpu")]
        )
    if kind == "cuda" and ":" in name and int(name.split(":")[1]) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(
            [
                Problem(
                    "runtime.device",
                    f"is {name!r} but only {count} CUDA device(s) exist",
                    f"use cuda:0 … cuda:{count - 1}",
                )
            ]
        )
    return torch.device(name)


def set_deterministic(deterministic: bool) -> None:
    """Deterministic kernels or the fastest ones. CPU kernels give the same bits run after run either way; on
    CUDA, cuDNN's autotuned convolutions and atomic-add reductions do not, so a resumed or repeated GPU run
    matches bitwise only with this on. Ops without a deterministic version warn (PyTorch's `warn_only`)."""
    if not deterministic and not torch.are_deterministic_algorithms_enabled():
        # already off (the default): torch.use_deterministic_algorithms would import torch._dynamo and
        # torch._inductor (seconds) just to leave things as they are
        return
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matmuls; read when cuBLAS starts, so set it early
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        torch.backends.cudnn.benchmark = False  # autotuning may pick a different kernel each run


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for the next allocation instead of returning it to the system.

    By default glibc serves each block over 32 MiB with a fresh mmap and unmaps it on free, so every large
    activation of every step is page-faulted in again: on this machine a sixth to a fifth of a conv net's step time
    went to the kernel (docs/performance.md). Raising the mmap and trim thresholds to 1 GiB makes the heap reuse
    those pages; the process keeps its peak memory instead of shrinking between steps. Process-wide and
    irreversible; a no-op (False) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
