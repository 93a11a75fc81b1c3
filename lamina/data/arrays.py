"""Arrays → a data set: .npz / .npy files named by key, or numpy arrays and torch tensors passed from Python.

What the inputs are is read from their shape (images (N, H, W), (N, H, W, C), (N, C, H, W); features (N, D);
sequences (N, T) or (N, T, D)) unless `data.kind` says, and the choice is reported in a note. Images are stored
as uint8 (N, C, H, W) and normalized per channel, as every image data set is (so `lamina predict` also takes image
files); features and sequences are stored as given (float32) and standardized per feature with train statistics.
Files are read without unpickling anything.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy
import torch
from torch import Tensor

from lamina.core.errors import DataError
from lamina.data.array_files import is_array_file, load_arrays, scale_of, split_reference, stored_array
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.given import Given, as_array
from lamina.data.images import image_bundle
from lamina.data.labels import encode_labels, regression_spec
from lamina.data.options import check_augmentations
from lamina.data.paths import data_path
from lamina.data.spec import DataSpec
from lamina.data.table_options import INPUTS_OF_KIND, ArraysOptions
from lamina.tasks import tasks

__all__ = ["arrays", "load_arrays", "array_reference", "is_array_file", "stored_inputs", "Standardizer"]

SPLITS = ("train", "val", "test")
# key pairs found without data.x / data.y: (inputs, labels) of the training split, or of every split
PAIRS = [
    ("x", "y"),
    ("X", "y"),
    ("inputs", "targets"),
    ("images", "labels"),
    ("features", "labels"),
    ("data", "target"),
]
SPLIT_PAIRS = [("x_{}", "y_{}"), ("{}_images", "{}_labels"), ("{}_x", "{}_y")]  # Keras' mnist.npz, MedMNIST


def array_reference(reference: str, option: str = "the input") -> tuple[numpy.ndarray, str]:
    """The array a file reference names — FILE.npy, FILE.npz (its only array) or FILE.npz:KEY — and its name."""
    file, key = split_reference(reference)
    held = load_arrays(data_path(file))
    if not key and len(held) != 1:
        raise DataError(f"{option}: {file} holds {len(held)} arrays ({', '.join(held)})", f"name one: {file}:KEY")
    key = key or next(iter(held))
    where = f"{file}:{key}" if key else file
    if key not in held:
        raise DataError(f"{option}: {where} does not exist", f"the file's arrays: {', '.join(held)}")
    return held[key], where


def _reference(reference: str, config: ArraysOptions, option: str) -> tuple[numpy.ndarray, str]:
    """The array `reference` names (a file, FILE:KEY, or a key of data.path) and how to call it in messages."""
    if is_array_file(reference):
        return array_reference(reference, f"data.{option}")
    if config.path is None:
        raise DataError(
            f"data.{option}: {reference!r} is not a .npz/.npy file, and data.path (a file whose key it could be) "
            "is not set",
            f"set data.path to the .npz holding {reference!r}, or name a file: data.{option}: FILE.npz:KEY",
        )
    held = load_arrays(data_path(config.path))
    if reference not in held:
        raise DataError(f"data.{option}: {config.path} has no array {reference!r}", f"its arrays: {', '.join(held)}")
    return held[reference], f"{config.path}:{reference}"


def _file_splits(config: ArraysOptions) -> tuple[dict[str, tuple], list[str]]:
    """{split: (x, y, name of x)} read from the files the options name, and notes on what was found."""
    references = {split: (getattr(config, f"{prefix}x"), getattr(config, f"{prefix}y")) for split, prefix in
                  (("train", ""), ("val", "val_"), ("test", "test_"))}  # fmt: skip
    if references["train"] == (None, None):
        if config.path is None:
            raise DataError(
                "data set 'arrays' needs data.path (a .npz) or data.x and data.y",
                "e.g. data: {name: arrays, x: features.npy, y: labels.npy}; from Python: lamina.train(config, "
                "data=(x, y))",
            )
        held = load_arrays(data_path(config.path))
        found = _find_pairs(held, config.path)
        notes = [f"read {', '.join(f'{x}/{y} as {split}' for split, (x, y) in found.items())} from {config.path}"]
        references = {**{split: (None, None) for split in SPLITS}, **found}
    else:
        notes = []
    if references["train"][1] is None:
        raise DataError("data.x is set but data.y is not", "name the labels too: data.y")
    splits = {}
    for split, (x, y) in references.items():
        if x is None:
            continue
        prefix = "" if split == "train" else f"{split}_"
        inputs, where = _reference(x, config, f"{prefix}x")
        labels, _ = _reference(y, config, f"{prefix}y")
        splits[split] = (inputs, labels, where)
    return splits, notes


def _find_pairs(held: dict[str, numpy.ndarray], path: str) -> dict[str, tuple[str, str]]:
    for x, y in SPLIT_PAIRS:
        if x.format("train") in held and y.format("train") in held:
            return {s: (x.format(s), y.format(s)) for s in SPLITS if x.format(s) in held and y.format(s) in held}
    for x, y in PAIRS:
        if x in held and y in held:
            return {"train": (x, y)}
    raise DataError(
        f"data.path {path} holds the arrays {', '.join(held) or 'none'}; which are the inputs and the labels?",
        "name them: data.x: KEY and data.y: KEY (or save them as x and y)",
    )


def arrays(config: ArraysOptions, seed: int, given: Given | None = None) -> DataBundle:
    """Arrays from files or from Python → a DataBundle, split into train/val/test where no split is given."""
    if given is not None:
        parts = {name: (x, y, f"data[{name!r}][0]") for name, (x, y) in given.splits.items()}
        notes = [given.describe()]
    else:
        parts, notes = _file_splits(config)
    kind, layout, note = _kind(parts["train"][0], config, parts["train"][2])
    notes.append(note)
    if config.augment:
        try:
            check_augmentations(config.augment, "arrays", INPUTS_OF_KIND[kind])
        except ValueError as error:
            raise DataError(f"data.augment{error}", "set data.kind if the inputs were read as the wrong kind") from None
    inputs = {}
    for name, (x, y, where) in parts.items():
        if len(x) != len(y):
            raise DataError(f"{where} holds {len(x)} samples but its labels hold {len(y)}", "give one label per sample")
        inputs[name] = torch.from_numpy(stored_array(x, kind, layout, where))
        if inputs[name].shape[1:] != inputs["train"].shape[1:]:
            raise DataError(
                f"{where} holds samples of shape {tuple(inputs[name].shape[1:])}, the training samples "
                f"{tuple(inputs['train'].shape[1:])}",
                "every split must hold samples of one shape",
            )
    task, targets, class_names, label_notes = encode_labels({name: part[1] for name, part in parts.items()}, config)
    notes += label_notes
    splits = _split(inputs, targets, config, seed, task, notes)
    record = {"kind": kind, "layout": layout}
    if kind == "image":
        scale = scale_of(parts["train"][0])
        bundle = image_bundle(splits, class_names or [], {"dataset": "arrays"}, notes)
        bundle.preprocessing["arrays"] = {**record, "scale": scale}
        if not tasks.get(task).classes:  # images → numbers
            spec = replace(bundle.spec, task=task, num_classes=None, class_names=None, output_size=None)
            bundle.spec = regression_spec(spec, splits["train"].targets)
            bundle.splits = {name: Split(s.inputs, s.targets.reshape(len(s), -1)) for name, s in splits.items()}
        return bundle
    return _feature_bundle(splits, task, class_names, kind, record, notes)


def _kind(x: numpy.ndarray, config: ArraysOptions, where: str) -> tuple[str, str | None, str]:
    """(kind, image layout, a note saying what was assumed) for the training inputs `x`."""
    shape, dtype = tuple(x.shape), x.dtype
    if x.dtype.kind not in "uifb":
        raise DataError(f"{where} holds {dtype} values", "inputs must be numbers (uint8 pixels, or floats)")
    kind = config.kind
    if kind == "auto":
        square = len(shape) == 3 and shape[1] == shape[2] >= 8 and _pixel_range(x)
        kind = {2: "features", 4: "image"}.get(len(shape)) or (
            "image" if dtype == numpy.uint8 or square else "sequence"
        )
        if len(shape) not in (2, 3, 4):
            raise DataError(f"{where} has shape {shape}", "inputs are (N, D), (N, T[, D]) or images (N, H, W[, C])")
    layout = None
    if kind == "image":
        layout = config.layout if config.layout != "auto" else _layout(shape, where)
        if len(shape) != len(layout) or (len(shape) == 4 and "C" not in layout):
            raise DataError(f"data.layout is {layout}, but {where} has shape {shape}", "use NHW for 3-D arrays, "
                            "NHWC or NCHW for 4-D")  # fmt: skip
    elif kind == "features" and len(shape) != 2 or kind == "sequence" and len(shape) not in (2, 3):
        raise DataError(f"data.kind is {kind}, but {where} has shape {shape}",
                        "features are (N, D); sequences (N, T) or (N, T, D)")  # fmt: skip
    if kind == "image":
        described = _images_described(shape, layout, x)
    elif kind == "features":
        described = f"{shape[1]} features per sample"
    else:
        described = f"sequences of {shape[1]} steps × {shape[2] if len(shape) == 3 else 1} features"
    how = "as data.kind says" if config.kind != "auto" else "set data.kind if that is wrong"
    return kind, layout, f"{where} {shape} {dtype} read as {described} ({how})"


def _images_described(shape: tuple, layout: str, x: numpy.ndarray) -> str:
    """'8×8 images with 1 channel (NHW; floats in [0, 1], scaled ×255)'."""
    sizes = dict(zip(layout, shape, strict=True))
    channels = sizes.get("C", 1)
    scale = {"uint8": "", "times_255": "; floats in [0, 1], scaled ×255", "rounded": "; values in [0, 255], rounded"}
    return (f"{sizes['H']}×{sizes['W']} images with {channels} channel{'s' if channels > 1 else ''} "
            f"({layout}{scale[scale_of(x)]})")  # fmt: skip


def _pixel_range(x: numpy.ndarray) -> bool:
    return x.size > 0 and float(x.min()) >= 0 and float(x.max()) <= 255


def _layout(shape: tuple, where: str) -> str:
    if len(shape) == 3:
        return "NHW"
    if shape[3] in (1, 3, 4):
        return "NHWC"
    if shape[1] in (1, 3, 4):
        return "NCHW"
    raise DataError(f"{where} has shape {shape}: which axis holds the channels?", "set data.layout: NHWC or NCHW")


def _split(inputs: dict, targets: dict, config: ArraysOptions, seed: int, task: str, notes: list) -> dict:
    """Held-out splits made from the training samples where none was given (seeded; stratified by class)."""
    missing = {name: getattr(config, f"{name}_fraction") for name in ("test", "val") if name not in inputs}
    splits = {name: Split(inputs[name], targets[name]) for name in inputs}
    if not missing:
        return splits
    train = splits["train"]
    classes = tasks.get(task).classes
    index = split_indices(train.targets if classes else None, len(train), missing, seed, config.stratify)
    made = " and ".join(f"{name} ({fraction:.0%})" for name, fraction in missing.items())
    notes.append(
        f"made the {made} split{'s' if len(missing) > 1 else ''} from the {len(train):,} training samples "
        f"({'stratified, ' if classes and config.stratify else ''}seed {seed})"
    )
    splits.update({name: train.subset(rows) for name, rows in index.items()})
    return {name: splits[name] for name in SPLITS if name in splits}


class Standardizer:
    """float32 (B, ...) features → (x − mean) / std per feature (the last axis), with train statistics."""

    def __init__(self, mean: list[float], std: list[float]):
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def __call__(self, inputs: Tensor) -> Tensor:
        return (inputs - self.mean.to(inputs.device)) / self.std.to(inputs.device)


def _feature_bundle(splits: dict, task: str, class_names, kind: str, record: dict, notes: list) -> DataBundle:
    train = splits["train"].inputs
    flat = train.reshape(-1, train.shape[-1]).double()  # (N·T, D): statistics per feature
    mean, std = flat.mean(dim=0).tolist(), flat.std(dim=0).nan_to_num(1.0).clamp(min=1e-6).tolist()
    spec = DataSpec(kind="tabular" if kind == "features" else "sequence", task=task, input_shape=tuple(train.shape[1:]))
    if tasks.get(task).classes:
        spec.num_classes, spec.class_names, spec.output_size = len(class_names), class_names, len(class_names)
    else:
        spec = regression_spec(spec, splits["train"].targets)
        splits = {name: Split(s.inputs, s.targets.reshape(len(s), -1)) for name, s in splits.items()}
    preprocessing = {"type": "arrays", "arrays": record, "mean": mean, "std": std, "source": {"dataset": "arrays"}}
    return DataBundle(spec, splits, preprocessing, Standardizer(mean, std), notes)


def stored_inputs(values: Any, preprocessing: dict) -> Tensor:
    """New inputs (a numpy array or tensor, as the training arrays were given) in the stored form of a run."""
    array = as_array(values, "the inputs")
    record = preprocessing["arrays"]
    if record["kind"] == "image":
        return torch.from_numpy(stored_array(array, "image", record["layout"], "the inputs", record["scale"]))
    return torch.from_numpy(stored_array(array, record["kind"], None, "the inputs"))
