"""Plain-text tables that read the same on a terminal, in a pipe and in a test."""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from typing_extensions import TypeAliasType

from lamina.core.docstrings import help_text
from lamina.core.registry import RegistryChoice

__all__ = ["print_table", "options_table", "type_name"]


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def type_name(annotation: Any) -> str:
    """A short readable type: 'int', 'list[int]', 'max|avg|none', 'float | none'."""
    if isinstance(annotation, TypeAliasType):  # a named type such as Augmentations: what it stands for
        return type_name(annotation.__value__)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "|".join(str(value) for value in typing.get_args(annotation))
    if origin is typing.Annotated:
        marks = [mark for mark in annotation.__metadata__ if isinstance(mark, RegistryChoice)]
        return f"{marks[0]} (by name)" if marks else type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join("none" if arg is type(None) else type_name(arg) for arg in typing.get_args(annotation))
    if origin is list:
        return f"list[{type_name(typing.get_args(annotation)[0])}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"typing\.|<class '|'>", "", str(annotation))


def options_table(options_class: Any, prefix: str = "") -> None:
    """Each option of a config class: name, type, default and its help (whole sentences: `help_text`); nested
    option classes follow."""

    rows, nested = [], []
    for name, field in options_class.model_fields.items():
        if name == "name":
            continue
        if field.default is not PydanticUndefined:
            default = field.default
        elif field.default_factory is not None:
            default = field.default_factory()
        else:
            default = "(required)"
        if isinstance(default, list) and default and isinstance(default[0], BaseModel):
            default = [item.model_dump(exclude_defaults=True) for item in default]
        rows.append([f"{prefix}{name}", type_name(field.annotation), _short(default), help_text(field.description)])
        inner = typing.get_args(field.annotation) or (field.annotation,)
        nested += [arg for arg in inner if isinstance(arg, type) and issubclass(arg, BaseModel)]
    if rows:
        print_table(["option", "type", "default", "help"], rows)
    else:
        print("(no options)")
    for inner_class in dict.fromkeys(nested):
        print(f"\n  {inner_class.__name__}: {help_text(inner_class.__doc__)}")
        options_table(inner_class, prefix="  ")


def _short(value: Any) -> str:
    text = "none" if value is None else str(value).replace("'", "")
    if isinstance(value, bool):
        text = text.lower()
    return text if len(text) <= 40 else text[:37] + "..."
