"""The data set registry and the one function that builds a data set from its config."""

from __future__ import annotations

from lamina.registry import Registry

__all__ = ["datasets", "build_data"]

datasets = Registry("dataset")


def build_data(config, seed: int = 0):
    """Read and split the data set named by `config.name` (a `data:` section); returns a DataBundle."""
    if getattr(config, "seed", None) is not None:  # data.seed fixes the split whatever the run's seed
        seed = config.seed
    bundle = datasets.get(config.name, "data.name").function(config, seed)
    if hasattr(config, "augment"):  # image data sets: classes, task, labelled fraction, augmentation
        from lamina.data.variants import adapt

        bundle = adapt(bundle, config, seed)
    return bundle
