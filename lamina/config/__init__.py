"""Typed, validated configuration: YAML + overrides → Config."""

from lamina.config.base import Options
from lamina.config.loading import load_config
from lamina.config.schema import config_class, schema

__all__ = ["Options", "load_config", "config_class", "schema"]
