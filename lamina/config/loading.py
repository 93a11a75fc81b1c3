"""YAML + `--set` overrides → a validated Config, or one ConfigError that lists every problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lamina.config.schema import SECTIONS, Config, config_class
from lamina.core.errors import ConfigError, Problem
from lamina.core.problems import problems_from

__all__ = ["load_config", "read_yaml", "apply_overrides", "parse_overrides"]


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config file into a dict; ConfigError for a missing file or bad YAML, with the line."""

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
    """`["train.epochs=5", "model.widths=[64, 32]"]` → {"train.epochs": 5, ...}; values are parsed as YAML.

    Example:
        >>> parse_overrides(["train.epochs=5", "model.hidden_sizes=[64, 32]"])
        {'train.epochs': 5, 'model.hidden_sizes': [64, 32]}
    """

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
    """Set dotted keys in a nested dict (a copy); intermediate sections are created as needed.

    Example:
        >>> apply_overrides({"train": {"loss": "huber"}}, {"train.loss.delta": 2.0})
        {'train': {'loss': {'name': 'huber', 'delta': 2.0}}}
    """
    document = copy.deepcopy(document)
    for dotted, value in overrides.items():
        node = document
        parts = dotted.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if isinstance(child, str) and ".".join(parts[: depth + 1]) in SECTIONS:
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


def load_config(source: Any, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """A validated Config from a YAML path, a dict or a Config, with dotted overrides applied.

    Example:
        >>> config = load_config({"data": "digits", "model": "mlp"}, {"train.epochs": 3})
        >>> config.train.epochs, config.model.name
        (3, 'mlp')
    """
    config_type = config_class()
    label = None
    if isinstance(source, config_type) and not overrides:
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
        return config_type.model_validate(document)
    except ValidationError as error:
        raise ConfigError(problems_from(error, config_type), source=label) from None
