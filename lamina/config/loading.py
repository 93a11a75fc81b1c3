"""YAML + `--set` overrides → a validated Config, or one ConfigError that lists every problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from lamina.config.schema import config_class, union_paths
from lamina.errors import ConfigError, Problem, did_you_mean

__all__ = ["load_config", "read_yaml", "apply_overrides", "parse_overrides"]


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config file into a dict; ConfigError for a missing file or bad YAML, with the line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        hint = "check the path; example configs are in configs/"
        raise ConfigError([Problem("", f"config file {str(path)!r} does not exist", hint)])
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError([Problem("", f"{path} is not valid YAML{where}: {reason}", "fix the YAML syntax")]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise ConfigError([Problem("", f"{path} holds a {kind}, not a mapping of sections", "start with 'data:'")])
    return document


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["train.epochs=5", "model.widths=[64, 32]"]` → {"train.epochs": 5, ...}; values are parsed as YAML."""
    import yaml

    parsed = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise ConfigError(
                [Problem("--set", f"expected dotted.key=value, received {item!r}", "e.g. train.epochs=5")]
            )
        try:
            parsed[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            parsed[key.strip()] = text
    return parsed


def apply_overrides(document: dict, overrides: dict[str, Any]) -> dict:
    """Set dotted keys in a nested dict (a copy); intermediate sections are created as needed."""
    import copy

    document = copy.deepcopy(document)
    for dotted, value in overrides.items():
        node = document
        parts = dotted.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if isinstance(child, str) and ".".join(parts[: depth + 1]) in union_paths:
                child = {"name": child}  # `loss: mse` then --set train.loss.delta=2
            if child is None:
                child = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError([Problem(dotted, f"{where} is {child!r}, not a section", f"set {where} itself")])
            node[part] = child
            node = child
        node[parts[-1]] = value
    return document


def load_config(source: Any, overrides: dict[str, Any] | list[str] | None = None):
    """A validated Config from a YAML path, a dict or a Config, with dotted overrides applied.

    Example:
        >>> config = load_config({"data": "digits", "model": "mlp"}, {"train.epochs": 3})
        >>> config.train.epochs, config.model.name
        (3, 'mlp')
    """
    Config = config_class()
    label = None
    if isinstance(source, Config) and not overrides:
        return source
    if isinstance(source, BaseModel):
        document = source.model_dump(mode="json")
    elif isinstance(source, dict):
        document = source
    else:
        label = str(source)
        document = read_yaml(source)
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    document = apply_overrides(document, overrides or {})
    try:
        return Config.model_validate(document)
    except ValidationError as error:
        raise ConfigError(problems_from(error, Config), source=label) from None


# ---- pydantic errors → lamina problems ----------------------------------------------------------------

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
    """Lamina problems for a pydantic error; `prefix` is the dotted path of `root` in the whole config."""
    problems = []
    for item in error.errors(include_url=False):
        path, owner = _walk(item["loc"], root)
        path = ".".join(part for part in (prefix, path) if part)
        problems.append(_problem(item, path, owner))
    # the same message reached through several union members is said once
    unique = {str(problem): problem for problem in problems}
    return sorted(unique.values(), key=lambda problem: problem.path)


def _problem(item: dict, path: str, owner: type | None) -> Problem:
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
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        registry = _registry_for(path)
        if kind == "union_tag_not_found":
            return Problem(f"{path}.name", "is missing", f"choose one of: {', '.join(registry.names())}")
        return registry.unknown(context.get("tag"), f"{path}.name")
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
    if kind.startswith(("greater", "less", "too_")):
        message += f"; received {received!r}"
    return Problem(path, message, None)


def _walk(loc: tuple, root: type[BaseModel]) -> tuple[str, type | None]:
    """Dotted path for a pydantic location, dropping union tags; and the options class that owns the last key."""
    parts: list[str] = []
    owner: Any = root
    current: Any = root
    for element in loc:
        if isinstance(element, int):
            parts[-1] = f"{parts[-1]}[{element}]" if parts else f"[{element}]"
            current = _unwrap(get_args(current)[0]) if get_origin(current) is list else current
            continue
        if isinstance(current, list):  # a union: pick the member whose name is `element`
            chosen = [member for member in current if _tag(member) == element]
            if chosen:
                current = chosen[0]
                continue
            current = None
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            field = current.model_fields.get(element)
            current = _unwrap(field.annotation) if field else None
        else:
            owner = None
        parts.append(str(element))
    return ".".join(parts), owner if isinstance(owner, type) else None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional; a union of several option classes becomes a list of them."""
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


def _registry_for(path: str):
    from lamina.data import datasets
    from lamina.data.augment import augmentations
    from lamina.models import models
    from lamina.train.losses import losses
    from lamina.train.optimizers import optimizers
    from lamina.train.schedules import schedules

    by_kind = {"dataset": datasets, "model": models, "loss": losses, "optimizer": optimizers, "schedule": schedules,
               "augmentation": augmentations}  # fmt: skip
    return by_kind[union_paths[re.sub(r"\[\d+\]", "", path)]]
