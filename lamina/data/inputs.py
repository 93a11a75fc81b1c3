"""Raw inputs for prediction (image files, CSV rows) → the stored form a run's model was trained on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from lamina.core.errors import DataError, resolved
from lamina.data.arrays import Standardizer, array_reference, is_array_file, stored_inputs
from lamina.data.audio import AudioFeatures, read_audio_files
from lamina.data.columns import Source
from lamina.data.file_checks import pixel_limit
from lamina.data.frames import frame_columns, read_parquet
from lamina.data.given import is_frame
from lamina.data.images import ImageNormalizer
from lamina.data.paths import IMAGE_SUFFIXES
from lamina.data.tabular import TableEncoder, read_table_lines
from lamina.data.text import TrimPadding, read_texts

__all__ = ["read_inputs", "frame_inputs", "stored_form", "transform_for", "read_image"]


def transform_for(preprocessing: dict) -> Callable[[Tensor], Tensor]:
    """The per-batch transform described by a run's preprocessing record."""
    if preprocessing["type"] == "image":
        return ImageNormalizer(preprocessing["mean"], preprocessing["std"])
    if preprocessing["type"] == "audio":
        return AudioFeatures(preprocessing)
    if preprocessing["type"] == "text" and preprocessing["tokenizer"].get("padding", True):
        return TrimPadding(0)
    if preprocessing["type"] == "arrays":
        return Standardizer(preprocessing["mean"], preprocessing["std"])
    return lambda inputs: inputs


def read_inputs(paths: list[str | Path], preprocessing: dict) -> tuple[Tensor, list[str]]:
    """(inputs in stored form, a label per sample) for image, audio, text, CSV or Parquet files, or — for runs
    trained on arrays — .npy/.npz files (FILE.npz:KEY names one array), per the run's data kind."""
    if "arrays" in preprocessing and all(is_array_file(str(path)) for path in paths):
        return _read_arrays([str(path) for path in paths], preprocessing)
    paths = [Path(path) for path in paths]
    for path in paths:
        if not path.is_file():
            raise DataError(
                f"input file {str(path)!r} does not exist{resolved(path)}",
                "pass files of the kind the run was trained on: images, CSV or Parquet files of rows, text or WAV "
                "files, .npy/.npz arrays",
            )
    if preprocessing["type"] == "image":
        wrong = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
        if wrong:
            raise DataError(
                f"{wrong[0]} is not an image file, but this run was trained on images",
                f"pass files ending in {', '.join(sorted(IMAGE_SUFFIXES))}",
            )
        images = torch.stack([read_image(path, preprocessing) for path in paths])
        return images, [str(path) for path in paths]
    if preprocessing["type"] == "table":
        return _read_rows(paths, preprocessing)
    if preprocessing["type"] == "text":
        return read_texts(paths, preprocessing)
    if preprocessing["type"] == "audio":
        return read_audio_files(paths, preprocessing)
    raise DataError(f"this run's data kind {preprocessing['type']!r} has no file reader for predict", None)


def read_image(path: Path, preprocessing: dict) -> Tensor:
    """One image file → uint8 (C, H, W) with the run's channels and size; DataError over Pillow's pixel limit."""
    try:
        with pixel_limit(str(path)), Image.open(path) as image:
            image = image.convert("L" if preprocessing["channels"] == 1 else "RGB")
            size = (preprocessing["width"], preprocessing["height"])
            if image.size != size:
                # area averaging when shrinking (exact for whole-number factors), bilinear when enlarging
                shrinking = image.size[0] >= size[0] and image.size[1] >= size[1]
                image = image.resize(size, Image.BOX if shrinking else Image.BILINEAR)
            array = numpy.asarray(image, dtype=numpy.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"cannot read image {path}: {error}", "is the file a complete PNG/JPEG?") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # (H, W, C) → (C, H, W)


def _read_rows(paths: list[Path], preprocessing: dict) -> tuple[Tensor, list[str]]:
    encoder = TableEncoder.from_dict(preprocessing["encoder"])
    needed = list(encoder.numeric) + list(encoder.categorical)
    batches, labels = [], []
    for path in paths:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(f"{path} is an image, but this run was trained on table rows", "pass a CSV file")
        if path.suffix.lower() in (".parquet", ".pq"):
            frame, source = read_parquet(str(path), "input")
            header, columns, lines = frame_columns(frame, source)
        else:
            header, columns, lines = read_table_lines(path)
        missing = [name for name in needed if name not in header]
        if missing:
            raise DataError(
                f"{path} lacks the feature columns {', '.join(missing[:5])}"
                + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""),
                "the CSV needs the same feature columns as the training data",
            )
        batches.append(encoder.transform(columns))
        labels += [f"{path.name}:{line}" for line in lines]  # the line of each row, blank lines counted
    return torch.cat(batches), labels


def frame_inputs(frame: Any, preprocessing: dict) -> tuple[Tensor, list[str]]:
    """The rows of a pandas DataFrame, encoded as a run trained on a table encodes them; labelled by index."""
    if preprocessing["type"] != "table":
        raise DataError("a DataFrame was passed, but this run was not trained on a table", "pass its kind of inputs")
    encoder = TableEncoder.from_dict(preprocessing["encoder"])
    header, columns, _ = frame_columns(frame, Source("the DataFrame", "", "row"))
    missing = [name for name in [*encoder.numeric, *encoder.categorical] if name not in header]
    if missing:
        raise DataError(f"the DataFrame lacks the feature columns {', '.join(missing[:5])}",
                        "pass the same feature columns as the training data")  # fmt: skip
    return encoder.transform(columns), [str(index) for index in frame.index]


def _read_arrays(references: list[str], preprocessing: dict) -> tuple[Tensor, list[str]]:
    batches, labels = [], []
    for reference in references:
        array, where = array_reference(reference)
        batches.append(stored_inputs(array, preprocessing))
        labels += [f"{where}[{index}]" for index in range(len(array))]
    return torch.cat(batches), labels


def stored_form(inputs: Any, preprocessing: dict) -> tuple[Tensor, list[str]]:
    """Inputs to predict or explain — files, a DataFrame, arrays shaped as the training arrays, or a tensor already
    in stored form — in stored form, with their names."""
    if is_frame(inputs):
        return frame_inputs(inputs, preprocessing)
    if "arrays" in preprocessing and not isinstance(inputs, list | tuple):  # arrays as the run was given
        return stored_inputs(inputs, preprocessing), [str(i) for i in range(len(inputs))]
    if isinstance(inputs, torch.Tensor):
        return inputs, [str(i) for i in range(len(inputs))]
    return read_inputs(list(inputs), preprocessing)
