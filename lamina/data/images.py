"""Image data: the 8×8 digits built into scikit-learn and MNIST from standard IDX files.

Images are stored as uint8 (N, C, H, W); each batch is scaled to [0, 1] and normalized with per-channel
statistics of the train split, on the batch's device.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy
import torch
from torch import Tensor

from lamina.core.errors import DataError, resolved
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.options import DigitsOptions, MNISTOptions
from lamina.data.paths import data_path
from lamina.data.spec import DataSpec

__all__ = ["ImageNormalizer", "image_bundle", "read_idx", "digits", "mnist"]

# scikit-learn's copy of the UCI digits, read without importing scikit-learn (and SciPy): seconds saved per run
DIGITS_FILE = "package:sklearn/datasets/data/digits.csv.gz"


class ImageNormalizer:
    """uint8 (B, C, H, W) → float32 normalized with per-channel mean and std of the train split."""

    def __init__(self, mean: list[float], std: list[float]):
        self.mean, self.std = mean, std
        self._cache: dict = {}

    def __call__(self, images: Tensor) -> Tensor:
        key = images.device
        if key not in self._cache:
            mean = torch.tensor(self.mean, device=key).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=key).view(1, -1, 1, 1)
            # (x / 255 - mean) / std folded into one multiply-add
            self._cache[key] = (1.0 / (255.0 * std), -mean / std)
        scale, shift = self._cache[key]
        return torch.addcmul(shift, images.float(), scale)


def image_bundle(
    splits: dict[str, Split], class_names: list[str], source: dict, notes: list[str] | None = None
) -> DataBundle:
    """Bundle uint8 image splits: spec from their shape, normalization from the train split."""
    train = splits["train"].inputs
    channels, height, width = train.shape[1:]
    pixels = train.float().div_(255).transpose(0, 1).reshape(channels, -1)  # (C, N*H*W)
    mean = pixels.mean(dim=1).tolist()
    std = pixels.std(dim=1).clamp(min=1e-6).tolist()
    spec = DataSpec(
        kind="image",
        task="classification",
        input_shape=(channels, height, width),
        num_classes=len(class_names),
        class_names=class_names,
    )
    preprocessing = {
        "type": "image",
        "channels": int(channels),
        "height": int(height),
        "width": int(width),
        "mean": mean,
        "std": std,
        "source": source,
    }
    return DataBundle(spec, splits, preprocessing, ImageNormalizer(mean, std), notes or [])


def digits(config: DigitsOptions, seed: int) -> DataBundle:
    """Built-in 8×8 handwritten digits, 10 classes."""
    with gzip.open(data_path(DIGITS_FILE), "rt", encoding="utf-8") as handle:
        table = numpy.loadtxt(handle, delimiter=",")  # as scikit-learn's load_digits reads it
    # pixel values 0..16 → 0..255 so every image data set shares one stored form (uint8)
    pixels = table[:, :-1].reshape(-1, 8, 8)
    images = torch.from_numpy((pixels * (255.0 / 16.0)).round()).to(torch.uint8).unsqueeze(1)  # (N, 1, 8, 8)
    targets = torch.from_numpy(table[:, -1].astype(int)).long()
    fractions = {"test": config.test_fraction, "val": config.val_fraction}
    index = split_indices(targets, len(targets), fractions, seed, config.stratify)
    splits = {name: Split(images[index[name]], targets[index[name]]) for name in ("train", "val", "test")}
    return image_bundle(splits, [str(d) for d in range(10)], {"dataset": "digits", "invert": False})


# ---- MNIST (IDX) --------------------------------------------------------------------------------------

IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}  # big-endian


def read_idx(path: Path) -> Tensor:
    """Read an IDX file (optionally .gz) into a tensor; DataError naming the file if it is corrupt."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"cannot read IDX file {path}: {error}", "re-download the file; it looks corrupt") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(
            f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})",
            "expected MNIST-style files such as train-images-idx3-ubyte.gz",
        )
    dtype, dimensions = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * dimensions
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions)]
    expected = header + numpy.dtype(dtype).itemsize * int(numpy.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"corrupt IDX file {path}: its header promises shape {tuple(shape)} ({expected} bytes) "
            f"but the file holds {len(raw)} bytes",
            "the file is truncated or damaged; copy it again",
        )
    data = numpy.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(data.astype(numpy.dtype(dtype).newbyteorder("=")))


def _find(folder: Path, stem: str) -> Path:
    candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"MNIST folder {folder} has no {stem}(.gz)",
        f"expected {stem}.gz beside train/t10k images and labels; found: "
        + (", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"),
    )


def _mnist_part(images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
    """One part's (images (N, 1, H, W) uint8, labels (N,) int64); DataError naming the file that is wrong."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != torch.uint8:
        raise DataError(
            f"{images_path} holds {str(images.dtype).replace('torch.', '')} values of shape {tuple(images.shape)}",
            "MNIST images are unsigned bytes of shape (N, 28, 28); is it an images file?",
        )
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds an array of shape {tuple(labels.shape)}", "MNIST labels are (N,)")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels",
            "use the images and labels files of the same set, both complete",
        )
    wrong = torch.nonzero((labels < 0) | (labels > 9)).flatten()
    if len(wrong):
        raise DataError(
            f"{labels_path} holds the label {int(labels[wrong[0]])} (sample {int(wrong[0])}); MNIST labels are "
            "digits 0–9",
            "the file is damaged or not MNIST labels; copy it again",
        )
    return images.unsqueeze(1), labels.long()  # (N, 1, 28, 28)


def mnist(config: MNISTOptions, seed: int) -> DataBundle:
    """MNIST from IDX files, with its official 10,000-image test split."""
    folder = data_path(config.path)
    if not folder.is_dir():
        raise DataError(
            f"data.path {config.path!r} is not a folder{resolved(config.path)}",
            "point data.path at the folder with the MNIST IDX files, e.g. --set data.path=../shared/datasets/mnist",
        )
    arrays, files = {}, {}
    for part in ("train", "t10k"):
        files[part] = _find(folder, f"{part}-images-idx3-ubyte")
        arrays[part] = _mnist_part(files[part], _find(folder, f"{part}-labels-idx1-ubyte"))
    if arrays["t10k"][0].shape[2:] != arrays["train"][0].shape[2:]:
        sizes = ["×".join(map(str, arrays[part][0].shape[2:])) for part in ("t10k", "train")]
        raise DataError(
            f"{files['t10k']} holds {sizes[0]} images but {files['train']} holds {sizes[1]} images",
            "the test images must be the size of the training images",
        )
    train_images, train_labels = arrays["train"]
    if config.limit:
        train_images, train_labels = train_images[: config.limit], train_labels[: config.limit]
    index = split_indices(train_labels, len(train_labels), {"val": config.val_fraction}, seed, config.stratify)
    splits = {
        "train": Split(train_images[index["train"]], train_labels[index["train"]]),
        "val": Split(train_images[index["val"]], train_labels[index["val"]]),
        "test": Split(*arrays["t10k"]),
    }
    return image_bundle(splits, [str(d) for d in range(10)], {"dataset": "mnist", "invert": False})
