"""Model families: each a typed options class plus a builder that sizes a plain nn.Module from the data."""

from lamina.models import cnn, generation, hybrid, mlp, rnn, transformer  # noqa: F401  (register the built-in families)  # noqa: F401, I001  (sequence families)
from lamina.models.output import ModelOutput, split_output
from lamina.models.registry import build_model, models

__all__ = ["ModelOutput", "build_model", "models", "split_output"]
