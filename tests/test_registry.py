"""The registry: suggestions for unknown names, and families registered by users validating like built-ins."""

from __future__ import annotations

import math
from typing import Literal

import pytest
from pydantic import Field
from torch import nn

from conftest import tiny_config
from lamina.config.loading import load_config
from lamina.core.errors import ConfigError, did_you_mean
from lamina.models.options import MLPOptions, ModelOptions, models
from lamina.pipeline import train


def test_did_you_mean():
    assert did_you_mean("adamm", ["adam", "adamw", "sgd"]) == "adam"
    assert did_you_mean("acc", ["accuracy", "roc_auc"]) == "accuracy"
    assert did_you_mean("zzz", ["adam", "sgd"]) is None


def test_unknown_lookup_lists_what_exists():
    with pytest.raises(ConfigError) as caught:
        models.get("resnett")
    assert str(caught.value).endswith(
        f"unknown model 'resnett'; did you mean 'resnet'? registered: {', '.join(models.names())}"
    )


class TinyOptions(ModelOptions):
    """One hidden layer."""

    name: Literal["tiny_test"] = "tiny_test"
    width: int = Field(8, ge=1)
    """Hidden width."""


def build_tiny(config: TinyOptions, spec) -> nn.Module:
    """A one-hidden-layer network."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(spec.input_shape), config.width),
        nn.ReLU(),
        nn.Linear(config.width, spec.output_size),
    )


@pytest.fixture
def tiny_family():
    models.register(build_tiny)(TinyOptions)
    yield
    models.remove("tiny_test")


def test_a_user_registered_family_is_validated_and_trained(tiny_family, runs_dir):
    with pytest.raises(ConfigError, match="model.widht: unknown option of model 'tiny_test'; did you mean 'width'"):
        load_config({"data": "digits", "model": {"name": "tiny_test", "widht": 3}})
    config = {**tiny_config(epochs=2), "model": {"name": "tiny_test", "width": 16}}
    run = train(config, runs_dir=runs_dir, progress="quiet")
    assert run.summary["status"] == "completed" and run.metrics["test"]["accuracy"] > 0.5


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        models.register(build_tiny)(MLPOptions)


def test_every_shipped_config_validates_and_every_family_has_one():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "configs"
    families = {load_config(path).model.name for path in sorted(folder.glob("*.yaml"))}
    builtin = {name for name in models.names() if models.get(name).function.__module__.startswith("lamina.")}
    assert builtin and builtin <= families, f"families without an example config: {builtin - families}"
