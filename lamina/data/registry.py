"""The data set registry and the one function that builds a data set from its config."""

from __future__ import annotations

import torch

from lamina.registry import Registry

__all__ = ["datasets", "build_data", "keep_labelled"]

datasets = Registry("dataset")


def build_data(config, seed: int = 0):
    """Read and split the data set named by `config.name` (a `data:` section); returns a DataBundle."""
    bundle = datasets.get(config.name, "data.name").function(config, seed)
    fraction = getattr(config, "labelled_fraction", 1.0)
    if fraction < 1.0:
        bundle = keep_labelled(bundle, fraction, seed)
    if getattr(config, "augment", None):
        from lamina.data.augment import build_augmentation

        bundle.augment = build_augmentation(config.augment, bundle)
    return bundle


def keep_labelled(bundle, fraction: float, seed: int):
    """Keep labels for `fraction` of the training split (stratified by class, seeded); the other images become
    the 'unlabelled' split, whose targets are -1."""
    from lamina.data.bundle import Split, split_indices
    from lamina.errors import DataError

    train = bundle.splits["train"]
    index = split_indices(train.targets, len(train), {"labelled": fraction}, seed + 7919, stratify=True)
    labelled, rest = index["labelled"], index["train"]
    if len(labelled) < 2:
        raise DataError(f"data.labelled_fraction {fraction:g} leaves {len(labelled)} labelled training samples",
                        "raise the fraction")  # fmt: skip
    bundle.splits["train"] = train.subset(labelled)
    bundle.splits["unlabelled"] = Split(train.inputs[rest], torch.full((len(rest),), -1, dtype=torch.int64))
    bundle.notes.append(f"labels kept for {len(labelled)} of {len(train)} training samples "
                        f"({fraction:.1%}); {len(rest)} are in the 'unlabelled' split")  # fmt: skip
    return bundle
