"""One registry mechanism for everything chosen by name: data sets, models, losses, metrics, optimizers,
schedules, augmentations, tasks and generators.

A registry maps a name to a value. Most values are an `Entry`: the options class a config section validates
against, the function that builds the thing, and the entry's metadata. The options class names itself with a
`name: Literal[...]` field, so `model: {name: mlp, depth: 3}` validates against exactly that entry's options:

    models = Registry("model", metadata={"reads_tokens": False})

    @models.register("lamina.models.mlp:build_mlp")
    class MLPOptions(Options):
        name: Literal["mlp"] = "mlp"
        depth: int = 2

The function may be given as "module:function": it is imported when first used, so listing the entries and their
options (`lamina models`, `lamina schema`) never imports what the functions need (PyTorch). Lookups of unknown
names suggest the closest match.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import BeforeValidator, Field

from lamina.core.docstrings import help_text
from lamina.core.errors import ConfigError, Problem, did_you_mean

__all__ = ["Registry", "Entry", "RegistryChoice"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """A registered name: its options class, its function (or where to import it from) and its metadata.

    Example:
        >>> entry = Entry("half", None, "operator:truediv", MappingProxyType({}))
        >>> entry.function(1, 2)
        0.5
    """

    name: str
    options: type | None  # the options class, whose `name` field is Literal[name]; None for entries without options
    reference: Callable[..., Any] | str  # the function, or "package.module:function"
    metadata: Mapping[str, Any]
    _resolved: list = field(default_factory=list, repr=False, compare=False)

    @property
    def function(self) -> Callable[..., Any]:
        """The entry's function, imported on first use when it was registered as "module:function"."""
        if callable(self.reference):
            return self.reference
        if not self._resolved:
            module, _, attribute = self.reference.partition(":")
            # imported here, not by the registering module: implementations import PyTorch, catalogues do not
            self._resolved.append(getattr(importlib.import_module(module), attribute))
        return self._resolved[0]

    @property
    def help(self) -> str:
        """The options class's docstring (the function's, for entries without options): its first line, continued
        to the end of that sentence."""
        source = self.options if self.options is not None else self.function
        return help_text(source.__doc__)


class Registry(Generic[T]):
    """Name → value. `metadata` declares the keys an entry may carry, with their defaults."""

    def __init__(self, kind: str, metadata: Mapping[str, Any] | None = None):
        self.kind = kind
        self.metadata = dict(metadata or {})
        self._values: dict[str, T] = {}

    def add(self, name: str, value: T) -> T:
        """Register `value` under `name`; a name is registered once."""
        if name in self._values:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._values[name] = value
        return value

    def register(self, function: Callable[..., Any] | str, **metadata: Any) -> Callable[[type], type]:
        """Class decorator: register an options class (named by its `name` field) with its function and
        metadata."""

        def decorator(options: type) -> type:
            field_info = getattr(options, "model_fields", {}).get("name")
            if field_info is None or not isinstance(field_info.default, str):
                raise TypeError(f"{options.__name__} needs a field name: Literal['...'] = '...' to be a {self.kind}")
            self.add_function(field_info.default, function, options, **metadata)
            return options

        return decorator

    def add_function(
        self, name: str, function: Callable[..., Any] | str, options: type | None = None, **metadata: Any
    ) -> Entry:
        """Register a function (or "module:function") under `name`, with optional options and metadata."""
        unknown = sorted(set(metadata) - set(self.metadata))
        if unknown:
            raise TypeError(
                f"{self.kind} {name!r}: unknown metadata {', '.join(unknown)}; known: "
                f"{', '.join(self.metadata) or 'none'}"
            )
        entry = Entry(name, options, function, MappingProxyType({**self.metadata, **metadata}))
        return self.add(name, entry)  # type: ignore[arg-type]

    def remove(self, name: str) -> None:
        """Forget `name` (e.g. a family registered by a test)."""
        del self._values[name]

    def names(self) -> list[str]:
        return list(self._values)

    def values(self) -> list[T]:
        return list(self._values.values())

    def get(self, name: str, path: str | None = None) -> T:
        """The value registered as `name`; a ConfigError naming the closest match otherwise."""
        if name in self._values:
            return self._values[name]
        raise ConfigError([self.unknown(name, path or f"{self.kind}.name")])

    def unknown(self, name: Any, path: str) -> Problem:
        suggestion = did_you_mean(str(name), self.names())
        options = ", ".join(self.names())
        hint = f"did you mean {suggestion!r}? registered: {options}" if suggestion else f"registered: {options}"
        return Problem(path, f"unknown {self.kind} {name!r}", hint)

    def union(self) -> Any:
        """A pydantic type accepting any entry's options, chosen by `name`; a bare string means `{name: ...}`."""
        classes = tuple(entry.options for entry in self._values.values())  # type: ignore[attr-defined]
        member = Annotated[Union[classes], Field(discriminator="name")] if len(classes) > 1 else classes[0]  # noqa: UP007 (a runtime tuple of classes)
        return Annotated[member, BeforeValidator(_name_shorthand), RegistryChoice(self)]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class RegistryChoice(str):
    """Marks a registry's union type with its registry: option tables print it as its kind ('augmentation'),
    and an unknown name there is reported with the registry's suggestions."""

    registry: Registry

    def __new__(cls, registry: Registry) -> RegistryChoice:
        marker = super().__new__(cls, registry.kind)
        marker.registry = registry
        return marker


def _name_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value
