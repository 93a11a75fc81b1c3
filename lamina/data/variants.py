"""What every image data set can become: fewer classes, fewer labels, a reconstruction task, augmented batches."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

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
        bundle = add_pseudo_labels(bundle, config, seed)
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


def add_pseudo_labels(bundle: DataBundle, config, seed: int) -> DataBundle:
    """Label the 'unlabelled' split with one teacher run, or several (their probabilities averaged); samples
    labelled confidently join the training split. Online pseudo-labelling (no teacher) leaves the split for the
    training step. `config` and `seed` are the student's data options and split seed."""
    from lamina.data.inputs import transform_for
    from lamina.run import load_run
    from lamina.train.evaluate import model_outputs

    options = config.pseudo_labels
    if "unlabelled" not in bundle.splits:
        raise DataError("data.pseudo_labels needs unlabelled images", "set data.labelled_fraction below 1")
    if options.teacher is None:  # online: the training step labels the pool (lamina.train.pseudo_labels)
        bundle.notes.append(f"online pseudo-labelling: {len(bundle.splits['unlabelled'])} unlabelled images, "
                            f"labels kept at confidence ≥ {options.threshold:g}")  # fmt: skip
        return bundle
    paths = [options.teacher] if isinstance(options.teacher, str) else options.teacher
    pool = bundle.splits["unlabelled"]
    probabilities = None
    for path in paths:
        teacher = load_run(path)
        teacher.require_completed("a pseudo-labelling teacher")
        if teacher.spec.class_names != bundle.spec.class_names or teacher.spec.input_shape != bundle.spec.input_shape:
            raise DataError(f"the teacher run {path} was trained on other classes or image shapes",
                            "use a teacher trained on the same data set")  # fmt: skip
        _check_same_labels(teacher.config, config, seed, path)
        outputs, _, _ = model_outputs(teacher.model, pool, transform_for(teacher.data_record["preprocessing"]), 1024)
        scores = teacher.objective().scores(outputs).float()  # (N, classes) probabilities
        probabilities = scores if probabilities is None else probabilities + scores
    confidence, labels = (probabilities / len(paths)).max(dim=1)
    chosen = confidence >= options.threshold
    train = bundle.splits["train"]
    bundle.splits["train"] = Split(torch.cat([train.inputs, pool.inputs[chosen]]),
                                   torch.cat([train.targets, labels[chosen]]))  # fmt: skip
    bundle.splits["unlabelled"] = Split(pool.inputs[~chosen], pool.targets[~chosen])
    who = "teacher" if len(paths) == 1 else f"mean of {len(paths)} teachers'"
    bundle.notes.append(f"pseudo-labels: {int(chosen.sum())} of {len(pool)} unlabelled images joined the training "
                        f"split ({who} confidence ≥ {options.threshold:g})")  # fmt: skip
    return bundle


def _check_same_labels(teacher_config, config, seed: int, path: str) -> None:
    """A teacher trained on the same data set must have had the student's labelled subset, no more: otherwise
    it was trained on labels of the 'unlabelled' pool, and its pseudo-labels would leak them."""
    data = teacher_config.data

    def identity(options) -> tuple:  # the data set's kind and its file or folder name (paths may be relative)
        path = getattr(options, "path", None)
        return options.name, Path(str(path).rstrip("/")).name if path else None

    if identity(data) != identity(config):
        return  # another data set: its labels say nothing about this pool
    teacher_seed = data.seed if data.seed is not None else teacher_config.seed
    fields = ("val_fraction", "test_fraction", "stratify", "classes", "labelled_fraction")
    differ = [f"{name} {getattr(data, name)!r} (here {getattr(config, name)!r})" for name in fields
              if getattr(data, name, None) != getattr(config, name, None)]  # fmt: skip
    if teacher_seed != seed:
        differ.append(f"split seed {teacher_seed} (here {seed})")
    if differ:
        raise DataError(f"the teacher run {path} was trained on another labelled subset of this data set: "
                        f"{', '.join(differ)}; its labels would leak labels of the unlabelled images",
                        f"train the teacher with the student's data options (data.seed: {seed})")  # fmt: skip


def as_reconstruction(bundle: DataBundle) -> DataBundle:
    """The same images as a reconstruction task: each split's targets are its inputs (the same tensor)."""
    bundle.splits = {name: Split(split.inputs, split.inputs) for name, split in bundle.splits.items()
                     if name != "unlabelled"}  # fmt: skip
    spec = bundle.spec
    bundle.spec = replace(spec, task="reconstruction", num_classes=None, output_size=math.prod(spec.input_shape))
    return bundle
