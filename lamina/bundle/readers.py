"""Files → the stored form a bundle's model takes, in numpy: the same values lamina's own readers give
(lamina/data/inputs.py read_image, lamina/data/audio.py read_waveform, lamina/data/arrays.py), without PyTorch.

The text and table readers are in lamina/bundle/rows.py. Each function here is a deliberate copy of lamina's
reader with numpy in place of torch; tests/test_bundle.py checks that both give equal arrays on the same files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy

from lamina.core.errors import DataError, resolved
from lamina.data.array_files import load_arrays, split_reference, stored_array
from lamina.data.file_checks import pixel_limit

__all__ = [
    "IMAGE_SUFFIXES",
    "read_image",
    "read_images",
    "read_waveform",
    "read_audio_files",
    "check_files",
    "read_array_files",
    "stored_arrays",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}  # lamina/data/paths.py


def check_files(paths: list[Path]) -> None:
    """A DataError naming the first path that is not a file (as lamina's read_inputs says it)."""
    for path in paths:
        if not path.is_file():
            raise DataError(
                f"input file {str(path)!r} does not exist{resolved(path)}",
                "pass files of the kind the run was trained on: images, CSV files of rows, text or WAV files",
            )


def read_images(paths: list[Path], preprocessing: dict) -> numpy.ndarray:
    """Image files → uint8 (N, C, H, W); DataError for a file that is not an image."""
    wrong = [path for path in paths if path.suffix.lower() not in IMAGE_SUFFIXES]
    if wrong:
        raise DataError(
            f"{wrong[0]} is not an image file, but this run was trained on images",
            f"pass files ending in {', '.join(sorted(IMAGE_SUFFIXES))}",
        )
    return numpy.stack([read_image(path, preprocessing) for path in paths])


def read_image(path: Path, preprocessing: dict) -> numpy.ndarray:
    """One image file → uint8 (C, H, W) with the run's channels and size: mode L or RGB, area averaging (BOX) when
    shrinking, bilinear when enlarging; DataError over Pillow's pixel limit or for a file Pillow cannot read."""
    from PIL import Image, UnidentifiedImageError  # Pillow: only images need it

    try:
        with pixel_limit(str(path)), Image.open(path) as image:
            image = image.convert("L" if preprocessing["channels"] == 1 else "RGB")
            size = (preprocessing["width"], preprocessing["height"])
            if image.size != size:
                shrinking = image.size[0] >= size[0] and image.size[1] >= size[1]
                image = image.resize(size, Image.BOX if shrinking else Image.BILINEAR)
            array = numpy.asarray(image, dtype=numpy.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"cannot read image {path}: {error}", "is the file a complete PNG/JPEG?") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return numpy.ascontiguousarray(array.transpose(2, 0, 1))  # (H, W, C) → (C, H, W)


def read_waveform(path: Path, sample_rate: int, samples: int) -> numpy.ndarray:
    """One audio file → float32 (samples,) mono at `sample_rate`, zero-padded or cropped. Another sample rate is
    resampled with SciPy's polyphase filter, as lamina's reader does (SciPy is then needed)."""
    try:
        import soundfile
    except ImportError:
        raise DataError(
            "reading audio needs the package 'soundfile', which is not installed", "install it: pip install soundfile"
        ) from None
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises its own LibsndfileError
        raise DataError(f"cannot read audio file {path}: {error}", "is it a complete WAV/FLAC/OGG file?") from None
    audio = audio.mean(axis=1)  # mono
    if rate != sample_rate:
        try:
            from scipy.signal import resample_poly
        except ImportError:
            raise DataError(
                f"{path} is recorded at {rate} Hz, the model at {sample_rate} Hz: resampling needs SciPy, which is "
                "not installed",
                f"install it (pip install scipy), or pass files recorded at {sample_rate} Hz",
            ) from None
        divisor = math.gcd(int(rate), sample_rate)
        audio = resample_poly(audio, sample_rate // divisor, int(rate) // divisor).astype(numpy.float32)
    fixed = numpy.zeros(samples, dtype=numpy.float32)
    fixed[: min(samples, len(audio))] = audio[:samples]
    return fixed


def read_audio_files(paths: list[Path], preprocessing: dict) -> numpy.ndarray:
    """Audio files → float32 (N, samples) at the run's sample rate and length."""
    waves = [read_waveform(path, preprocessing["sample_rate"], preprocessing["samples"]) for path in paths]
    return numpy.stack(waves)


def stored_arrays(array: numpy.ndarray, record: dict) -> numpy.ndarray:
    """Arrays shaped as a run's training arrays were given → its stored form (lamina/data/arrays.py stored_inputs;
    `record`: the preprocessing's "arrays" record: kind, layout, scale)."""
    if record["kind"] == "image":
        return stored_array(array, "image", record["layout"], "the inputs", record["scale"])
    return stored_array(array, record["kind"], None, "the inputs")


def read_array_files(references: list[str], record: dict) -> tuple[numpy.ndarray, list[str]]:
    """The arrays that FILE.npy, FILE.npz (its only array) or FILE.npz:KEY name, in stored form, each sample
    labelled FILE[:KEY][index] (lamina/data/inputs.py reads them so)."""
    batches, labels = [], []
    for reference in references:
        file, key = split_reference(reference)
        held = load_arrays(Path(file))
        if not key and len(held) != 1:
            raise DataError(f"the input: {file} holds {len(held)} arrays ({', '.join(held)})", f"name one: {file}:KEY")
        key = key or next(iter(held))
        where = f"{file}:{key}" if key else file
        if key not in held:
            raise DataError(f"the input: {where} does not exist", f"the file's arrays: {', '.join(held)}")
        batches.append(stored_arrays(held[key], record))
        labels += [f"{where}[{index}]" for index in range(len(held[key]))]
    return numpy.concatenate(batches), labels
