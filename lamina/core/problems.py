"""pydantic's validation errors → lamina Problems: a dotted path, what was received, what is allowed, how to fix
it (with a suggestion for misspelt names)."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from typing_extensions import TypeAliasType

from lamina.core.errors import Problem, did_you_mean
from lamina.core.registry import RegistryChoice

__all__ = ["problems_from"]

_UNIONS = (Union, types.UnionType)

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
    found = []
    for item in error.errors(include_url=False):
        path, owner, choice, annotation = _walk(item["loc"], root)
        path = ".".join(part for part in (prefix, path) if part)
        found.append((item, _problem(item, path, owner, choice, annotation)))
    # Several problems at one path come from the members of a union (`list[float] | Literal['balanced']`): those
    # saying the value is of another kind altogether go when another member says what is wrong with it.
    specific = [
        problem
        for item, problem in found
        if not _other_kind(item) and (item["type"] != "literal_error" or isinstance(item.get("input"), str))
    ]
    problems = [
        problem
        for item, problem in found
        if not (_other_kind(item) and any(other.path.startswith(problem.path) for other in specific))
    ]
    # the same message reached through several union members is said once
    unique = {str(problem): problem for problem in problems}
    return sorted(unique.values(), key=lambda problem: problem.path)


def _other_kind(item: dict) -> bool:
    """Whether a pydantic error says only that the value is of another kind (text for a list, a list for a name)."""
    kind = item["type"]
    return kind.endswith("_type") or (kind == "literal_error" and isinstance(item.get("input"), (list, tuple, dict)))


def _problem(item: dict, path: str, owner: type | None, choice: RegistryChoice | None, annotation: Any) -> Problem:
    kind, received = item["type"], item.get("input")
    context = item.get("ctx") or {}
    key = path.rpartition(".")[2]
    if received is None and re.fullmatch(r"[^:\s]+:\S.*", key):  # YAML read {backbone:3} as {'backbone:3': None}
        name, _, value = key.partition(":")
        return Problem(path, "YAML needs a space after the colon of a key", f"write {{{name}: {value}}}, not {{{key}}}")
    if kind in ("extra_forbidden", "invalid_key"):  # invalid_key: a key that is not text, e.g. YAML's `1: 2`
        section, _, key = path.rpartition(".")
        options = list(owner.model_fields) if owner else []
        suggestion = did_you_mean(key, options) if kind == "extra_forbidden" else None  # not for `1:`
        tagged = owner is not None and "name" in owner.model_fields and _tag(owner) is not None
        listing = ", ".join(option for option in options if option != "name" or not tagged)
        hint = f"did you mean {suggestion!r}? options: {listing}" if suggestion else f"options: {listing}"
        where = f"of {section}" if section else "of the config"
        if owner is not None and "name" in owner.model_fields and section:
            where = f"of {section} {owner.model_fields['name'].default!r}"
        return Problem(path, f"unknown option {where}", hint)
    if item["loc"] and item["loc"][-1] == "[key]":  # a key of a mapping such as unfreeze: {1: 2}
        return Problem(path, f"a key must be text, received {received!r} ({type(received).__name__})", None)
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
    if kind == "bool_for_number":  # lamina.core.options: true or false where a number belongs
        return Problem(path + context["at"], *item["msg"].split("; ", 1))
    if kind == "finite_number":
        described = f"{received!r} ({type(received).__name__})"
        return Problem(path, f"expected a finite number, received {described}", "write a number such as 0.001")
    if kind == "int_parsing_size" or (kind == "int_parsing" and _number_text(received)):
        return _not_whole(path, received, annotation)
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


def _number_text(value: Any) -> bool:
    """Whether `value` is text that reads as a number: YAML takes 1e3 (no dot) and 1_000 for text."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _not_whole(path: str, received: Any, annotation: Any) -> Problem:
    """A number (or text such as '1e23') that is no whole number in the field's range."""
    low, high = _limits(annotation)
    allowed = f" from {low} to {high}" if low is not None and high is not None else ""
    allowed = allowed or (
        f" of at least {low}" if low is not None else f" of at most {high}" if high is not None else ""
    )
    message = f"expected a whole number{allowed}, received {received!r} ({type(received).__name__})"
    if isinstance(received, str):
        number = float(received)
        whole = number == number and abs(number) != float("inf") and number == int(number)
        fits = whole and (low is None or number >= low) and (high is None or number <= high)
        hint = (
            f"write {int(number)}" if fits else f"write a whole number{' in that range' if allowed else ''}, in digits"
        )
        return Problem(path, message, f"YAML reads {received} as text; {hint}")
    return Problem(path, message, None)


def _limits(annotation: Any) -> tuple[int | None, int | None]:
    """The smallest and largest whole number an annotation's declared range allows (None: unbounded)."""
    marks: list = []
    while annotation is not None:
        if isinstance(annotation, TypeAliasType):
            annotation = annotation.__value__
        elif hasattr(annotation, "__metadata__"):
            for mark in annotation.__metadata__:
                marks += [*getattr(mark, "metadata", [])] if isinstance(mark, FieldInfo) else [mark]
            annotation = get_args(annotation)[0]
        else:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = members[0] if get_origin(annotation) in _UNIONS and len(members) == 1 else None
    low = high = None
    for mark in marks:
        if isinstance(getattr(mark, "ge", None), int) or isinstance(getattr(mark, "gt", None), int):
            low = mark.ge if hasattr(mark, "ge") else mark.gt + 1
        if isinstance(getattr(mark, "le", None), int) or isinstance(getattr(mark, "lt", None), int):
            high = mark.le if hasattr(mark, "le") else mark.lt - 1
    return low, high


def _walk(loc: tuple, root: type[BaseModel]) -> tuple[str, type | None, RegistryChoice | None, Any]:
    """Dotted path for a pydantic location, dropping union tags; the options class that owns the last key; the
    registry whose choice the location is, if it is one; and the annotation there (with its declared range)."""
    parts: list[str] = []
    owner: Any = root
    current: Any = root
    annotation: Any = None
    choice: RegistryChoice | None = None
    for element in loc:
        if element == "[key]":  # pydantic's mark for the key of a mapping: the path already ends with it
            continue
        model = isinstance(current, type) and issubclass(current, BaseModel)
        origin = get_origin(current)
        if origin in _UNIONS and isinstance(element, str):  # a tag naming one member of a union of plain types
            members = [arg for arg in get_args(current) if arg is not type(None)]
            words = {member: _word(member) for member in members}
            chosen = [member for member, word in words.items() if element.lower().startswith(word)]
            chosen += [member for member, word in words.items() if word in element.lower()]
            annotation = chosen[0] if chosen else None
            current = _unwrap(annotation)
            continue
        if origin is dict or (model and isinstance(element, int)):  # a key: of a mapping, or a section's non-text one
            parts.append(str(element))
            if model:
                owner = current
            annotation = get_args(current)[1] if origin is dict else None
            current, choice = _unwrap(annotation), None
            continue
        if isinstance(element, int):
            parts[-1] = f"{parts[-1]}[{element}]" if parts else f"[{element}]"
            arguments = get_args(current)
            if origin in (list, set, frozenset) or (origin is tuple and arguments[-1:] == (Ellipsis,)):
                annotation = arguments[0]
            elif origin is tuple and element < len(arguments):
                annotation = arguments[element]
            else:
                continue
            choice = _choice(annotation) or choice
            current = _unwrap(annotation)
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
            owner = annotation = None
        parts.append(str(element))
    return ".".join(parts), owner if isinstance(owner, type) else None, choice, annotation


def _word(member: Any) -> str:
    """How pydantic's tag for a union member begins: 'list[', 'literal[', 'int', …"""
    origin = get_origin(_unwrap_annotated(member))
    if origin is Literal:
        return "literal["
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[".lower()
    return getattr(_unwrap_annotated(member), "__name__", str(member)).lower()


def _unwrap_annotated(annotation: Any) -> Any:
    while hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    return annotation


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
    if origin in _UNIONS:
        members = [_unwrap(arg) for arg in get_args(annotation) if arg is not type(None)]
        flat = []
        for member in members:
            flat.extend(member if isinstance(member, list) else [member])
        models = [member for member in flat if isinstance(member, type) and issubclass(member, BaseModel)]
        if len(models) == 1:
            return models[0]
        return models or (flat[0] if len(flat) == 1 else annotation)  # Optional[list[int]]: list[int]
    return annotation


def _tag(member: Any) -> str | None:
    field = getattr(member, "model_fields", {}).get("name")
    return field.default if field is not None else None
