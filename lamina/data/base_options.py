"""What every data set's options share: the registry of data sets, the augmentation list, and random splits into
train, val and test. The data sets themselves are listed in lamina/data/options.py (and lamina/data/catalogue.py);
importing this module does not import PyTorch.
"""

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from typing_extensions import TypeAliasType

from lamina.core.options import Options, Seed
from lamina.core.registry import Registry
from lamina.data.augment_options import augmentations
from lamina.data.group_options import COLUMN_DATASETS, FILE_DATASETS, GroupList
from lamina.data.paths import package_name

__all__ = ["datasets", "Augmentations", "DataOptions", "SplitOptions", "check_augmentations"]

# `inputs`: the kind of model input the data set gives, which decides the augmentations it can take;
# `given`: it reads data passed from Python (lamina.train(config, data=...)), given to its function as `given`
datasets = Registry("dataset", metadata={"inputs": "image", "given": False})

# one named type, so pydantic builds its schema once for every data set rather than once per data set
Augmentations = TypeAliasType("Augmentations", list[augmentations.union()])  # type: ignore[valid-type]


class DataOptions(Options):
    """Options every data set has."""

    augment: Augmentations = []
    """Augmentations of training batches, in order, by name with options (docs/guide.md lists them per kind of
    input: random_crop, affine, cutmix, … for images; time_shift, noise, spec_augment, … for audio)."""

    groups: GroupList = []
    """Attributes whose groups each sample belongs to (speaker, accent, …), each read from a column, a pattern on
    the file path or a metadata file (docs/insight.md, "Where groups come from"); for per-group metrics and
    train.balance_groups."""

    @field_validator("augment")
    @classmethod
    def _augmentations_fit_the_inputs(cls, value: list) -> list:
        name = cls.model_fields["name"].default if "name" in cls.model_fields else None
        inputs = datasets.get(name).metadata["inputs"] if name in datasets else None
        if inputs not in (None, "arrays"):  # arrays: checked once their kind is known
            check_augmentations(value, name, inputs)
        return value

    @field_validator("groups")
    @classmethod
    def _groups_fit_the_data(cls, value: list) -> list:
        if not value:
            return value
        name = cls.model_fields["name"].default if "name" in cls.model_fields else None
        names = [group.name for group in value]
        repeated = sorted({group for group in names if names.count(group) > 1})
        if repeated:
            raise ValueError(f"the group {repeated[0]!r} is named twice; give every attribute its own name")
        if name not in COLUMN_DATASETS + FILE_DATASETS:
            raise ValueError(
                f"data set {name!r} has no files or columns to read groups from; data.groups works with "
                f"{', '.join(COLUMN_DATASETS)} (column) and {', '.join(FILE_DATASETS)} (pattern, metadata); remove it"
            )
        for index, group in enumerate(value):
            if group.column is not None and name not in COLUMN_DATASETS:
                raise ValueError(
                    f"[{index}] {group.name}: data set {name!r} has files, not columns; use pattern: or metadata:"
                )
            if group.pattern is not None and name not in FILE_DATASETS:
                raise ValueError(
                    f"[{index}] {group.name}: data set {name!r} has rows, not files; use column: (or metadata: with "
                    "match: an attribute listed before it)"
                )
            if group.metadata is not None and group.match == "file" and name not in FILE_DATASETS:
                raise ValueError(
                    f"[{index}] {group.name}: match: file needs files, and data set {name!r} has rows; set match: "
                    "to an attribute listed before it"
                )
            if group.metadata is not None and group.match != "file" and group.match not in names[:index]:
                raise ValueError(
                    f"[{index}] {group.name}: match: {group.match!r} is not an attribute listed before it "
                    f"({', '.join(names[:index]) or 'none'}); use file, or list {group.match!r} first"
                )
        return value

    def optional_packages(self) -> dict[str, str]:
        """A data file inside a package (`path: package:NAME/…`) needs that package; the bpe tokenizer needs
        HF tokenizers."""
        needed = {
            option: package_name(value)
            for option in type(self).model_fields
            if option.endswith("path") and package_name(value := getattr(self, option))
        }
        if getattr(self, "tokenizer", None) == "bpe":
            needed["tokenizer"] = "tokenizers"
        return needed


def check_augmentations(augment: list, name: str, inputs: str) -> None:
    """ValueError naming the first augmentation that does not apply to `inputs` (image, audio, …)."""
    for index, entry in enumerate(augment):
        allowed = augmentations.get(entry.name).metadata["inputs"]
        if inputs not in allowed:
            fitting = [other.name for other in augmentations.values() if inputs in other.metadata["inputs"]]
            raise ValueError(
                f"[{index}] {entry.name} applies to {' and '.join(allowed)} inputs, but data set "
                f"{name!r} gives {inputs} inputs; "
                + (f"for {inputs} use: {', '.join(fitting)}" if fitting else "remove it")
            )


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
    positive_class: Annotated[int, Field(ge=0)] | str | None = None
    """Two-class data only: the class that sensitivity, specificity, the threshold chosen on val and the ROC and
    precision-recall curves are about, by name (malignant) or by index in class order (0); default: the second
    class (index 1). A number in quotes ('1') is a class name."""

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError(
                f"val_fraction + test_fraction is {self.val_fraction + self.test_fraction:g}, which leaves "
                "almost nothing to train on; keep their sum below 0.95"
            )
        return self
