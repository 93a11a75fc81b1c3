"""One registry mechanism for everything chosen by name: models, datasets, losses, optimizers, schedules.

An entry is a function plus the typed options it accepts. Registering derives a config class that adds the
`name` tag, so a section like `model: {name: mlp, depth: 3}` validates against exactly that entry's options:

    models = Registry("model")

    @models.register("mlp", config=MLPConfig)
    def build_mlp(config: MLPConfig, spec: DataSpec) -> nn.Module: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, create_model

from lamina.errors import ConfigError, Problem, did_you_mean

__all__ = ["Registry", "Entry"]


@dataclass(frozen=True)
class Entry:
    name: str
    function: Callable[..., Any]
    config: type  # pydantic model with a `name: Literal[name]` field
    help: str


class Registry:
    """Name → (function, options class). Lookups of unknown names suggest the closest match."""

    def __init__(self, kind: str, shared: dict[str, tuple] | None = None):
        self.kind = kind
        self.shared = shared or {}  # options every entry accepts: name → (type, pydantic Field)
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config: type, help: str | None = None) -> Callable:
        """Decorator: register `function` under `name`, accepting options of class `config`."""

        def decorator(function: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            tagged = create_model(
                config.__name__,
                __base__=config,
                __doc__=config.__doc__,
                __module__=config.__module__,
                name=(Literal[name], name),
                **self.shared,
            )
            doc = (help or function.__doc__ or config.__doc__ or "").strip()
            self._entries[name] = Entry(name, function, tagged, doc.splitlines()[0] if doc else "")
            return function

        return decorator

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def get(self, name: str, path: str | None = None) -> Entry:
        """The entry called `name`; a ConfigError naming the closest match otherwise."""
        if name in self._entries:
            return self._entries[name]
        raise ConfigError([self.unknown(name, path or f"{self.kind}.name")])

    def unknown(self, name: Any, path: str) -> Problem:
        suggestion = did_you_mean(str(name), self.names())
        options = ", ".join(self.names())
        hint = f"did you mean {suggestion!r}? registered: {options}" if suggestion else f"registered: {options}"
        return Problem(path, f"unknown {self.kind} {name!r}", hint)

    def union(self) -> Any:
        """A pydantic type accepting any entry's options, chosen by `name`; a bare string means `{name: ...}`."""
        classes = tuple(entry.config for entry in self._entries.values())
        member = Annotated[Union[classes], Field(discriminator="name")] if len(classes) > 1 else classes[0]  # noqa: UP007 (a runtime tuple of classes)
        return Annotated[member, BeforeValidator(_name_shorthand), RegistryChoice(self.kind)]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


class RegistryChoice(str):
    """Marks a registry's union type, so option tables can print it as its kind ('augmentation')."""


def _name_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value
