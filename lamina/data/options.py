"""Options every data set shares: how the data is split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lamina.config.base import Options

__all__ = ["SplitOptions", "ImageOptions", "PseudoLabelOptions"]


class SplitOptions(Options):
    val_fraction: float = Field(0.1, ge=0, lt=1)
    """Fraction of the data held out for validation (of the training data where an official test split exists)."""
    test_fraction: float = Field(0.2, ge=0, lt=1)
    """Fraction held out for the final test (ignored where the data set has an official test split)."""
    stratify: bool = True
    """Keep class proportions equal across splits (classification)."""
    seed: int | None = None
    """Seed of the split into train/val/test (and of the labelled subset); default: the run's seed. Fix it to
    compare or ensemble runs of several seeds on the same held-out data."""

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError(
                f"val_fraction + test_fraction is {self.val_fraction + self.test_fraction:g}, which leaves "
                "almost nothing to train on; keep their sum below 0.95"
            )
        return self


def _augmentation_list():
    from lamina.data.augment import augmentations

    return list[augmentations.union()]


class PseudoLabelOptions(Options):
    """Pseudo-labelling of the 'unlabelled' split. With a `teacher` run (offline self-training): the teacher
    labels the pool once and its confident labels join the training split. Without one (online, FixMatch):
    at every step the model being trained labels a weakly augmented unlabelled batch and learns those labels,
    where it is confident, on strongly augmented copies of the same images."""

    teacher: str | list[str] | None = None
    """Offline: run folder of the model that labels (trained on the same labelled subset, e.g. with the same
    config), or a list of them, whose probabilities are averaged. None: online pseudo-labelling by the model
    itself."""
    threshold: float = Field(0.95, gt=0, lt=1)
    """Keep a pseudo-label only where the labelling model gives its class at least this probability."""
    strong_augment: _augmentation_list() = []  # type: ignore[valid-type]
    """Online: augmentations applied on top of data.augment to make the strong view (label-preserving ones:
    affine, random_crop, cutout, random_erasing, color_jitter, …)."""
    weight: float = Field(1.0, ge=0)
    """Online: weight of the unlabelled loss beside the labelled one."""
    unlabelled_ratio: int = Field(1, ge=1)
    """Online: unlabelled images per labelled image in each step (FixMatch's μ)."""

    @model_validator(mode="after")
    def _online_options_need_online(self):
        if self.teacher == []:
            raise ValueError("teacher is an empty list; name one or more run folders, or remove teacher for online "
                             "pseudo-labelling")  # fmt: skip
        if self.teacher is not None and self.strong_augment:
            raise ValueError("strong_augment is used by online pseudo-labelling only; remove it, or remove teacher")
        return self


class ImageOptions(SplitOptions):
    """Options every image data set shares: augmentation of training batches and learning from few labels."""

    augment: _augmentation_list() = []  # type: ignore[valid-type]
    """Augmentations of training batches, in order, by name with options: random_crop, horizontal_flip,
    alternating_flip, affine, color_jitter, cutout, random_erasing, mixup, cutmix (docs/vision.md)."""
    labelled_fraction: float = Field(1.0, gt=0, le=1)
    """Keep labels for only this fraction of the training split (stratified, seeded); the rest becomes the
    'unlabelled' split, used by pseudo-labelling."""
    task: Literal["classification", "reconstruction"] = "classification"
    """classification: predict the class; reconstruction: reproduce the image (autoencoders; labels unused)."""
    classes: list[str] | None = None
    """Use only these classes, by name (e.g. train an anomaly detector on the normal classes only)."""
    pseudo_labels: PseudoLabelOptions | None = None
    """Learn from the 'unlabelled' split through pseudo-labels: a teacher run's confident labels join the
    training split, or (no teacher) the model labels it online (needs labelled_fraction < 1)."""

    @model_validator(mode="after")
    def _online_pseudo_labels_keep_labels(self):
        if self.pseudo_labels is None or self.pseudo_labels.teacher is not None:
            return self
        if self.task != "classification":
            raise ValueError(f"pseudo_labels are classes, but task is {self.task!r}; remove pseudo_labels")
        mixing = [entry.name for entry in [*self.augment, *self.pseudo_labels.strong_augment]
                  if entry.name in ("mixup", "cutmix")]  # fmt: skip
        if mixing:
            raise ValueError(f"{', '.join(mixing)} mixes labels, which online pseudo-labelling cannot pair with "
                             "its own labels; remove it, or set pseudo_labels.teacher (offline)")  # fmt: skip
        return self
