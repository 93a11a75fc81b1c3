"""The base class of every typed options section: unknown keys are errors, each setting is declared once, and
the string written below a field is its help (its description in `lamina models`, the JSON schema and errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lamina.core.docstrings import attribute_docstrings

__all__ = ["Options"]


class Options(BaseModel):
    """A section of the config. Subclasses declare each setting once: a typed default and a docstring below it.

    Example:
        >>> class Head(Options):
        ...     width: int = 8
        ...     '''Hidden units.'''
        >>> Head(width=4).width, Head.model_fields["width"].description
        (4, 'Hidden units.')
    """

    # Not pydantic's use_attribute_docstrings: it costs seconds per import (lamina/core/docstrings.py). The schema
    # is built on first use (defer_build), after the descriptions below are set: listing the options of every
    # entry (lamina models, lamina datasets) never builds a schema at all.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), defer_build=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        docstrings = attribute_docstrings(cls)
        fields = cls.model_fields
        for name in cls.__dict__.get("__annotations__", {}):
            if name in docstrings and name in fields and fields[name].description is None:
                fields[name].description = docstrings[name]  # as use_attribute_docstrings sets them
        if cls.__pydantic_complete__:  # built already (defer_build turned off): build again with the descriptions
            cls.model_rebuild(force=True)
