"""Array files and arrays → stored form, in numpy alone: .npz/.npy files read without unpickling anything, and
inputs as the training arrays were given turned into the stored form (images uint8 (N, C, H, W), features (N, D)
and sequences (N, T, D) float32). lamina/data/arrays.py builds data sets on these; the bundle runtime
(lamina/bundle), which runs without PyTorch, reads arrays to predict with them.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy

from lamina.core.errors import DataError, resolved

__all__ = ["NPZ_HINT", "load_arrays", "is_array_file", "split_reference", "scale_of", "stored_array"]

NPZ_HINT = "save arrays with numpy.save (.npy) or numpy.savez (.npz); copy the file again if it was cut short"


def load_arrays(path: Path) -> dict[str, numpy.ndarray]:
    """Every array of a .npz (by key) or a .npy (key ''); DataError for a missing, damaged or pickled file."""
    if not path.is_file():
        raise DataError(f"array file {str(path)!r} does not exist{resolved(path)}", "check the path in data")
    try:
        if path.suffix.lower() == ".npy":
            return {"": numpy.load(path, allow_pickle=False)}
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path} is not a complete .npz archive", NPZ_HINT)
        with numpy.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise DataError(f"{path} is not a readable array file ({error})", NPZ_HINT) from None
        raise DataError(
            f"{path} holds Python objects (pickled data), which lamina does not load",
            "save numbers or strings: numpy.savez(path, x=numpy.asarray(x, dtype=float), y=numpy.asarray(y, str))",
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a complete array file ({error})", NPZ_HINT) from None


def is_array_file(reference: str) -> bool:
    """Whether `reference` names a .npy/.npz file (FILE or FILE:KEY), rather than a key of data.path."""
    return split_reference(reference)[0].lower().endswith((".npz", ".npy"))


def split_reference(reference: str) -> tuple[str, str]:
    file, _, key = reference.rpartition(":")
    return (file, key) if file.lower().endswith((".npz", ".npy")) else (reference, "")


def scale_of(x: numpy.ndarray) -> str:
    """How images become uint8: 'uint8', 'times_255' (floats in [0, 1]) or 'rounded' (numbers in [0, 255])."""
    if x.dtype == numpy.uint8:
        return "uint8"
    return "times_255" if x.dtype.kind == "f" and x.size and float(numpy.nanmax(x)) <= 1 else "rounded"


def stored_array(
    x: numpy.ndarray, kind: str, layout: str | None, where: str, scale: str | None = None
) -> numpy.ndarray:
    """Inputs in stored form: images uint8 (N, C, H, W), features (N, D) and sequences (N, T, D) float32."""
    if x.dtype.kind not in "uifb":
        raise DataError(f"{where} holds {x.dtype} values", "inputs must be numbers")
    if kind != "image":
        values = x.astype(numpy.float32)
        bad = numpy.argwhere(~numpy.isfinite(values))
        if len(bad):
            raise DataError(f"{where} holds {values[tuple(bad[0])]} at index {tuple(int(i) for i in bad[0])}",
                            "replace NaN and infinite values before training (e.g. with the column mean)")  # fmt: skip
        if kind == "sequence" and values.ndim == 2:
            values = values[:, :, None]  # (N, T) → (N, T, 1)
        return numpy.ascontiguousarray(values)
    scale = scale or scale_of(x)
    low, high = (float(numpy.nanmin(x)), float(numpy.nanmax(x))) if x.size else (0.0, 0.0)
    if numpy.isnan(x).any() if x.dtype.kind == "f" else False:
        raise DataError(f"{where} holds NaN pixels", "replace them (e.g. with 0) before training")
    limit = 1.0 if scale == "times_255" else 255.0
    if low < 0 or high > limit:
        raise DataError(
            f"{where} holds {x.dtype} pixels from {low:g} to {high:g}, but the training images are "
            + ("floats in [0, 1]" if scale == "times_255" else "in [0, 255]"),
            "store every image on the training images' scale: uint8 0–255, or floats in [0, 1] or [0, 255]",
        )
    pixels = x.astype(numpy.float64) * 255.0 if scale == "times_255" else x
    pixels = numpy.rint(pixels).astype(numpy.uint8) if scale != "uint8" else pixels
    pixels = {"NHW": lambda a: a[:, None], "NHWC": lambda a: a.transpose(0, 3, 1, 2), "NCHW": lambda a: a}[layout](
        pixels
    )
    return numpy.ascontiguousarray(pixels)  # (N, C, H, W)
