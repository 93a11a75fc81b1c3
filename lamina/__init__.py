"""lamina: train, understand and ship neural networks from one YAML file.

    >>> import lamina
    >>> run = lamina.train("configs/digits_cnn.yaml", overrides={"train.epochs": 3})  # doctest: +SKIP
    >>> run.metrics["test"]["accuracy"]  # doctest: +SKIP

The public names are imported lazily, so `import lamina` (and `lamina --help`) does not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "train",
    "resume",
    "load_run",
    "Run",
    "build_model",
    "load_config",
    "DataSpec",
    "LaminaError",
    "ConfigError",
    "DataError",
    "ModelError",
    "RunError",
    "__version__",
]

_HOMES = {
    "train": "lamina.pipeline",
    "resume": "lamina.pipeline",
    "load_run": "lamina.run",
    "Run": "lamina.run",
    "build_model": "lamina.models",
    "load_config": "lamina.config",
    "DataSpec": "lamina.data.spec",
    "LaminaError": "lamina.errors",
    "ConfigError": "lamina.errors",
    "DataError": "lamina.errors",
    "ModelError": "lamina.errors",
    "RunError": "lamina.errors",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
