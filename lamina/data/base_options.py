"""What every data set's options share: the registry of data sets, the augmentation list, and random splits into
train, val and test. The data sets themselves are listed in lamina/data/options.py; importing this module does
not import PyTorch.
"""

from pydantic import Field, field_validator, model_validator
from typing_extensions import TypeAliasType

from lamina.core.options import Options, Seed
from lamina.core.registry import Registry
from lamina.data.augment_options import augmentations

__all__ = ["datasets", "Augmentations", "DataOptions", "SplitOptions"]

# `inputs`: the kind of model input the data set gives, which decides the augmentations it can take
datasets = Registry("dataset", metadata={"inputs": "image"})

# one named type, so pydantic builds its schema once for every data set rather than once per data set
Augmentations = TypeAliasType("Augmentations", list[augmentations.union()])  # type: ignore[valid-type]


class DataOptions(Options):
    """Options every data set has."""

    augment: Augmentations = []
    """Augmentations of training batches, in order, by name with options (docs/guide.md lists them per kind of
    input: random_crop, affine, cutmix, … for images; time_shift, noise, spec_augment, … for audio)."""

    @field_validator("augment")
    @classmethod
    def _augmentations_fit_the_inputs(cls, value: list) -> list:
        name = cls.model_fields["name"].default if "name" in cls.model_fields else None
        if name not in datasets:
            return value
        inputs = datasets.get(name).metadata["inputs"]
        for index, entry in enumerate(value):
            allowed = augmentations.get(entry.name).metadata["inputs"]
            if inputs not in allowed:
                fitting = [other.name for other in augmentations.values() if inputs in other.metadata["inputs"]]
                raise ValueError(
                    f"[{index}] {entry.name} applies to {' and '.join(allowed)} inputs, but data set "
                    f"{name!r} gives {inputs} inputs; "
                    + (f"for {inputs} use: {', '.join(fitting)}" if fitting else "remove it")
                )
        return value


class SplitOptions(DataOptions):
    """Options of data sets split at random into train, val and test."""

    val_fraction: float = Field(0.1, ge=0, lt=1)
    """Fraction of the data held out for validation (of the training data where an official test split exists)."""
    test_fraction: float = Field(0.2, ge=0, lt=1)
    """Fraction held out for the final test (ignored where the data set has an official test split)."""
    stratify: bool = True
    """Keep class proportions equal across splits (classification)."""
    seed: Seed | None = None
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
