"""The one function that builds a data set from its config section: read and split it, adapt image data sets
(classes, labelled subset, pseudo-labels, reconstruction), check what every data set must hold (two classes or
more to classify, unique class names; lamina/data/checks.py), resolve a two-class data set's positive class by
name or index, warn where class balance differs sharply between splits, then attach the configured augmentations."""

from __future__ import annotations

from collections.abc import Callable

from lamina.core.errors import DataError
from lamina.data.augment import with_augmentations
from lamina.data.bundle import DataBundle
from lamina.data.catalogue import datasets
from lamina.data.checks import check_bundle, choose_positive_class, class_balance_warnings
from lamina.data.given import Given
from lamina.data.groups import group_sources, unseen_group_warnings
from lamina.data.options import DataOptions, ImageOptions
from lamina.data.variants import adapt

__all__ = ["build_data"]


def build_data(
    config: DataOptions,
    seed: int = 0,
    pseudo_labeller: Callable[[DataBundle], DataBundle] | None = None,
    given: Given | None = None,
) -> DataBundle:
    """Read and split the data set named by `config.name` (a `data:` section); returns a DataBundle.

    `pseudo_labeller` labels the 'unlabelled' split where `data.pseudo_labels` asks for it; it needs trained
    runs, so it is given by the layer that can open them (lamina.run.run_data builds a run's data with it).
    `given`: data passed from Python (lamina/data/given.py), for the data sets that take it (arrays, dataframe).

    Example:
        >>> from lamina.data.options import DigitsOptions
        >>> data = build_data(DigitsOptions(), seed=0)
        >>> {name: len(split) for name, split in data.splits.items()}, data.spec.input_shape
        ({'train': 1259, 'val': 179, 'test': 359}, (1, 8, 8))
    """
    seed = config.seed if getattr(config, "seed", None) is not None else seed  # data.seed fixes the split
    entry = datasets.get(config.name, "data.name")
    if given is not None and not entry.metadata["given"]:
        raise DataError(
            f"data was passed from Python, but data.name is {config.name!r}, which reads its own files",
            f"set data.name: {given.defaults['name']} (or leave data.name out), or pass no data",
        )
    bundle = entry.function(config, seed, given=given) if given is not None else entry.function(config, seed)
    if isinstance(config, ImageOptions):
        bundle = adapt(bundle, config, seed, pseudo_labeller)
    bundle = check_bundle(bundle)
    for attribute, by_split in bundle.groups.items():  # only the splits the bundle kept
        bundle.groups[attribute] = {split: names for split, names in by_split.items() if split in bundle.splits}
    if config.groups:
        bundle.preprocessing["groups"] = group_sources(config.groups)
        bundle.warnings += unseen_group_warnings(bundle.groups)
    choose_positive_class(bundle, getattr(config, "positive_class", None))
    bundle.warnings += class_balance_warnings(bundle)
    return with_augmentations(bundle, config.augment)
