"""What every image data set can become: fewer classes, fewer labels, a reconstruction task, augmented batches."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.errors import DataError

__all__ = ["adapt", "keep_classes", "keep_labelled", "add_pseudo_labels", "as_reconstruction"]


def adapt(bundle: DataBundle, config, seed: int) -> DataBundle:
    """Apply the image options shared by every image data set, in a fixed order."""
    if config.classes:
        bundle = keep_classes(bundle, config.classes)
    if config.labelled_fraction < 1.0:
        bundle = keep_labelled(bundle, config.labelled_fraction, seed)
    if config.pseudo_labels is not None:
        bundle = add_pseudo_labels(bundle, config.pseudo_labels)
    if config.task == "reconstruction":
        bundle = as_reconstruction(bundle)
    if config.augment:
        from lamina.data.augment import build_augmentation

        bundle.augment = build_augmentation(config.augment, bundle)
    return bundle


def keep_classes(bundle: DataBundle, names: list[str]) -> DataBundle:
    """Only the samples of the classes `names` (renumbered in the order given), in every split."""
    known = bundle.spec.class_names or []
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(f"data.classes names {', '.join(map(repr, unknown))}, which the data does not have",
                        f"classes: {', '.join(known)}")  # fmt: skip
    old = torch.tensor([known.index(name) for name in names])
    for split_name, split in bundle.splits.items():
        keep = torch.isin(split.targets, old)
        renumbered = (split.targets[keep][:, None] == old[None, :]).long().argmax(dim=1)
        bundle.splits[split_name] = Split(split.inputs[keep], renumbered)
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
        raise DataError(f"data.labelled_fraction {fraction:g} leaves {len(labelled)} labelled training samples",
                        "raise the fraction")  # fmt: skip
    bundle.splits["train"] = train.subset(labelled)
    bundle.splits["unlabelled"] = Split(train.inputs[rest], torch.full((len(rest),), -1, dtype=torch.int64))
    bundle.notes.append(f"labels kept for {len(labelled)} of {len(train)} training samples "
                        f"({fraction:.1%}); {len(rest)} are in the 'unlabelled' split")  # fmt: skip
    return bundle


def add_pseudo_labels(bundle: DataBundle, options) -> DataBundle:
    """Label the 'unlabelled' split with a teacher run; samples it is confident about join the training split.
    Online pseudo-labelling (no teacher) leaves the split for the training step."""
    from lamina.data.inputs import transform_for
    from lamina.run import load_run
    from lamina.train.evaluate import model_outputs

    if "unlabelled" not in bundle.splits:
        raise DataError("data.pseudo_labels needs unlabelled images", "set data.labelled_fraction below 1")
    if options.teacher is None:  # online: the training step labels the pool (lamina.train.pseudo_labels)
        bundle.notes.append(f"online pseudo-labelling: {len(bundle.splits['unlabelled'])} unlabelled images, "
                            f"labels kept at confidence ≥ {options.threshold:g}")  # fmt: skip
        return bundle
    teacher = load_run(options.teacher)
    if teacher.spec.class_names != bundle.spec.class_names or teacher.spec.input_shape != bundle.spec.input_shape:
        raise DataError(f"the teacher run {options.teacher} was trained on other classes or image shapes",
                        "use a teacher trained on the same data set")  # fmt: skip
    pool = bundle.splits["unlabelled"]
    outputs, _, _ = model_outputs(teacher.model, pool, transform_for(teacher.data_record["preprocessing"]), 1024)
    confidence, labels = teacher.objective().scores(outputs).max(dim=1)
    chosen = confidence >= options.threshold
    train = bundle.splits["train"]
    bundle.splits["train"] = Split(torch.cat([train.inputs, pool.inputs[chosen]]),
                                   torch.cat([train.targets, labels[chosen]]))  # fmt: skip
    bundle.splits["unlabelled"] = Split(pool.inputs[~chosen], pool.targets[~chosen])
    bundle.notes.append(f"pseudo-labels: {int(chosen.sum())} of {len(pool)} unlabelled images joined the training "
                        f"split (teacher confidence ≥ {options.threshold:g})")  # fmt: skip
    return bundle


def as_reconstruction(bundle: DataBundle) -> DataBundle:
    """The same images as a reconstruction task: each split's targets are its inputs (the same tensor)."""
    bundle.splits = {name: Split(split.inputs, split.inputs) for name, split in bundle.splits.items()
                     if name != "unlabelled"}  # fmt: skip
    spec = bundle.spec
    bundle.spec = replace(spec, task="reconstruction", num_classes=None, output_size=math.prod(spec.input_shape))
    return bundle
