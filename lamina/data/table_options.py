"""Data sets of your own that are tables or arrays: a CSV or Parquet file, a pandas DataFrame passed from
Python, and arrays (.npz / .npy files, or numpy arrays and torch tensors passed from Python). Part of the data set
catalogue (lamina/data/catalogue.py); importing it does not import PyTorch."""

from typing import Literal

from pydantic import Field, model_validator

from lamina.core.options import Names
from lamina.data.options import SplitOptions, check_augmentations, datasets

__all__ = ["TableOptions", "CSVOptions", "ParquetOptions", "DataFrameOptions", "ArraysOptions", "INPUTS_OF_KIND"]

INPUTS_OF_KIND = {"image": "image", "features": "tabular", "sequence": "sequence"}  # arrays' kind → model inputs


class TableOptions(SplitOptions):
    """What every table shares: one row per sample, feature columns (numeric or categorical) and a target column."""

    target: str
    """Column to predict."""
    features: Names | None = None
    """Feature columns; default: every column except the target and `ignore`."""
    ignore: Names = []
    """Columns to leave out (ids, free text, leaks of the target)."""
    categorical: Names | None = None
    """Columns to one-hot encode; default: every column that is not (at least 90 %) numbers."""
    task: Literal["auto", "classification", "regression"] = "auto"
    """auto: classification for text targets or at most `max_classes` distinct whole numbers, else regression."""
    max_classes: int = Field(20, ge=2)
    """Largest number of distinct whole-number targets that auto treats as classes."""
    missing: Literal["impute", "drop", "error"] = "impute"
    """Missing feature values: impute (train median / a 'missing' category), drop the row, or stop with an error."""


@datasets.register("lamina.data.tabular:csv_table", inputs="tabular")
class CSVOptions(TableOptions):
    """Your own table in a CSV file: a header line, then one row per sample."""

    name: Literal["csv"] = "csv"
    path: str
    """The CSV file."""
    separator: str = ","
    """Field separator."""


@datasets.register("lamina.data.frames:parquet", inputs="tabular")
class ParquetOptions(TableOptions):
    """Your own table in a Parquet file (needs pandas and pyarrow: pip install 'lamina[tables]')."""

    name: Literal["parquet"] = "parquet"
    path: str
    """The .parquet file."""

    def optional_packages(self) -> dict[str, str]:
        return {"": "pandas", "path": "pyarrow", **super().optional_packages()}


@datasets.register("lamina.data.frames:dataframe", inputs="tabular", given=True)
class DataFrameOptions(TableOptions):
    """A pandas DataFrame passed from Python: lamina.train(config, data=frame), or data=(features, target) with a
    DataFrame of features and a Series of targets, or {"train": frame, "test": other} for a test split of your own."""

    name: Literal["dataframe"] = "dataframe"
    target: str | None = None  # type: ignore[assignment]
    """Column to predict; with data=(features, target) the target Series' name (or 'target')."""


@datasets.register("lamina.data.arrays:arrays", inputs="arrays", given=True)
class ArraysOptions(SplitOptions):
    """Arrays of samples and labels: .npz / .npy files with any key names, or numpy arrays / torch tensors passed
    from Python (lamina.train(config, data=(x, y)), or {"train": (x, y), "test": (x2, y2)}). Inputs are images
    (N, H, W), (N, H, W, C) or (N, C, H, W); features (N, D); or sequences (N, T) / (N, T, D). Labels are whole
    numbers or strings (classification) or floats (regression)."""

    name: Literal["arrays"] = "arrays"
    path: str | None = None
    """A .npz (or .npy) file holding the arrays that `x` and `y` name by key."""
    x: str | None = None
    """The inputs: a key of `path`, or a file — `features.npy`, `data.npz` (its only array) or `data.npz:arr_0`;
    default: the one pair of keys in `path` named like x/y, inputs/targets, images/labels, features/labels."""
    y: str | None = None
    """The labels (or regression targets), named as `x` is."""
    val_x: str | None = None
    """Validation inputs of your own, named as `x` is; default: hold out `val_fraction` of the training samples."""
    val_y: str | None = None
    """Validation labels, with val_x."""
    test_x: str | None = None
    """Test inputs of your own, named as `x` is; default: hold out `test_fraction` of the samples."""
    test_y: str | None = None
    """Test labels, with test_x."""
    kind: Literal["auto", "image", "features", "sequence"] = "auto"
    """What the inputs are; auto: 4-D arrays are images, 3-D ones too when uint8 or square (H = W ≥ 8) values in
    [0, 255], else sequences; 2-D arrays are features (the choice is reported in a note)."""
    layout: Literal["auto", "NHW", "NHWC", "NCHW"] = "auto"
    """Image axes; auto: channels-last when the last axis has 1, 3 or 4 entries, else channels-first (reported)."""
    task: Literal["auto", "classification", "regression"] = "auto"
    """auto: classification for string labels or at most `max_classes` distinct whole numbers, else regression."""
    max_classes: int = Field(100, ge=2)
    """Largest number of distinct whole-number labels that auto treats as classes."""
    class_names: Names | None = None
    """Names of the classes: for whole-number labels 0, 1, … in label order; for string labels, their order."""

    @model_validator(mode="after")
    def _pairs_and_augmentations(self):
        for inputs, labels in (("val_x", "val_y"), ("test_x", "test_y")):
            if (getattr(self, inputs) is None) != (getattr(self, labels) is None):
                raise ValueError(f"{inputs} and {labels} come together; give both or neither")
        if self.kind != "auto":  # auto: checked when the arrays are read
            check_augmentations(self.augment, self.name, INPUTS_OF_KIND[self.kind])
        return self
