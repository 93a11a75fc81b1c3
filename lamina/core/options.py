"""The base class of every typed options section: unknown keys are errors, each setting is declared once, and
the string written below a field is its help (its description in `lamina models`, the JSON schema and errors)."""

from __future__ import annotations

from typing import Annotated, Any, ForwardRef

from pydantic import BaseModel, ConfigDict, Field

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

    # Not pydantic's use_attribute_docstrings: it costs seconds per import (lamina/core/docstrings.py).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), defer_build=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs inside pydantic's class creation, before it collects the fields, so the descriptions are part of
        # the schema it builds next (setting them afterwards would need a second build of every class).
        super().__init_subclass__(**kwargs)
        _describe_fields(cls)


def _describe_fields(cls: type) -> None:
    """Each field of `cls`'s own class statement with a docstring below it gets it as its description, added to
    its annotation as `Annotated[type, Field(description=...)]` (a description given to `Field()` wins)."""
    docstrings = attribute_docstrings(cls)
    annotations = cls.__dict__.get("__annotations__", {})
    for name, annotation in list(annotations.items()):
        if name in docstrings and not name.startswith("_") and "ClassVar" not in str(annotation):
            kind = ForwardRef(annotation) if isinstance(annotation, str) else annotation  # `from __future__`
            annotations[name] = Annotated[kind, Field(description=docstrings[name])]
