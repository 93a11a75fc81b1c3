"""Data: registered data sets → in-memory splits, a DataSpec, and per-batch transforms.

lamina/data/options.py and lamina/data/sequence_options.py list the data sets and their options (without
importing PyTorch); lamina/data/build.py builds one; the other modules read and split each kind of data.
"""
