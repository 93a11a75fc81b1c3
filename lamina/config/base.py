"""The base class of every typed options section: unknown keys are errors, each setting is declared once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Options"]


class Options(BaseModel):
    """A section of the config. Subclasses declare each setting once: a typed default and a docstring below it."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_assignment=True,
        protected_namespaces=(),
    )
