"""Your own images: class-per-subfolder folders (PNG, JPEG, …), the same packed in a .tar/.tar.gz, and MedMNIST
.npz files. Files are decoded once into a uint8 tensor cache (see lamina/data/cache.py). A .npz holds uint8 pixels,
or floats in [0, 1] or [0, 255] (scaled to uint8, with a note); anything else is refused, naming the array."""

from __future__ import annotations

import io
import math
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy
import torch
from PIL import Image

from lamina.core.errors import DataError, resolved
from lamina.data.bundle import Split, split_indices
from lamina.data.cache import cache_folder, cached, source_key
from lamina.data.file_checks import pixel_limit
from lamina.data.groups import read_groups, relative_path, split_groups
from lamina.data.images import image_bundle
from lamina.data.options import ImageFolderOptions, MedMNISTOptions
from lamina.data.paths import IMAGE_SUFFIXES, data_path

__all__ = ["image_folder", "medmnist", "decode_images", "read_sources"]

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}

LUMA = numpy.array([0.299, 0.587, 0.114])  # ITU-R 601: RGB → grayscale
HOW = {
    "cached": "decoded earlier, read from the cache",
    "stored": "decoded and cached",
    "memory": "decoded; not cached",
}


def _is_image(name: str) -> bool:
    base = PurePosixPath(name).name
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not base.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _is_image(p.name))


def read_sources(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """(display name, class name, file bytes) for every image in a folder or archive, in sorted order."""
    if path.is_dir():
        for file in _image_files(path):
            if file.parent == path:
                raise DataError(
                    f"{file} is not inside a class folder",
                    f"put each image in a subfolder named after its class, e.g. {path}/cat/{file.name}",
                )
            yield str(file), file.parent.name, file.read_bytes()
        return
    try:
        with tarfile.open(path) as archive:
            members = sorted(
                (m for m in archive.getmembers() if m.isfile() and _is_image(m.name)), key=lambda m: m.name
            )
            for member in members:
                parent = PurePosixPath(member.name).parent.name
                if not parent:
                    raise DataError(
                        f"{path}:{member.name} is not inside a class folder",
                        "the archive must hold <class>/<image> paths",
                    )
                handle = archive.extractfile(member)
                yield f"{path}:{member.name}", parent, handle.read() if handle else b""
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"cannot read archive {path}: {error}", "is it a complete .tar or .tar.gz file?") from None


def sample_files(path: Path, skipped: list[str]) -> list[str]:
    """Each decoded image's path relative to the folder or archive `path` (`/`-separated), in the decoded order:
    what data.groups patterns are searched in and metadata is joined by."""
    if path.is_dir():
        return [relative_path(file, path) for file in _image_files(path) if str(file) not in set(skipped)]
    with tarfile.open(path) as archive:
        names = sorted(m.name for m in archive.getmembers() if m.isfile() and _is_image(m.name))
    return [name for name in names if f"{path}:{name}" not in set(skipped)]


def _decode(data: bytes, name: str) -> numpy.ndarray:
    """Image bytes → uint8 (H, W) for grayscale or (H, W, 3); DataError over Pillow's pixel limit."""
    with pixel_limit(name), Image.open(io.BytesIO(data)) as image:
        image.load()
        converted = image.convert("L" if image.mode in GRAY_MODES else "RGB")
        return numpy.asarray(converted, dtype=numpy.uint8)


def _resize(array: numpy.ndarray, size: tuple[int, int]) -> numpy.ndarray:
    image = Image.fromarray(array)
    height, width = array.shape[:2]
    shrinking = height >= size[0] and width >= size[1]  # the same rule as predict (lamina/data/inputs.py)
    return numpy.asarray(image.resize((size[1], size[0]), Image.BOX if shrinking else Image.BILINEAR))


def decode_images(path: Path, channels: int | None, size: tuple[int, int] | None, skip_bad: bool):
    """Decode every image under `path` → (uint8 (N, C, H, W), class name per image, skipped file names)."""
    arrays, classes, skipped = [], [], []
    for name, label, data in read_sources(path):
        try:
            arrays.append(_decode(data, name))
        except Exception as error:  # Pillow raises many kinds for damaged files
            if not skip_bad:
                if isinstance(error, DataError):  # over the pixel limit
                    raise
                raise DataError(
                    f"cannot read image {name}: {error}", "replace or remove the file, or set data.on_bad_sample: skip"
                ) from None
            skipped.append(name)
            continue
        classes.append(label)
    if not arrays:
        raise DataError(
            f"no readable images in {path}",
            f"expected <class>/<image> files ending in {', '.join(sorted(IMAGE_SUFFIXES))}",
        )
    if channels is None:
        channels = 3 if any(array.ndim == 3 for array in arrays) else 1
    if size is None:
        size = Counter(array.shape[:2] for array in arrays).most_common(1)[0][0]
    stacked = numpy.empty((len(arrays), channels, *size), dtype=numpy.uint8)
    for index, array in enumerate(arrays):
        if array.shape[:2] != tuple(size):
            array = _resize(array, size)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.shape[2] != channels:  # gray → RGB repeats the channel; RGB → gray uses ITU-R 601 luma
            array = (
                numpy.repeat(array, 3, axis=2)
                if channels == 3
                else (array @ LUMA)[:, :, None].round().astype(numpy.uint8)
            )
        stacked[index] = array.transpose(2, 0, 1)  # (H, W, C) → (C, H, W)
    return torch.from_numpy(stacked), classes, skipped


def _valid(tensors: dict, record) -> bool:
    """Whether a cache entry read back is whole: images and a label (naming a class) for each."""
    if set(tensors) != {"images", "labels"} or not isinstance(record, dict):
        return False
    images, labels, names = tensors["images"], tensors["labels"], record.get("class_names")
    return (
        isinstance(names, list)
        and isinstance(record.get("skipped"), list)
        and images.dtype == torch.uint8
        and images.ndim == 4
        and labels.ndim == 1
        and len(images) == len(labels)
        and (len(labels) == 0 or 0 <= int(labels.min()) <= int(labels.max()) < len(names))
    )


def _load(path: Path, config: ImageFolderOptions, channels, size):
    """(images, class name per image, skipped files, how the cache served them, notes) for a folder or archive."""
    options = {"channels": channels, "size": size, "skip": config.on_bad_sample == "skip"}

    def build():
        images, classes, skipped = decode_images(path, channels, size, options["skip"])
        names = sorted(set(classes))
        labels = torch.tensor([names.index(name) for name in classes], dtype=torch.int64)
        return {"images": images, "labels": labels}, {"class_names": names, "skipped": skipped}

    # every image file's identity, so a changed, added or removed image inside a class folder is seen
    key = source_key(_image_files(path), options, root=path) if path.is_dir() else source_key([path], options)
    tensors, record, how, notes = cached(cache_folder(config.cache_dir), key, build, str(path), _valid)
    names = record["class_names"]
    return tensors["images"], [names[i] for i in tensors["labels"].tolist()], record["skipped"], how, notes


def _existing(option: str, label: str) -> Path:
    path = data_path(option)
    if not path.exists():
        raise DataError(
            f"data.{label} {option!r} does not exist{resolved(option)}",
            "point it at a folder of class subfolders or a .tar/.tar.gz archive of them",
        )
    if path.is_file() and not path.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise DataError(
            f"data.{label} {option!r} is a file but not a .tar/.tar.gz archive",
            "point it at a folder of class subfolders or a .tar/.tar.gz archive of them",
        )
    return path


def image_folder(config: ImageFolderOptions, seed: int):
    """Class-per-subfolder images from a folder or .tar.gz (e.g. the CIFAR-10 JPEG archives)."""
    path = _existing(config.path, "path")
    images, classes, skipped, how, cache_notes = _load(path, config, config.channels, config.size)
    groups = read_groups(config.groups, files=sample_files(path, skipped) if config.groups else [])
    class_names = sorted(set(classes))
    targets = torch.tensor([class_names.index(name) for name in classes])
    notes = [f"{len(images)} images in {len(class_names)} classes from {path.name} ({HOW[how]})", *cache_notes]
    test_groups: dict[str, list[str]] = {}
    if config.test_path:
        test_images, test_classes, test_skipped, _, test_notes = _load(
            _existing(config.test_path, "test_path"), config, images.shape[1], tuple(images.shape[2:])
        )
        notes += test_notes
        unknown = sorted(set(test_classes) - set(class_names))
        if unknown:
            raise DataError(
                f"data.test_path has classes the training images lack: {', '.join(unknown[:5])}",
                f"training classes: {', '.join(class_names[:10])}",
            )
        test_files = sample_files(_existing(config.test_path, "test_path"), test_skipped) if config.groups else []
        test_groups = read_groups(config.groups, files=test_files)
        skipped = skipped + test_skipped
        index = split_indices(targets, len(targets), {"val": config.val_fraction}, seed, config.stratify)
        test = Split(test_images, torch.tensor([class_names.index(name) for name in test_classes]))
    else:
        fractions = {"test": config.test_fraction, "val": config.val_fraction}
        index = split_indices(targets, len(targets), fractions, seed, config.stratify)
        test = Split(images[index["test"]], targets[index["test"]])
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]}")
    splits = {
        "train": Split(images[index["train"]], targets[index["train"]]),
        "val": Split(images[index["val"]], targets[index["val"]]),
        "test": test,
    }
    source = {"dataset": "image_folder", "skipped": len(skipped)}
    bundle = image_bundle(splits, class_names, source, notes)
    bundle.groups = split_groups(groups, index)  # train, val (and test when drawn from `path`)
    for attribute, names in test_groups.items():
        bundle.groups[attribute]["test"] = names
    return bundle


# ---- MedMNIST (.npz) ---------------------------------------------------------------------------------------


NPZ_HINT = "a MedMNIST .npz is a zip of .npy arrays (numpy.savez); copy the file again if it was cut short"
PIXELS = "expected uint8 pixels (0–255) or floats in [0, 1] or [0, 255]"
SPLITS = ("train", "val", "test")


def _read_npz(path: Path) -> dict[str, numpy.ndarray]:
    """The six MedMNIST arrays of a .npz, read without unpickling anything."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a complete .npz archive", NPZ_HINT)
    arrays = {}
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            for split in SPLITS:
                if f"{split}_images" not in archive.files or f"{split}_labels" not in archive.files:
                    raise DataError(
                        f"{path} lacks {split}_images/{split}_labels",
                        "a MedMNIST .npz holds train_, val_ and test_ images and labels; found: "
                        + ", ".join(sorted(archive.files)),
                    )
            for name in (f"{split}_{part}" for split in SPLITS for part in ("images", "labels")):
                try:
                    arrays[name] = archive[name]
                except ValueError as error:
                    if "allow_pickle" not in str(error):
                        raise
                    raise DataError(  # numpy refuses object arrays before unpickling them
                        f"{path}: array {name!r} holds Python objects (pickled data), which lamina does not load",
                        "save images and labels as numeric arrays (uint8 images, integer labels) with numpy.savez",
                    ) from None
                if not isinstance(arrays[name], numpy.ndarray):
                    raise DataError(f"{path}: {name} is not a .npy array", NPZ_HINT)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a complete .npz archive ({error})", NPZ_HINT) from None
    return arrays


def _pixels(path: Path, name: str, images: numpy.ndarray) -> tuple[numpy.ndarray, str | None]:
    """uint8 pixels of one images array, and the scale assumed for float images (None: none assumed)."""
    if images.dtype == numpy.uint8 or images.size == 0:
        return images.astype(numpy.uint8, copy=False), None
    if images.dtype.kind not in "uif":
        raise DataError(f"{path}: {name} holds {images.dtype} values; {PIXELS}", "save the images as numbers")
    nan = numpy.isnan(images) if images.dtype.kind == "f" else numpy.zeros(images.shape, dtype=bool)
    values = images[~nan]
    low, high = (float(values.min()), float(values.max())) if values.size else (math.nan, math.nan)
    if nan.any() or low < 0 or high > 255:
        raise DataError(
            f"{path}: {name} holds {images.dtype} values from {low:g} to {high:g}"
            + (", and NaN" if nan.any() else "")
            + f"; {PIXELS}",
            "rescale the images to 0–255 (or 0–1), replace NaN, and save the .npz again",
        )
    if images.dtype.kind in "ui":
        return images.astype(numpy.uint8), None
    if high <= 1:
        return numpy.rint(images.astype(numpy.float64) * 255.0).astype(numpy.uint8), "[0, 1]: scaled ×255 (rounded)"
    return numpy.rint(images).astype(numpy.uint8), "[0, 255]: rounded"


def _labels(path: Path, split: str, labels: numpy.ndarray, count: int) -> numpy.ndarray:
    """One split's labels as int64 class indices (N,), checked against its `count` images."""
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise DataError(
            f"{path} has {labels.shape[1]} labels per image (multi-label)",
            "only single-label MedMNIST data sets are supported",
        )
    flat = labels.reshape(-1) if labels.ndim in (1, 2) else labels
    if flat.ndim != 1 or flat.dtype.kind not in "uif":
        raise DataError(
            f"{path}: {split}_labels holds {flat.dtype} values of shape {labels.shape}",
            "labels are class indices 0, 1, … in an (N,) or (N, 1) array",
        )
    if len(flat) != count:
        raise DataError(
            f"{path}: {split}_images holds {count} images but {split}_labels holds {len(flat)} labels",
            "every image needs exactly one label",
        )
    wrong = numpy.flatnonzero(~numpy.isfinite(flat) | (flat < 0) | (flat != numpy.round(flat)))
    if wrong.size:
        value = flat[wrong[0]]
        shown = int(value) if numpy.isfinite(value) and value == round(value) else value
        raise DataError(
            f"{path}: {split}_labels holds the label {shown} (sample {wrong[0]}); labels are class indices 0, 1, …",
            "fix those labels, or remove the samples",
        )
    return flat.astype(numpy.int64)


def medmnist(config: MedMNISTOptions, seed: int):
    """MedMNIST .npz (official train/val/test splits), 2-D single-label data sets such as BreastMNIST."""
    path = data_path(config.path)
    if not path.is_file():
        raise DataError(
            f"data.path {config.path!r} is not a file{resolved(config.path)}",
            "point it at a MedMNIST .npz, e.g. ../shared/datasets/breastmnist/breastmnist.npz",
        )
    arrays = _read_npz(path)
    splits, scales = {}, {}
    for split in SPLITS:
        images, shape = arrays[f"{split}_images"], arrays[f"{split}_images"].shape
        if images.ndim not in (3, 4):
            raise DataError(
                f"{path}: {split}_images has shape {shape}",
                "expected (N, height, width) or (N, height, width, channels)",
            )
        if shape[1:] != arrays["train_images"].shape[1:]:
            sizes = ["×".join(map(str, array.shape[1:])) for array in (images, arrays["train_images"])]
            raise DataError(
                f"{path}: {split}_images are {sizes[0]} images but train_images are {sizes[1]}",
                "every split must hold images of one size and channel count",
            )
        labels = _labels(path, split, arrays[f"{split}_labels"], len(images))
        images, scale = _pixels(path, f"{split}_images", images)
        if scale:
            scales[f"{split}_images"] = (str(arrays[f"{split}_images"].dtype), scale)
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)  # → (N, C, H, W)
        if config.channels is not None and images.shape[1] != config.channels:
            images = (
                numpy.repeat(images, 3, axis=1)
                if config.channels == 3
                else numpy.tensordot(images, LUMA, axes=([1], [0]))[:, None].round()
            )
        splits[split] = Split(
            torch.from_numpy(numpy.ascontiguousarray(images, dtype=numpy.uint8)), torch.from_numpy(labels)
        )
    notes = _scale_notes(path, scales)
    count = max((int(split.targets.max()) for split in splits.values() if len(split)), default=-1) + 1
    names = config.class_names or [str(i) for i in range(count)]
    for split, part in splits.items():
        if config.class_names and len(part) and int(part.targets.max()) >= len(names):
            raise DataError(
                f"{path}: {split}_labels holds the label {int(part.targets.max())}, but data.class_names names "
                f"{len(names)} classes (labels 0–{len(names) - 1})",
                "name every class in data.class_names, or fix the labels",
            )
    if len(names) != count:
        raise DataError(
            f"data.class_names has {len(names)} names but the labels go up to {count - 1}", f"give {count} names"
        )
    return image_bundle(splits, names, {"dataset": "medmnist"}, notes)


def _scale_notes(path: Path, scales: dict[str, tuple[str, str]]) -> list[str]:
    """One note on the scale assumed for float images; an error when the splits are on different scales."""
    assumed = sorted({scale for _, scale in scales.values()})
    if len(assumed) > 1:
        one, other = (next(name for name, (_, scale) in scales.items() if scale == s) for s in assumed)
        raise DataError(
            f"{path}: {one} are floats in {assumed[0].split(':')[0]} but {other} in {assumed[1].split(':')[0]}",
            "store every split on the same scale",
        )
    if not assumed:
        return []
    dtypes = "/".join(sorted({dtype for dtype, _ in scales.values()}))
    return [f"{', '.join(scales)} are {dtypes} in {assumed[0]} to uint8"]
