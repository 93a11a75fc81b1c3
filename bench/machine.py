"""The machine a benchmark ran on, as docs/benchmarks.md records it (the bench scripts import it: they run as
`python bench/NAME.py`, with this folder first on sys.path): lamina's own cpu_model."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for lamina

from lamina.core.machine import cpu_model  # noqa: E402

__all__ = ["cpu_model"]
