"""What every image data set can become: fewer classes, fewer labels (some pseudo-labelled), a reconstruction
task."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from lamina.core.errors import DataError
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.groups import take_groups
from lamina.data.options import ImageOptions
from lamina.tasks import tasks

__all__ = ["adapt", "keep_classes", "keep_labelled", "as_reconstruction"]


def adapt(
    bundle: DataBundle, config: ImageOptions, seed: int, pseudo_labeller: Callable[[DataBundle], DataBundle] | None
) -> DataBundle:
    """Apply the image options shared by every image data set, in a fixed order. `pseudo_labeller` (from
    lamina.training.semi_supervised) acts on data.pseudo_labels."""
    if config.classes:
        bundle = keep_classes(bundle, config.classes)
    if config.labelled_fraction < 1.0:
        bundle = keep_labelled(bundle, config.labelled_fraction, seed)
    if config.pseudo_labels is not None:
        if pseudo_labeller is None:
            raise DataError(
                "data.pseudo_labels needs trained runs or a training step to label the unlabelled images",
                "build a run's data with lamina.run.run_data(config)",
            )
        bundle = pseudo_labeller(bundle)
    if tasks.get(config.task).reconstructs:
        bundle = as_reconstruction(bundle)
    return bundle


def keep_classes(bundle: DataBundle, names: list[str]) -> DataBundle:
    """Only the samples of the classes `names` (renumbered in the order given), in every split."""
    known = bundle.spec.class_names or []
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(
            f"data.classes names {', '.join(map(repr, unknown))}, which the data does not have",
            f"classes: {', '.join(known)}",
        )
    old = torch.tensor([known.index(name) for name in names])
    for split_name, split in bundle.splits.items():
        keep = torch.isin(split.targets, old)
        renumbered = (split.targets[keep][:, None] == old[None, :]).long().argmax(dim=1)
        bundle.splits[split_name] = Split(split.inputs[keep], renumbered)
        take_groups(bundle.groups, split_name, keep)
    bundle.spec = replace(bundle.spec, num_classes=len(names), class_names=list(names), output_size=len(names))
    bundle.notes.append(f"kept classes {', '.join(names)}")
    return bundle


def keep_labelled(bundle: DataBundle, fraction: float, seed: int) -> DataBundle:
    """Keep labels for `fraction` of the training split (stratified by class, seeded); the other images become
    the 'unlabelled' split, whose targets are -1."""
    train = bundle.splits["train"]
    index = split_indices(train.targets, len(train), {"labelled": fraction}, seed + 7919, stratify=True)
    labelled, rest = index["labelled"], index["train"]
    if len(labelled) < 2:
        raise DataError(
            f"data.labelled_fraction {fraction:g} leaves {len(labelled)} labelled training samples",
            "raise the fraction",
        )
    bundle.splits["train"] = train.subset(labelled)
    take_groups(bundle.groups, "train", rest, into="unlabelled")
    take_groups(bundle.groups, "train", labelled)
    bundle.splits["unlabelled"] = Split(train.inputs[rest], torch.full((len(rest),), -1, dtype=torch.int64))
    bundle.notes.append(
        f"labels kept for {len(labelled)} of {len(train)} training samples "
        f"({fraction:.1%}); {len(rest)} are in the 'unlabelled' split"
    )
    return bundle


def as_reconstruction(bundle: DataBundle) -> DataBundle:
    """The same images as a reconstruction task: each split's targets are its inputs (the same tensor)."""
    bundle.splits = {
        name: Split(split.inputs, split.inputs) for name, split in bundle.splits.items() if name != "unlabelled"
    }
    spec = bundle.spec
    bundle.spec = replace(spec, task="reconstruction", num_classes=None, output_size=math.prod(spec.input_shape))
    return bundle
