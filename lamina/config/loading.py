"""YAML + `--set` overrides → a validated Config, or one ConfigError that lists every problem."""

from __future__ import annotations

import codecs
import copy
import math
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lamina.config.schema import SECTIONS, Config, config_class
from lamina.core.errors import ConfigError, Problem, resolved
from lamina.core.problems import problems_from

__all__ = ["load_config", "read_yaml", "apply_overrides", "parse_overrides", "MAX_DEPTH"]

MAX_DEPTH = 100  # levels of nested sections and lists a config may have (it needs a few; thousands exhaust Python)


class _Loader(yaml.SafeLoader):
    """yaml.safe_load's loader (plain data only, never arbitrary objects) that reports what safe_load takes
    silently or crashes on, as problems with their dotted path: a key given twice in one mapping (safe_load keeps
    the last), a whole number longer than Python reads, and nesting deeper than MAX_DEPTH."""

    def __init__(self, text: str, source: str | None = None, prefix: str = "", lines: bool = True):
        super().__init__(text)
        self.config_source, self.config_prefix, self.config_lines = source, prefix, lines  # (Reader has .prefix)
        self.config_problems: list[Problem] = []
        self.config_paths: dict[yaml.Node, str] = {}
        self.config_depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.config_depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}"
            hint = "a config needs only a few levels (section, option, list): check the brackets"
            raise ConfigError(
                [Problem(self.config_prefix, f"nested more than {MAX_DEPTH} levels deep, at {where}", hint)],
                self.config_source,
            )
        self.config_depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.config_depth -= 1

    def construct_document(self, node: Any) -> Any:
        stack = [(node, self.config_prefix)]  # the dotted path of every node, for the problems found while constructing
        while stack:
            node_, path = stack.pop()
            if node_ in self.config_paths:  # an alias of a node seen already
                continue
            self.config_paths[node_] = path
            if isinstance(node_, yaml.MappingNode):
                stack += [(value, self._join(path, key)) for key, value in node_.value]
            elif isinstance(node_, yaml.SequenceNode):
                stack += [(item, f"{path}[{index}]") for index, item in enumerate(node_.value)]
        data = super().construct_document(node)
        if self.config_problems:
            raise ConfigError(self.config_problems, self.config_source)
        return data

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            keys: dict[Any, list] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` then overriding keys is meant
                    continue
                try:
                    keys.setdefault(self.construct_object(key_node, deep=deep), []).append(key_node)
                except TypeError:  # an unhashable key, which SafeLoader reports
                    continue
            for nodes in keys.values():
                if len(nodes) > 1:
                    times = "twice" if len(nodes) == 2 else f"{len(nodes)} times"
                    lines = [str(key_node.start_mark.line + 1) for key_node in nodes]
                    where = f", at lines {', '.join(lines[:-1])} and {lines[-1]}" if self.config_lines else ""
                    path = self._join(self.config_paths.get(node, self.config_prefix), nodes[0])
                    self.config_problems.append(Problem(path, f"given {times}{where}", "keep one"))
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> Any:
        value = None
        try:
            value = super().construct_yaml_int(node)
            str(value)  # 0x… and 0b… numbers are read whatever their length, but cannot be printed
            return value
        except ValueError:  # more digits than Python reads or prints (sys.get_int_max_str_digits)
            digits = int(value.bit_length() * math.log10(2)) + 1 if value is not None else None
            digits = digits or sum(character.isdigit() for character in node.value)
            self.config_problems.append(
                Problem(
                    self.config_paths.get(node, self.config_prefix),
                    f"a whole number of {digits} digits, more than the {sys.get_int_max_str_digits()} Python reads",
                    "write a smaller number",
                )
            )
            return None

    @staticmethod
    def _join(path: str, key: Any) -> str:
        name = key.value if isinstance(key, yaml.ScalarNode) else "?"
        return f"{path}.{name}" if path else name


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _load(text: str, source: str | None = None, prefix: str = "", lines: bool = True) -> Any:
    loader = _Loader(text, source, prefix, lines)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config file into a dict; ConfigError for a missing file or bad YAML, with the line."""

    path = Path(path)
    if not path.is_file():
        hint = "check the path; example configs are in configs/"
        raise ConfigError([Problem("", f"config file {str(path)!r} does not exist{resolved(path)}", hint)])
    try:
        data = path.read_bytes()
    except OSError as error:
        hint = "check the file's permissions"
        raise ConfigError([Problem("", f"config file {str(path)!r} cannot be read: {error.strerror}", hint)]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError([_not_utf8(path, data, error.start)]) from None
    try:
        document = _load(text, str(path))
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


def _not_utf8(path: Path, data: bytes, start: int) -> Problem:
    for encoding, marks in (
        ("UTF-32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
        ("UTF-16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)),
    ):
        if data.startswith(marks) or (encoding == "UTF-16" and data[:2].count(0) == 1):
            hint = f"save it as UTF-8 (your editor's encoding setting, or: iconv -f {encoding} -t UTF-8 {path} > fixed.yaml)"
            return Problem("", f"{path} is {encoding} text, not UTF-8", hint)
    line = data[:start].count(b"\n") + 1
    return Problem("", f"{path} is not UTF-8 text: byte 0x{data[start]:02x} at line {line}", "save it as UTF-8")


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
            parsed[key.strip()] = _load(text, prefix=key.strip(), lines=False) if text.strip() else None
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


def load_config(
    source: Any, overrides: dict[str, Any] | list[str] | None = None, data_defaults: dict | None = None
) -> Config:
    """A validated Config from a YAML path, a dict or a Config, with dotted overrides applied. `data_defaults`
    fill options the `data` section leaves out (data passed from Python: its data set's name, its target).

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
    if data_defaults and isinstance(document, dict):
        section = document.get("data", {})
        section = {"name": section} if isinstance(section, str) else section
        if isinstance(section, dict) and section.get("name", data_defaults["name"]) == data_defaults["name"]:
            document = {**document, "data": {**data_defaults, **section}}
    try:
        return config_type.model_validate(document)
    except ValidationError as error:
        raise ConfigError(problems_from(error, config_type), source=label) from None
