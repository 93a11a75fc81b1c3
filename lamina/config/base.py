"""The base class of every typed options section: unknown keys are errors, each setting is declared once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lamina.config.docstrings import attribute_docstrings

__all__ = ["Options"]


class Options(BaseModel):
    """A section of the config. Subclasses declare each setting once: a typed default and a docstring below it."""

    # Not pydantic's use_attribute_docstrings: it costs seconds per import (lamina/config/docstrings.py).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _describe_fields(cls)


def _describe_fields(cls: type[BaseModel]) -> None:
    """Each field without a description takes the docstring below it; the schema is rebuilt to include them."""
    docstrings = attribute_docstrings(cls)
    undescribed = [field_name for field_name, field in cls.model_fields.items() if field.description is None]
    described = [field_name for field_name in undescribed if field_name in docstrings]
    for field_name in described:
        cls.model_fields[field_name].description = docstrings[field_name]
    if described and cls.__pydantic_complete__:
        # The JSON schema reads descriptions from the core schema, built before this hook runs. Depth 0 reuses
        # the namespace saved when the class was made, rather than this function's locals.
        cls.model_rebuild(force=True, _parent_namespace_depth=0)
