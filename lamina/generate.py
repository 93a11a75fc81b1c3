"""`lamina generate RUN_DIR`: new samples from a trained generative model (VAE images, language-model text).

A model family that can generate registers a function under its own model name, with the options it takes:

    @generators.register("transformer", config=TextGenerationOptions)
    def generate_text(run, options) -> dict: ...   # {"text": ...} or {"path": ...}
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lamina.errors import ConfigError, Problem, RunError
from lamina.registry import Registry

__all__ = ["generators", "generate"]

generators = Registry("generator")


def generate(run, **options: Any) -> dict[str, Any]:
    """Generate with a run's model; `options` are the family's generation options (None values are dropped)."""
    from lamina.config.loading import problems_from

    family = run.config.model.name
    if family not in generators:
        able = ", ".join(generators.names()) or "none yet"
        raise RunError(f"model family {family!r} cannot generate samples", f"families that can: {able}")
    entry = generators.get(family)
    given = {name: value for name, value in options.items() if value is not None}
    try:
        parsed = entry.config.model_validate({"name": family, **given})
    except ValidationError as error:
        problems = problems_from(error, entry.config)
        raise ConfigError([Problem(f"--{p.path.replace('_', '-')}", p.message, p.hint) for p in problems]) from None
    return entry.function(run, parsed)
