"""The base class of every typed options section: unknown keys are errors, each setting is declared once, and
the string written below a field is its help (its description in `lamina models`, the JSON schema and errors).

One rule for numbers holds in every section, declared here once: a float is finite (NaN and ±infinity are errors)
unless its field allows them (`Field(allow_inf_nan=True)`, said in its docstring); true and false are never
numbers (pydantic would read `epochs: true` as 1); a whole number has no fraction (2.0 is 2, 2.5 is an error).
Ranges are declared on the field, `Field(ge=..., le=...)` or a shared type such as `Seed`, so they show in the
JSON Schema and errors name the dotted path. A subclass that declares a field again keeps a declared range.
"""

from __future__ import annotations

import copy
import functools
import types
from collections import Counter
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import BaseMetadata
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError, core_schema
from typing_extensions import TypeAliasType

from lamina.core.docstrings import attribute_docstrings

__all__ = ["Options", "Names", "Each", "Seed", "MAX_SEED"]

# Seeds are combined before they seed PyTorch's generators, e.g. (seed · 1,000,003 + epoch) · 7,919 + 29 for the
# augmentations of an epoch, and torch.Generator.manual_seed takes values below 2**64 only: the largest seed whose
# every combination fits is 2**31 - 1 (a 32-bit signed integer, as most tools accept).
MAX_SEED = 2**31 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class _Distinct:
    """A list whose items are distinct ("uniqueItems" in the JSON Schema): a name given twice is an error."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_distinct, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> dict:
        return {**handler(schema), "uniqueItems": True}


def _distinct(value: list) -> list:
    counts = Counter(value)
    repeated = [item for item, count in counts.items() if count > 1]
    if repeated:
        said = []
        for item in repeated:
            places = [f"[{index}]" for index, other in enumerate(value) if other == item]
            times = "twice" if len(places) == 2 else f"{len(places)} times"
            said.append(f"{item!r} {times}, at {', '.join(places[:-1])} and {places[-1]}")
        raise PydanticCustomError("duplicate_item", "lists {said}; list each once", {"said": "; ".join(said)})
    return value


class Each:
    """Bounds (Field's ge, gt, le, lt) on every item of a list or tuple or every value of a mapping, written on the
    container so that its type still reads plainly (`tuple[float, float]` in `lamina models`); pydantic checks
    them with each item's path and writes them into the JSON Schema.

    Example:
        >>> class Zoom(Options):
        ...     scale: Annotated[tuple[float, float], Each(gt=0)] = (1.0, 1.0)
        >>> Zoom.model_json_schema()["properties"]["scale"]["prefixItems"][0]
        {'exclusiveMinimum': 0, 'type': 'number'}
    """

    def __init__(self, **bounds: float):
        self.bounds = bounds

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        schema = copy.deepcopy(handler(source))
        items = schema.get("items_schema") or schema.get("values_schema")
        for item in items if isinstance(items, list) else [items]:
            item.update(self.bounds)  # type: ignore[union-attr]
        return schema

    def __repr__(self) -> str:
        return f"Each({', '.join(f'{key}={value}' for key, value in self.bounds.items())})"


Names = Annotated[list[str], _Distinct()]
"""A list of names (classes, modules, metrics, columns), each given once."""


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
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), defer_build=True, allow_inf_nan=False
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        docstrings = attribute_docstrings(cls)
        fields = cls.model_fields
        for name in cls.__dict__.get("__annotations__", {}):
            if name in docstrings and name in fields and fields[name].description is None:
                fields[name].description = docstrings[name]  # as use_attribute_docstrings sets them
            _keeps_range(cls, name)
            if name in fields and _reads_numbers(fields[name].annotation):
                fields[name].metadata.append(BeforeValidator(functools.partial(_no_bools, fields[name].annotation)))
        if cls.__pydantic_complete__:  # built already (defer_build turned off): build again with the descriptions
            cls.model_rebuild(force=True)

    def optional_packages(self) -> dict[str, str]:
        """Packages outside lamina's base install that these options need, by the option that asks for one
        ('' for the section itself): {'tokenizer': 'tokenizers'}. Each is the module's import name and its name
        in the package index. A run checks them before it builds anything (lamina/core/packages.py)."""
        return {}


def _no_bools(annotation: Any, value: Any) -> Any:
    """A field's value, unless it holds a true or false where the field reads a number."""
    found = _bool_as_number(value, annotation)
    if found is not None:
        at, whole, received = found
        expected, example = ("a whole number", "10") if whole else ("a number", "0.001")
        raise PydanticCustomError(
            "bool_for_number",
            "expected {expected}, received {received} (bool); write a number such as {example}, not true or false",
            {"at": at, "expected": expected, "received": str(received).lower(), "example": example},
        )
    return value


def _keeps_range(cls: type[BaseModel], name: str) -> None:
    """A field declared again in a subclass (for its own default or help) keeps the range a base declares."""
    field = cls.model_fields.get(name)
    for base in cls.__mro__[1:]:
        inherited = getattr(base, "model_fields", {}).get(name)
        if inherited is None:
            continue
        if _bounds(inherited) and field is not None and not _bounds(field):
            raise TypeError(
                f"{cls.__name__}.{name} drops the range {base.__name__}.{name} declares: declare it again, "
                "e.g. Field(default, ge=..., le=...)"
            )
        return


def _bounds(field: Any) -> list:
    return [mark for mark in field.metadata if isinstance(mark, (BaseMetadata, Each))]


def _bool_as_number(value: Any, annotation: Any) -> tuple[str, bool, bool] | None:
    """(where in `value`, whether a whole number is expected, the bool) for a true/false that `annotation` would
    read as a number; None when there is none."""
    if isinstance(value, bool):
        kinds: set[type] = set()
        for member in _members(annotation):
            if get_origin(member) is Literal:
                kinds.update(type(item) for item in get_args(member))
            elif member in (bool, int, float):
                kinds.add(member)
        if bool in kinds or not kinds & {int, float}:
            return None
        return "", float not in kinds, value
    if isinstance(value, (list, tuple, dict)):
        for member in _members(annotation):
            origin, arguments = get_origin(member), get_args(member)
            if isinstance(value, dict) and origin is dict and len(arguments) == 2:
                items = [(f".{key}", item, arguments[1]) for key, item in value.items()]
            elif not isinstance(value, dict) and origin in (list, tuple, set, frozenset) and arguments:
                fixed = origin is tuple and arguments[-1] is not Ellipsis
                items = [
                    (f"[{index}]", item, arguments[index] if fixed else arguments[0])
                    for index, item in enumerate(value)
                    if not fixed or index < len(arguments)
                ]
            else:
                continue
            for at, item, item_type in items:
                found = _bool_as_number(item, item_type)
                if found is not None:
                    return at + found[0], found[1], found[2]
            return None
    return None


def _reads_numbers(annotation: Any) -> bool:
    """Whether an annotation takes numbers anywhere (in lists, tuples and mappings too)."""
    for member in _members(annotation):
        if member in (int, float) or (get_origin(member) is Literal and any(type(v) is int for v in get_args(member))):
            return True
        if get_origin(member) in (list, tuple, set, frozenset, dict) and any(
            _reads_numbers(argument) for argument in get_args(member) if argument is not Ellipsis
        ):
            return True
    return False


def _members(annotation: Any) -> list[Any]:
    """The types a value may take: named types, Annotated and unions flattened."""
    if isinstance(annotation, TypeAliasType):
        return _members(annotation.__value__)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for argument in get_args(annotation) for member in _members(argument)]
    return [annotation]
