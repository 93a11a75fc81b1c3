"""Model families: each a typed options class plus a builder that sizes a plain nn.Module from the data."""

# isort: off
from lamina.models import autoencoder, cnn, mlp, resnet  # noqa: F401  (register the built-in families)
from lamina.models import generation, hybrid, rnn, transformer  # noqa: F401  (sequence families)

# isort: on
from lamina.models.output import ModelOutput, split_output
from lamina.models.registry import build_model, models

__all__ = ["ModelOutput", "build_model", "models", "split_output"]
