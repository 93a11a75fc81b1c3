"""lamina: train, understand and ship neural networks from one YAML file.

    >>> import lamina, tempfile
    >>> run = lamina.train("configs/digits_cnn.yaml", overrides={"train.epochs": 3}, runs_dir=tempfile.mkdtemp(),
    ...                    progress="quiet")
    >>> run.metrics["test"]["accuracy"] > 0.9
    True

The public names are imported lazily, so `import lamina` (and `lamina --help`) does not load PyTorch. The package
is layered, each layer importing only those below it (docs/architecture.md):

    core → tasks → data → bundle → models → training → artifacts → insight → config → run → pipeline → ensemble, generate, report, export, serve → cli
"""

from __future__ import annotations

import importlib
from typing import Any

from lamina.core.version import __version__

__all__ = [
    "train",
    "resume",
    "load_run",
    "Run",
    "load_bundle",
    "Bundle",
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
    "load_bundle": "lamina.bundle",
    "Bundle": "lamina.bundle",
    "build_model": "lamina.models.registry",
    "load_config": "lamina.config.loading",
    "DataSpec": "lamina.data.spec",
    "LaminaError": "lamina.core.errors",
    "ConfigError": "lamina.core.errors",
    "DataError": "lamina.core.errors",
    "ModelError": "lamina.core.errors",
    "RunError": "lamina.core.errors",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
