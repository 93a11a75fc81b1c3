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
    """Self-training: a trained run labels the 'unlabelled' split; its confident labels join the training split."""

    teacher: str
    """Run folder of the model that labels (trained on the same labelled subset, e.g. with the same config)."""
    threshold: float = Field(0.95, gt=0, lt=1)
    """Keep a pseudo-label only where the teacher gives its class at least this probability."""


class ImageOptions(SplitOptions):
    """Options every image data set shares: augmentation of training batches and learning from few labels."""

    augment: _augmentation_list() = []  # type: ignore[valid-type]
    """Augmentations of training batches, in order, by name with options: random_crop, horizontal_flip, affine,
    color_jitter, cutout, random_erasing, mixup, cutmix (docs/vision.md)."""
    labelled_fraction: float = Field(1.0, gt=0, le=1)
    """Keep labels for only this fraction of the training split (stratified, seeded); the rest becomes the
    'unlabelled' split, used by pseudo-labelling."""
    task: Literal["classification", "reconstruction"] = "classification"
    """classification: predict the class; reconstruction: reproduce the image (autoencoders; labels unused)."""
    classes: list[str] | None = None
    """Use only these classes, by name (e.g. train an anomaly detector on the normal classes only)."""
    pseudo_labels: PseudoLabelOptions | None = None
    """Add the teacher's confident labels of the 'unlabelled' split to the training split (needs
    labelled_fraction < 1)."""
