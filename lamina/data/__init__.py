"""Data: registered data sets → in-memory splits, a DataSpec, and per-batch transforms."""

# isort: off
from lamina.data import folders, images, tabular  # noqa: F401  (register the built-in data sets)
from lamina.data import audio, digit_strings, text, timeseries  # noqa: F401  (sequence data sets)

# isort: on
from lamina.data.bundle import DataBundle, Split, iterate_batches
from lamina.data.registry import build_data, datasets
from lamina.data.spec import DataSpec

__all__ = ["DataBundle", "DataSpec", "Split", "build_data", "datasets", "iterate_batches"]
