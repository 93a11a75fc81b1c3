"""pydantic's validation errors → lamina Problems: a dotted path, what was received, what is allowed, how to fix
it (with a suggestion for misspelt names)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from typing_extensions import TypeAliasType

from lamina.core.errors import Problem, did_you_mean
from lamina.core.registry import RegistryChoice

__all__ = ["problems_from"]

_EXPECTED = {
    "int": ("a whole number", "write a number such as 10, without quotes"),
    "float": ("a number", "write a number such as 0.001, without quotes"),
    "bool": ("true or false", "write true or false"),
    "string": ("text", "write a quoted string"),
    "list": ("a list", "write a list such as [64, 32]"),
    "dict": ("a section of options", "write 'key: value' lines under it"),
    "model": ("a section of options", "write 'key: value' lines under it"),
}


def problems_from(error: ValidationError, root: type[BaseModel], prefix: str = "") -> list[Problem]:
    """Lamina problems for a pydantic error; `prefix` is the dotted path of `root` in the whole config.

    Example:
        >>> from lamina.core.options import Options
        >>> class Section(Options):
        ...     epochs: int = 1
        >>> try:
        ...     Section.model_validate({"epocs": 3})
        ... except ValidationError as error:
        ...     print(problems_from(error, Section, "train")[0])
        train.epocs: unknown option of train; did you mean 'epochs'? options: epochs
    """
    problems = []
    for item in error.errors(include_url=False):
        path, owner, choice = _walk(item["loc"], root)
        path = ".".join(part for part in (prefix, path) if part)
        problems.append(_problem(item, path, owner, choice))
    # the same message reached through several union members is said once
    unique = {str(problem): problem for problem in problems}
    return sorted(unique.values(), key=lambda problem: problem.path)


def _problem(item: dict, path: str, owner: type | None, choice: RegistryChoice | None) -> Problem:
    kind, received = item["type"], item.get("input")
    context = item.get("ctx") or {}
    key = path.rpartition(".")[2]
    if received is None and re.fullmatch(r"[^:\s]+:\S.*", key):  # YAML read {backbone:3} as {'backbone:3': None}
        name, _, value = key.partition(":")
        return Problem(path, "YAML needs a space after the colon of a key", f"write {{{name}: {value}}}, not {{{key}}}")
    if kind == "extra_forbidden":
        section, _, key = path.rpartition(".")
        options = list(owner.model_fields) if owner else []
        suggestion = did_you_mean(key, options)
        listing = ", ".join(option for option in options if option != "name")
        hint = f"did you mean {suggestion!r}? options: {listing}" if suggestion else f"options: {listing}"
        where = f"of {section}" if section else "section"
        if owner is not None and "name" in owner.model_fields and section:
            where = f"of {section} {owner.model_fields['name'].default!r}"
        return Problem(path, f"unknown option {where}", hint)
    if kind in ("union_tag_invalid", "union_tag_not_found") and choice is not None:
        if kind == "union_tag_not_found":
            return Problem(f"{path}.name", "is missing", f"choose one of: {', '.join(choice.registry.names())}")
        return choice.registry.unknown(context.get("tag"), f"{path}.name")
    if kind == "missing":
        return Problem(path, "is required", None)
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        suggestion = did_you_mean(str(received), allowed)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        return Problem(path, f"received {received!r}", f"{hint}allowed: {', '.join(allowed)}")
    family = kind.split("_")[0]
    if family in _EXPECTED and kind.endswith(("_type", "_parsing", "_from_float", "_fraction")):
        expected, hint = _EXPECTED[family]
        return Problem(path, f"expected {expected}, received {received!r} ({type(received).__name__})", hint)
    message = item["msg"].removeprefix("Value error, ")
    message = re.sub(r"^Input should be ", "should be ", message)
    item_of_list = re.match(r"^\[(\d+)\] (.*)$", message, re.S)  # a list's validator naming one of its items
    if item_of_list:
        path, message = f"{path}[{item_of_list.group(1)}]", item_of_list.group(2)
    if kind.startswith(("greater", "less", "too_")):
        message += f"; received {received!r}"
    return Problem(path, message, None)


def _walk(loc: tuple, root: type[BaseModel]) -> tuple[str, type | None, RegistryChoice | None]:
    """Dotted path for a pydantic location, dropping union tags; the options class that owns the last key; and
    the registry whose choice the location is, if it is one."""
    parts: list[str] = []
    owner: Any = root
    current: Any = root
    choice: RegistryChoice | None = None
    for element in loc:
        if isinstance(element, int):
            parts[-1] = f"{parts[-1]}[{element}]" if parts else f"[{element}]"
            if get_origin(current) is list:
                item = get_args(current)[0]
                choice = _choice(item) or choice
                current = _unwrap(item)
            continue
        if isinstance(current, list):  # a union: pick the member whose name is `element`
            chosen = [member for member in current if _tag(member) == element]
            if chosen:
                current = chosen[0]
                continue
            current = None
        choice = None
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            field = current.model_fields.get(element)
            annotation = _field_annotation(field) if field else None
            choice = _choice(annotation)
            current = _unwrap(annotation) if field else None
        else:
            owner = None
        parts.append(str(element))
    return ".".join(parts), owner if isinstance(owner, type) else None, choice


def _field_annotation(field: Any) -> Any:
    """A field's annotation with the metadata pydantic moved out of it (e.g. a registry's marker) put back."""
    if field.metadata:
        return Annotated[(field.annotation, *field.metadata)]
    return field.annotation


def _choice(annotation: Any) -> RegistryChoice | None:
    """The registry marker anywhere in an annotation (inside Optional, list or a named type too), if there is one."""
    if annotation is None:
        return None
    if isinstance(annotation, TypeAliasType):
        return _choice(annotation.__value__)
    if hasattr(annotation, "__metadata__"):
        marks = [mark for mark in annotation.__metadata__ if isinstance(mark, RegistryChoice)]
        if marks:
            return marks[0]
    for argument in get_args(annotation):
        found = _choice(argument)
        if found is not None:
            return found
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional and named types; a union of several option classes becomes a list of them."""
    if isinstance(annotation, TypeAliasType):
        return _unwrap(annotation.__value__)
    while get_origin(annotation) is not None and hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        members = [_unwrap(arg) for arg in get_args(annotation) if arg is not type(None)]
        flat = []
        for member in members:
            flat.extend(member if isinstance(member, list) else [member])
        models = [member for member in flat if isinstance(member, type) and issubclass(member, BaseModel)]
        if len(models) == 1:
            return models[0]
        return models or annotation
    return annotation


def _tag(member: Any) -> str | None:
    field = getattr(member, "model_fields", {}).get("name")
    return field.default if field is not None else None
