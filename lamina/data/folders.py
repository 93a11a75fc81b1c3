"""Your own images: class-per-subfolder folders (PNG, JPEG, …), the same packed in a .tar/.tar.gz, and MedMNIST
.npz files. Files are decoded once into a uint8 tensor cache (see lamina/data/cache.py)."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy
import torch
from PIL import Image

from lamina.core.errors import DataError
from lamina.data.bundle import Split, split_indices
from lamina.data.cache import cache_folder, cached, source_key
from lamina.data.images import image_bundle
from lamina.data.options import ImageFolderOptions, MedMNISTOptions
from lamina.data.paths import IMAGE_SUFFIXES, data_path

__all__ = ["image_folder", "medmnist", "decode_images", "read_sources"]

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}

LUMA = numpy.array([0.299, 0.587, 0.114])  # ITU-R 601: RGB → grayscale


def _is_image(name: str) -> bool:
    base = PurePosixPath(name).name
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not base.startswith(".")


def read_sources(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """(display name, class name, file bytes) for every image in a folder or archive, in sorted order."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and _is_image(p.name)):
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


def _decode(data: bytes) -> numpy.ndarray:
    """Image bytes → uint8 (H, W) for grayscale or (H, W, 3)."""
    with Image.open(io.BytesIO(data)) as image:
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
            arrays.append(_decode(data))
        except Exception as error:  # Pillow raises many kinds for damaged files
            if not skip_bad:
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


def _load(path: Path, config: ImageFolderOptions, channels, size) -> tuple[torch.Tensor, list[str], list[str], bool]:
    options = {"channels": channels, "size": size, "skip": config.on_bad_sample == "skip"}

    def build():
        images, classes, skipped = decode_images(path, channels, size, options["skip"])
        names = sorted(set(classes))
        labels = torch.tensor([names.index(name) for name in classes], dtype=torch.int64)
        return {"images": images, "labels": labels}, {"class_names": names, "skipped": skipped}

    tensors, record, hit = cached(cache_folder(config.cache_dir), source_key([path], options), build)
    names = record["class_names"]
    return tensors["images"], [names[i] for i in tensors["labels"].tolist()], record["skipped"], hit


def _existing(option: str, label: str) -> Path:
    path = data_path(option)
    if not path.exists():
        raise DataError(
            f"data.{label} {option!r} does not exist",
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
    images, classes, skipped, hit = _load(path, config, config.channels, config.size)
    class_names = sorted(set(classes))
    targets = torch.tensor([class_names.index(name) for name in classes])
    notes = [
        f"{len(images)} images in {len(class_names)} classes from {path.name}"
        + (" (decoded earlier, read from the cache)" if hit else " (decoded and cached)")
    ]
    if config.test_path:
        test_images, test_classes, test_skipped, _ = _load(
            _existing(config.test_path, "test_path"), config, images.shape[1], tuple(images.shape[2:])
        )
        unknown = sorted(set(test_classes) - set(class_names))
        if unknown:
            raise DataError(
                f"data.test_path has classes the training images lack: {', '.join(unknown[:5])}",
                f"training classes: {', '.join(class_names[:10])}",
            )
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
    return image_bundle(splits, class_names, source, notes)


# ---- MedMNIST (.npz) ---------------------------------------------------------------------------------------


def medmnist(config: MedMNISTOptions, seed: int):
    """MedMNIST .npz (official train/val/test splits), 2-D single-label data sets such as BreastMNIST."""
    path = data_path(config.path)
    if not path.is_file():
        raise DataError(
            f"data.path {config.path!r} is not a file",
            "point it at a MedMNIST .npz, e.g. ../shared/datasets/breastmnist/breastmnist.npz",
        )
    try:
        arrays = dict(numpy.load(path))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}", "is it a complete .npz file?") from None
    splits = {}
    for split in ("train", "val", "test"):
        if f"{split}_images" not in arrays or f"{split}_labels" not in arrays:
            raise DataError(
                f"{path} lacks {split}_images/{split}_labels",
                f"a MedMNIST .npz holds train_, val_ and test_ images and labels; found: {', '.join(sorted(arrays))}",
            )
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if labels.ndim == 2 and labels.shape[1] != 1:
            raise DataError(
                f"{path} has {labels.shape[1]} labels per image (multi-label)",
                "only single-label MedMNIST data sets are supported",
            )
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)  # → (N, C, H, W)
        if config.channels is not None and images.shape[1] != config.channels:
            images = (
                numpy.repeat(images, 3, axis=1)
                if config.channels == 3
                else numpy.tensordot(images, LUMA, axes=([1], [0]))[:, None].round()
            )
        splits[split] = Split(
            torch.from_numpy(numpy.ascontiguousarray(images, dtype=numpy.uint8)),
            torch.from_numpy(labels.reshape(-1).astype(numpy.int64)),
        )
    count = int(max(int(split.targets.max()) for split in splits.values())) + 1
    names = config.class_names or [str(i) for i in range(count)]
    if len(names) != count:
        raise DataError(
            f"data.class_names has {len(names)} names but the labels go up to {count - 1}", f"give {count} names"
        )
    if count == 2 and config.positive_class > 1:
        raise DataError(f"data.positive_class is {config.positive_class}, but there are two classes", "use 0 or 1")
    bundle = image_bundle(splits, names, {"dataset": "medmnist"})
    bundle.spec.extra["positive_class"] = config.positive_class
    return bundle
