"""Bad data files: each is a DataError naming the file (column, line, split) and what was received, or a note —
never an internal error, a silent change, or a run that trains on nothing. Files are made here, in tmp_path."""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy
import pytest
import torch
import yaml
from PIL import Image

from conftest import run_cli
from lamina.config.loading import load_config
from lamina.core.errors import DataError
from lamina.data.build import build_data
from lamina.data.checks import check_bundle
from lamina.data.inputs import read_image


def data_of(section: dict, seed: int = 0):
    return build_data(load_config({"data": section, "model": "mlp"}).data, seed)


def error_of(section: dict) -> DataError:
    with pytest.raises(DataError) as caught:
        data_of(section)
    return caught.value


def write_config(path: Path, section: dict) -> str:
    path.write_text(yaml.safe_dump({"data": section, "model": "mlp"}))
    return str(path)


def image_folder(root: Path, counts: dict[str, int], suffix: str = ".png", size=(8, 8)) -> Path:
    """Class folders of random grayscale images: {class: count}."""
    generator = numpy.random.default_rng(len(counts))
    for label, count in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = generator.integers(0, 256, size, dtype=numpy.uint8)
            Image.fromarray(pixels).save(root / label / f"{index:04d}{suffix}")
    return root


def blank_png(path: Path, width: int, height: int) -> Path:
    """A complete, valid black grayscale PNG of any size, written without holding its pixels in memory."""
    compressor = zlib.compressobj()
    row = bytes(width + 1)  # filter byte 0, then the pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# ---- 1. the decode cache ---------------------------------------------------------------------------------


def folder_options(root: Path, cache: Path) -> dict:
    return {"name": "image_folder", "path": str(root), "cache_dir": str(cache), "val_fraction": 0.25}


def test_the_cache_sees_a_truncated_image_inside_a_class_folder(tmp_path):
    root = image_folder(tmp_path / "pets", {"cat": 8, "dog": 8}, suffix=".jpg")
    options = folder_options(root, tmp_path / "cache")
    assert "decoded and cached" in data_of(options).notes[0]
    damaged = root / "cat" / "0005.jpg"
    damaged.write_bytes(damaged.read_bytes()[:200])
    error = error_of(options)
    assert str(error).startswith(f"cannot read image {damaged}: ")


def test_the_cache_sees_new_images_in_class_folders(tmp_path):
    root = image_folder(tmp_path / "pets", {"cat": 6, "dog": 6})
    options = folder_options(root, tmp_path / "cache")
    first = data_of(options)
    assert sum(len(split) for split in first.splits.values()) == 12
    again = data_of(options)
    assert "read from the cache" in again.notes[0]
    image_folder(tmp_path / "more", {"cat": 10, "dog": 10})
    for label in ("cat", "dog"):
        for file in (tmp_path / "more" / label).iterdir():
            file.rename(root / label / f"new-{file.name}")
    grown = data_of(options)
    assert sum(len(split) for split in grown.splits.values()) == 32
    assert "decoded and cached" in grown.notes[0]


@pytest.mark.parametrize("damage", ["truncated tensors", "bad json"])
def test_a_damaged_cache_entry_is_decoded_again_with_a_note(tmp_path, damage):
    root = image_folder(tmp_path / "pets", {"cat": 6, "dog": 6})
    cache = tmp_path / "cache"
    options = folder_options(root, cache)
    first = data_of(options)
    if damage == "truncated tensors":
        (entry,) = cache.glob("*.safetensors")
        entry.write_bytes(entry.read_bytes()[:40])
    else:
        (entry,) = cache.glob("*.json")
        entry.write_text('{"class_names": ["cat", ')
    again = data_of(options)
    assert f"the cached decode of {root} was damaged; decoded again" in again.notes
    for name in ("train", "test"):
        assert torch.equal(again.splits[name].inputs, first.splits[name].inputs)
    assert "read from the cache" in data_of(options).notes[0]  # and the entry was written again


def test_a_cache_folder_that_cannot_be_written_keeps_the_decode_in_memory(tmp_path):
    root = image_folder(tmp_path / "pets", {"cat": 6, "dog": 6})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # a cache folder below a file cannot be made, even by root
    data = data_of(folder_options(root, blocker / "cache"))
    assert sum(len(split) for split in data.splits.values()) == 12
    assert data.notes[0].endswith("(decoded; not cached)")
    note = next(note for note in data.notes if note.startswith("the cache folder"))
    assert note.startswith(f"the cache folder {blocker / 'cache'} cannot be written (")
    assert note.endswith("the decoded images are kept in memory for this run only")


# ---- 2. MedMNIST .npz ------------------------------------------------------------------------------------


def medmnist_arrays(**changes) -> dict[str, numpy.ndarray]:
    generator = numpy.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 20), ("val", 6), ("test", 6)):
        arrays[f"{split}_images"] = generator.integers(0, 256, (count, 6, 5), dtype=numpy.uint8)
        arrays[f"{split}_labels"] = (numpy.arange(count) % 2).reshape(-1, 1)
    return {**arrays, **changes}


def npz(tmp_path: Path, **changes) -> dict:
    path = tmp_path / "data.npz"
    numpy.savez(path, **medmnist_arrays(**changes))
    return {"name": "medmnist", "path": str(path)}


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_medmnist_float_images_in_0_1_or_0_255_are_scaled_with_a_note(tmp_path, scale):
    pixels = medmnist_arrays()
    floats = {name: pixels[name].astype(numpy.float32) / 255.0 * scale for name in pixels if name.endswith("images")}
    data = data_of(npz(tmp_path, **floats))
    for split in ("train", "val", "test"):
        assert numpy.array_equal(data.splits[split].inputs[:, 0].numpy(), pixels[f"{split}_images"])
    expected = "[0, 1]: scaled ×255 (rounded)" if scale == 1.0 else "[0, 255]: rounded"
    assert f"train_images, val_images, test_images are float32 in {expected} to uint8" in data.notes


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (numpy.array([-0.5, 0.2, 1.0]), "train_images holds float64 values from -0.5 to 1"),
        (numpy.array([0.0, 300.0, 2.0]), "train_images holds float64 values from 0 to 300"),
        (numpy.array([0.0, numpy.nan, 0.5]), "train_images holds float64 values from 0 to 0.5, and NaN"),
        (numpy.array([-3, 5, 7], dtype=numpy.int16), "train_images holds int16 values from -3 to 7"),
    ],
)
def test_medmnist_pixels_out_of_range_are_refused(tmp_path, values, expected):
    images = numpy.resize(values, (20, 6, 5))
    error = error_of(npz(tmp_path, train_images=images))
    assert str(error).startswith(f"{tmp_path / 'data.npz'}: {expected}; expected uint8 pixels")


def test_medmnist_splits_that_disagree_name_the_split(tmp_path):
    path = tmp_path / "data.npz"
    error = error_of(npz(tmp_path, val_labels=numpy.zeros((5, 1), dtype=numpy.int64)))
    assert str(error).startswith(f"{path}: val_images holds 6 images but val_labels holds 5 labels")
    error = error_of(npz(tmp_path, test_labels=numpy.array([0, 1, -1, 0, 1, 0]).reshape(-1, 1)))
    assert str(error).startswith(f"{path}: test_labels holds the label -1 (sample 2)")
    error = error_of({**npz(tmp_path, test_labels=numpy.array([0, 1, 2, 0, 1, 0])), "class_names": ["a", "b"]})
    assert str(error).startswith(f"{path}: test_labels holds the label 2, but data.class_names names 2 classes")
    error = error_of(npz(tmp_path, test_images=numpy.zeros((6, 7, 5), dtype=numpy.uint8)))
    assert str(error).startswith(f"{path}: test_images are 7×5 images but train_images are 6×5")


def test_a_damaged_or_foreign_npz_is_not_a_complete_archive(tmp_path):
    whole = tmp_path / "whole.npz"
    numpy.savez(whole, **medmnist_arrays())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[:1000])
    text = tmp_path / "text.npz"
    text.write_text("train_images,train_labels\n1,2\n")
    for path in (cut, text):
        error = error_of({"name": "medmnist", "path": str(path)})
        assert str(error).startswith(f"{path} is not a complete .npz archive")


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    labels = numpy.empty(20, dtype=object)
    labels[:] = [{"label": i % 2} for i in range(20)]
    error = error_of(npz(tmp_path, train_labels=labels))
    assert str(error).startswith(f"{tmp_path / 'data.npz'}: array 'train_labels' holds Python objects (pickled data)")


# ---- 3. MNIST IDX -----------------------------------------------------------------------------------------


def idx(array: numpy.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    return header + array.astype(numpy.uint8).tobytes()


def mnist_folder(folder: Path, train_labels=None, test_images=None) -> dict:
    generator = numpy.random.default_rng(1)
    parts = {
        "train-images-idx3-ubyte": generator.integers(0, 256, (40, 28, 28)),
        "train-labels-idx1-ubyte": numpy.arange(40) % 10 if train_labels is None else train_labels,
        "t10k-images-idx3-ubyte": generator.integers(0, 256, (10, 28, 28)) if test_images is None else test_images,
        "t10k-labels-idx1-ubyte": numpy.arange(10),
    }
    folder.mkdir()
    for name, array in parts.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx(array)))
    return {"name": "mnist", "path": str(folder)}


def test_mnist_files_that_disagree_name_the_file(tmp_path):
    bad = numpy.arange(40) % 10
    bad[7] = 200
    error = error_of(mnist_folder(tmp_path / "a", train_labels=bad))
    assert str(error).startswith(f"{tmp_path / 'a' / 'train-labels-idx1-ubyte.gz'} holds the label 200 (sample 7)")
    error = error_of(mnist_folder(tmp_path / "b", train_labels=numpy.arange(39) % 10))
    images, labels = (tmp_path / "b" / f"train-{kind}-idx{n}-ubyte.gz" for kind, n in (("images", 3), ("labels", 1)))
    assert str(error).startswith(f"{images} holds 40 images but {labels} holds 39 labels")
    error = error_of(mnist_folder(tmp_path / "c", test_images=numpy.zeros((10, 32, 32))))
    test, train = (tmp_path / "c" / f"{part}-images-idx3-ubyte.gz" for part in ("t10k", "train"))
    assert str(error).startswith(f"{test} holds 32×32 images but {train} holds 28×28 images")


# ---- 4. checks every classification data set gets ------------------------------------------------------------


def test_a_single_class_or_a_repeated_class_name_is_an_error(tmp_path):
    one_class = npz(tmp_path, train_labels=numpy.zeros((20, 1), dtype=numpy.int64))
    error = error_of(one_class)
    assert str(error).startswith("the training split holds samples of one class only ('0')")
    assert "needs at least two classes" in str(error)
    error = error_of({"name": "digits", "classes": ["3"]})
    assert "needs at least two classes" in str(error)
    digits = data_of({"name": "digits"})  # a data set of your own could name two classes alike
    digits.spec = replace(digits.spec, class_names=[*"012345677", "9"])
    with pytest.raises(DataError, match=r"^the class name '7' is given twice \(classes 7 and 8\)"):
        check_bundle(digits)


def test_a_class_in_test_but_never_in_train_gets_a_note(tmp_path):
    data = data_of(npz(tmp_path, test_labels=numpy.array([0, 1, 2, 0, 1, 0])))
    assert data.spec.num_classes == 3
    assert "class '2' has samples in test but none in train: the model cannot learn it" in data.notes


# ---- 5. CSV, text and time series -----------------------------------------------------------------------


def numbers_csv(path: Path, cell: str = "nine", line: int = 13) -> Path:
    rows = ["size,width,label"] + [f"{i % 7},{i * 0.5},{'yes' if i % 2 else 'no'}" for i in range(30)]
    rows[line - 1] = f"{cell},1.5,yes"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_word_in_a_numeric_column_is_an_error_unless_the_column_is_categorical(tmp_path):
    path = numbers_csv(tmp_path / "t.csv")
    options = {"name": "csv", "path": str(path), "target": "label"}
    error = error_of(options)
    assert str(error).startswith(f"column 'size' of {path} is numbers except 1 of 30 cells; the first, 'nine',")
    assert "is on line 13" in str(error) and "data.categorical" in error.hint
    data = data_of({**options, "categorical": ["size"]})
    assert "size" not in data.spec.feature_names and "size=0" in data.spec.feature_names
    target = tmp_path / "target.csv"
    target.write_text("x,grade\n" + "".join(f"{i},{'five' if i == 6 else i % 5}\n" for i in range(30)))
    error = error_of({"name": "csv", "path": str(target), "target": "grade"})
    assert str(error).startswith(f"target 'grade' of {target} is numbers except 1 of 30 cells; the first, 'five',")
    assert "is on line 8" in str(error) and "data.task: classification" in error.hint
    assert (
        data_of({"name": "csv", "path": str(target), "target": "grade", "task": "classification"}).spec.num_classes == 6
    )


def test_infinite_cells_are_an_error_naming_column_and_line(tmp_path):
    path = numbers_csv(tmp_path / "t.csv", cell="-inf", line=5)
    error = error_of({"name": "csv", "path": str(path), "target": "label"})
    assert str(error).startswith(f"column 'size' of {path} holds '-inf' on line 5, which is not a finite number")


def test_a_repeated_column_name_is_an_error_naming_both_positions(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,a,label\n" + "".join(f"{i},{i},{i},{i % 2}\n" for i in range(12)))
    error = error_of({"name": "csv", "path": str(path), "target": "label"})
    assert str(error).startswith(f"CSV file {path} has two columns named 'a': columns 1 and 3")


def test_ragged_rows_after_blank_lines_name_the_right_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1,x\n\n\n2,y\n3,z,extra\n")
    with pytest.raises(DataError, match=r"line 6: 3 fields, but the header has 2"):
        data_of({"name": "csv", "path": str(path), "target": "label"})
    tsv = tmp_path / "t.tsv"
    tsv.write_text("text\tlabel\nhello\tham\n\n\nwin money\tspam\nno label here\n")
    with pytest.raises(DataError, match=r"t.tsv, line 6: 1 fields, expected at least 2"):
        data_of({"name": "labelled_text", "path": str(tsv)})
    series = tmp_path / "s.csv"
    series.write_text("value\n" + "".join(f"{i}\n" for i in range(30)) + "\n\n" + "oops\n" + "1\n" * 60)
    with pytest.raises(DataError, match=r"column 'value' of .*s.csv holds 'oops' on line 34"):
        data_of({"name": "timeseries", "path": str(series), "target": "value", "lookback": 4, "horizon": 2})


def test_infinity_in_a_time_series_is_an_error(tmp_path):
    series = tmp_path / "s.csv"
    series.write_text("value\n" + "".join(f"{i}\n" for i in range(80)) + "inf\n" + "1\n" * 20)
    with pytest.raises(DataError, match=r"column 'value' of .*s.csv holds 'inf' on line 82"):
        data_of({"name": "timeseries", "path": str(series), "target": "value", "lookback": 4, "horizon": 2})


def test_latin_1_files_name_the_byte_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("name,label\nbob,1\ncafé,0\n".encode("latin-1"))
    error = error_of({"name": "csv", "path": str(path), "target": "label"})
    assert str(error).startswith(f"CSV file {path} is not UTF-8 text: byte 20 (line 3) is 0xe9")
    assert "convert the file to UTF-8" in error.hint
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes("first line\nna\xefve\n".encode("latin-1"))
    error = error_of({"name": "text", "path": str(corpus)})
    assert str(error).startswith(f"{corpus} is not UTF-8 text: byte 13 (line 2) is 0xef")


# ---- 6. decompression bombs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "pixels"), [(15000, "225,000,000"), (10000, "100,000,000")])
def test_images_over_the_pixel_limit_are_refused(tmp_path, side, pixels):
    root = image_folder(tmp_path / "pets", {"cat": 4, "dog": 4})
    bomb = blank_png(root / "cat" / "huge.png", side, side)
    error = error_of(folder_options(root, tmp_path / "cache"))
    assert str(error).startswith(f"image {bomb} has {pixels} pixels, more than the limit of 89,478,485")
    assert "refused" in error.hint
    with pytest.raises(DataError, match=f"image .*huge.png has {pixels} pixels"):
        read_image(bomb, {"channels": 1, "width": 8, "height": 8})


# ---- through the CLI: exit 2, one message, no traceback -------------------------------------------------------


def test_lamina_validate_reports_bad_files_without_a_traceback(tmp_path):
    cases = {
        "one class": (
            {"name": "image_folder", "path": str(image_folder(tmp_path / "cats", {"cat": 6}))},
            "needs at least two classes",
        ),
        "a word among numbers": (
            {"name": "csv", "path": str(numbers_csv(tmp_path / "n.csv")), "target": "label"},
            "the first, 'nine', is on line 13",
        ),
        "latin-1": (
            {"name": "csv", "path": str(tmp_path / "l.csv"), "target": "label"},
            "is not UTF-8 text: byte 20 (line 3)",
        ),
        "negative pixels": (
            npz(tmp_path, train_images=numpy.full((20, 6, 5), -1.0)),
            "train_images holds float64 values from -1 to -1",
        ),
    }
    (tmp_path / "l.csv").write_bytes("name,label\nbob,1\ncafé,0\n".encode("latin-1"))
    for index, (case, (section, phrase)) in enumerate(cases.items()):
        section = {**section, "cache_dir": str(tmp_path / "cache")} if section["name"] == "image_folder" else section
        result = run_cli("validate", write_config(tmp_path / f"{index}.yaml", section))
        assert result.returncode == 2, (case, result.stderr)
        assert result.stderr.startswith("error: ") and phrase in result.stderr, (case, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, case
