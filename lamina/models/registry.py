"""The model registry and `build_model`: a family's options + the data's spec → a plain nn.Module."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lamina.registry import Registry

__all__ = ["models", "build_model"]

models = Registry("model", shared={"init_from": (str | None, Field(None, description=(
    "Start from pretrained weights: a run folder, .safetensors or .pt state dict (matching tensors are loaded; "
    "see docs/vision.md)")))})  # fmt: skip


def build_model(config: Any, spec: Any, **options: Any):
    """Build a registered model sized for `spec`.

    Args:
        config: a model options object (e.g. `config.model`), a family name, or a dict with `name`.
        spec: a DataSpec (or its dict) giving input shape and number of classes/targets.
        options: option overrides when `config` is a name or dict.

    Returns:
        A plain `torch.nn.Module`, usable without lamina.

    Example:
        >>> from lamina.data import DataSpec
        >>> model = build_model("mlp", DataSpec("tabular", "classification", (30,), num_classes=2), hidden_sizes=[16])
        >>> model(__import__("torch").zeros(4, 30)).shape
        torch.Size([4, 2])
    """
    from lamina.data.spec import DataSpec
    from lamina.errors import ConfigError

    if isinstance(spec, dict):
        spec = DataSpec.from_dict(spec)
    if isinstance(config, str):
        config = {"name": config}
    if isinstance(config, dict):
        from pydantic import ValidationError

        from lamina.config.loading import problems_from

        config = {**config, **options}
        entry = models.get(config.get("name", ""), "model.name")
        try:
            config = entry.config.model_validate(config)
        except ValidationError as error:
            raise ConfigError(problems_from(error, entry.config, "model")) from None
    family = models.get(config.name, "model.name").function
    _check_fits(config.name, family, spec)
    return family(config, spec)


def _check_fits(name: str, family: Any, spec: Any) -> None:
    """Sequence data a family cannot handle: families declare `reads_tokens` (token ids in) and
    `sequence_outputs` (one output per step, for language modeling and transcription)."""
    from lamina.errors import ModelError

    able = [entry.name for entry in models.entries() if getattr(entry.function, "sequence_outputs", False)]
    if spec.task in ("language_modeling", "transcription") and not getattr(family, "sequence_outputs", False):
        raise ModelError(f"model {name!r} gives one output per sample, but {spec.task} needs one per step",
                         f"use one of: {', '.join(able)}")  # fmt: skip
    readers = [entry.name for entry in models.entries() if getattr(entry.function, "reads_tokens", False)]
    if spec.kind == "text" and not getattr(family, "reads_tokens", False):
        raise ModelError(f"model {name!r} cannot read text (token ids)", f"use one of: {', '.join(readers)}")
