"""The whole config: `data`, `model`, `train`, `runtime`. Shaped like the pipeline it drives.

Sections chosen by name (`data`, `model`, `train.loss`, `train.optimizer`, `train.schedule`, each entry of
`data.augment`) validate against the options of the registered entry with that name, so each option is declared
once, next to its entry. Importing this module does not import PyTorch.
"""

from typing import Any

from pydantic import Field, create_model
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import to_jsonable_python

from lamina.core.options import Options, Seed
from lamina.core.registry import Registry
from lamina.data.augment_options import augmentations
from lamina.data.catalogue import datasets
from lamina.insight.options import ExplainOptions
from lamina.models.options import models
from lamina.training.options import TrainOptions, losses, optimizers
from lamina.training.runtime_options import RuntimeOptions
from lamina.training.schedules import schedules

__all__ = ["Config", "SECTIONS", "config_class", "schema"]

# The one list of registries a config names entries of: dotted path of the section → its registry.
SECTIONS: dict[str, Registry] = {
    "data": datasets,
    "data.augment": augmentations,
    "data.pseudo_labels.strong_augment": augmentations,
    "model": models,
    "train.loss": losses,
    "train.optimizer": optimizers,
    "train.schedule": schedules,
}


class Config(Options):
    """A lamina run: what data, which model, how to train it, on what hardware."""

    name: str | None = None
    """Run name (also part of the run folder's name); default: '<model>-<data>'."""
    seed: Seed = 0
    """Seeds data splits, shuffling, initialization and dropout; the same seed gives the same run. A whole number
    from 0 to 2147483647 (2**31 - 1)."""
    description: str | None = None
    """Free text kept with the run."""
    data: datasets.union() = Field(description="Data set by name: " + ", ".join(datasets.names()))  # type: ignore[valid-type]
    model: models.union() = Field(description="Model family by name: " + ", ".join(models.names()))  # type: ignore[valid-type]
    train: TrainOptions = Field(default_factory=TrainOptions, description=TrainOptions.__doc__)
    runtime: RuntimeOptions = Field(default_factory=RuntimeOptions, description=RuntimeOptions.__doc__)
    explain: ExplainOptions = Field(default_factory=ExplainOptions, description=ExplainOptions.__doc__)


_BUILT_IN = {kind: tuple(registry.names()) for kind, registry in SECTIONS.items()}
_extended: dict[tuple, type[Config]] = {}


def config_class() -> type[Config]:
    """`Config`, or, when entries were registered after lamina was imported (a user's own data set, model, loss,
    optimizer or schedule), a subclass of it whose sections also accept them."""
    names = tuple(tuple(registry.names()) for registry in SECTIONS.values())
    if names == tuple(_BUILT_IN.values()):
        return Config
    if names not in _extended:
        _extended[names] = _extend()
    return _extended[names]


def _extend() -> type[Config]:
    def choice(registry: Registry, **field: Any) -> tuple:
        return registry.union(), Field(
            description=f"{registry.kind.capitalize()} by name: " + ", ".join(registry.names()), **field
        )

    train = create_model(
        "TrainOptions",
        __base__=TrainOptions,
        __doc__=TrainOptions.__doc__,
        loss=(losses.union() | None, Field(None, description=TrainOptions.model_fields["loss"].description)),
        optimizer=choice(optimizers, default_factory=TrainOptions.model_fields["optimizer"].default_factory),
        schedule=choice(schedules, default_factory=TrainOptions.model_fields["schedule"].default_factory),
    )
    return create_model(
        "Config",
        __base__=Config,
        __doc__=Config.__doc__,
        data=choice(datasets),
        model=choice(models),
        train=(train, Field(default_factory=train, description=TrainOptions.__doc__)),
    )


def schema() -> dict:
    """JSON Schema of the config, for editor completion (e.g. YAML language servers).

    Example:
        >>> document = schema()
        >>> document["title"], sorted(document["properties"])[:3]
        ('lamina config', ['data', 'description', 'explain'])
    """
    document = config_class().model_json_schema(schema_generator=_PlainDefaults)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "lamina config"
    return document


class _PlainDefaults(GenerateJsonSchema):
    """pydantic's JSON Schema, except that plain defaults (numbers, text, lists of them) are written as they are,
    rather than through a TypeAdapter built for each of the ~400 defaults (half the time of `lamina schema`)."""

    def encode_default(self, dft: Any) -> Any:
        return to_jsonable_python(dft) if _plain(dft) else super().encode_default(dft)


def _plain(value: Any) -> bool:
    if value is None or type(value) in (bool, int, str) or (type(value) is float and value == value):
        return abs(value) != float("inf") if type(value) is float else True
    if type(value) in (list, tuple):
        return all(_plain(item) for item in value)
    if type(value) is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    return False
