"""Shared test set-up: one CPU thread (stable timing and bitwise-reproducible numbers), data paths, helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read once per process when cuBLAS starts (CUDA only)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def shared_data(name: str) -> Path:
    """A data set folder in ../shared/datasets, or skip the test cleanly when it is absent."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"data set {name} not found at {path}")
    return path


def run_cli(*arguments: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """Run `lamina ARGUMENTS` as a user would; returns the CompletedProcess (text)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lamina", *arguments],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


# Tests that compare weights bit for bit (resume, repeat runs) hold on CPU as is; on a CUDA machine, where `auto`
# picks the GPU, they need deterministic kernels (docs/guide.md, on resume), which this runtime asks for.
EXACT_RUNTIME = {"threads": 1, **({"deterministic": True} if torch.cuda.is_available() else {})}


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def tiny_config(**train) -> dict:
    """A seconds-long digits run with a small CNN, for tests of the machinery (not of accuracy)."""
    return {
        "seed": 3,
        "data": {"name": "digits"},
        "model": {"name": "cnn", "blocks": [8, {"channels": 16, "pool": "none"}], "dropout": 0.2},
        "train": {
            "epochs": 3,
            "batch_size": 64,
            "optimizer": {"name": "adamw", "learning_rate": 0.01},
            "schedule": "one_cycle",
            "log_every_steps": 5,
            **train,
        },
        "runtime": dict(EXACT_RUNTIME),
    }
