"""`build_model`: a family's options + the data's spec → a plain nn.Module (the families: lamina/models/options.py
and lamina/models/sequence_options.py)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from torch import nn

from lamina.core.errors import ConfigError, ModelError
from lamina.core.problems import problems_from
from lamina.data.spec import DataSpec
from lamina.models.options import ModelOptions, models
from lamina.tasks import task_of

__all__ = ["build_model", "check_fits"]


def build_model(config: ModelOptions | str | dict, spec: DataSpec | dict, **options: Any) -> nn.Module:
    """Build a registered model sized for `spec`.

    Args:
        config: a model options object (e.g. `config.model`), a family name, or a dict with `name`.
        spec: a DataSpec (or its dict) giving input shape and number of classes/targets.
        options: option overrides when `config` is a name or dict.

    Returns:
        A plain `torch.nn.Module`, usable without lamina.

    Raises:
        ConfigError: an unknown family or option. ModelError: a family that cannot read this data.

    Example:
        >>> spec = DataSpec("tabular", "classification", (30,), num_classes=2)
        >>> model = build_model("mlp", spec, hidden_sizes=[16])
        >>> model(__import__("torch").zeros(4, 30)).shape
        torch.Size([4, 2])
    """
    if isinstance(spec, dict):
        spec = DataSpec.from_dict(spec)
    if isinstance(config, str):
        config = {"name": config}
    if isinstance(config, dict):
        config = {**config, **options}
        entry = models.get(config.get("name", ""), "model.name")
        try:
            config = entry.options.model_validate(config)
        except ValidationError as error:
            raise ConfigError(problems_from(error, entry.options, "model")) from None
    check_fits(config.name, spec)
    return models.get(config.name, "model.name").function(config, spec)


def check_fits(name: str, spec: DataSpec) -> None:
    """A ModelError for sequence data a family cannot handle: families declare `reads_tokens` (token ids in) and
    `sequence_outputs` (one output per step, for language modeling and transcription)."""
    metadata = models.get(name, "model.name").metadata
    task = task_of(spec)
    if task.per_step and not metadata["sequence_outputs"]:
        able = [entry.name for entry in models.values() if entry.metadata["sequence_outputs"]]
        raise ModelError(
            f"model {name!r} gives one output per sample, but {task.name} needs one per step",
            f"use one of: {', '.join(able)}",
        )
    if spec.kind == "text" and not metadata["reads_tokens"]:
        readers = [entry.name for entry in models.values() if entry.metadata["reads_tokens"]]
        raise ModelError(f"model {name!r} cannot read text (token ids)", f"use one of: {', '.join(readers)}")
