"""The list of every built-in data set: the `datasets` registry with the entries of lamina/data/options.py
(built-in data, images, audio, text, digit strings, time series) and lamina/data/table_options.py (tables and
arrays of your own). Import `datasets` from here to see them all; importing it does not import PyTorch."""

import lamina.data.table_options  # noqa: F401  (registers csv, parquet, dataframe, arrays)
from lamina.data.options import datasets

__all__ = ["datasets"]
