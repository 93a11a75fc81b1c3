"""Image folders, .tar.gz archives, MedMNIST .npz: decoding, the cache, bad files, few labels."""

from __future__ import annotations

import os
import tarfile

import numpy
import pytest
import torch
from PIL import Image

from conftest import shared_data
from lamina.config.loading import load_config
from lamina.core.errors import DataError
from lamina.data.build import build_data


def data_of(section: dict, seed: int = 0):
    return build_data(load_config({"data": section, "model": "mlp"}).data, seed)


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory):
    """120 real 8×8 digits (scikit-learn) as PNG files in class folders 0…9, and the pixels they hold."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("pngs") / "digits"
    pixels = {}
    for index in range(120):
        array = (digits.images[index] * 255 / 16).round().astype(numpy.uint8)
        folder = root / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(folder / f"{index:04d}.png")
        pixels[(int(digits.target[index]), index)] = array
    return root, pixels


def test_image_folder_decodes_every_file_exactly(digit_pngs, tmp_path):
    root, pixels = digit_pngs
    data = data_of(
        {
            "name": "image_folder",
            "path": str(root),
            "cache_dir": str(tmp_path),
            "val_fraction": 0.0,
            "test_fraction": 0.0001,
        }
    )
    assert data.spec.input_shape == (1, 8, 8) and data.spec.class_names == [str(d) for d in range(10)]
    images = torch.cat([split.inputs for split in data.splits.values()])
    expected = torch.from_numpy(numpy.stack([pixels[key] for key in sorted(pixels)]))[:, None]
    # the same multiset of images (order depends on the split)
    assert sorted(map(bytes, images.flatten(1).numpy())) == sorted(map(bytes, expected.flatten(1).numpy()))


def test_tar_gz_archive_equals_folder_and_cache_serves_a_read_only_source(digit_pngs, tmp_path):
    root, _ = digit_pngs
    archive = tmp_path / "digits.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(root, arcname="train")
    cache = tmp_path / "cache"
    folder = data_of({"name": "image_folder", "path": str(root), "cache_dir": str(cache)})
    packed = data_of({"name": "image_folder", "path": str(archive), "cache_dir": str(cache)})
    for split in ("train", "val", "test"):
        assert torch.equal(folder.splits[split].inputs, packed.splits[split].inputs)
        assert torch.equal(folder.splits[split].targets, packed.splits[split].targets)
    assert len(list(cache.glob("*.safetensors"))) == 2 and "decoded and cached" in packed.notes[0]
    os.chmod(archive, 0o444)
    again = data_of({"name": "image_folder", "path": str(archive), "cache_dir": str(cache)})
    assert "read from the cache" in again.notes[0]
    assert torch.equal(again.splits["train"].inputs, packed.splits["train"].inputs)


def test_colour_size_and_test_path(tmp_path):
    for split, count in (("train", 6), ("test", 2)):
        for label in ("red", "gray"):
            (tmp_path / split / label).mkdir(parents=True)
            for index in range(count):
                if label == "red":
                    Image.new("RGB", (12, 10), (200, 10, 10)).save(tmp_path / split / label / f"{index}.png")
                else:
                    size = (12, 10) if index else (24, 20)  # one larger image is resized to the common size
                    Image.new("L", size, 90).save(tmp_path / split / label / f"{index}.jpg")
    data = data_of(
        {
            "name": "image_folder",
            "path": str(tmp_path / "train"),
            "test_path": str(tmp_path / "test"),
            "val_fraction": 0.0,
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    assert data.spec.input_shape == (3, 10, 12) and len(data.splits["test"]) == 4
    gray = data.splits["train"].inputs[data.splits["train"].targets == data.spec.class_names.index("gray")]
    assert (gray == 90).all()  # gray repeated on R, G and B, the larger one box-resized exactly
    single = data_of(
        {
            "name": "image_folder",
            "path": str(tmp_path / "train"),
            "channels": 1,
            "size": [5, 6],
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    assert single.spec.input_shape == (1, 5, 6)


def test_a_corrupt_image_is_named_or_skipped_and_counted(digit_pngs, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(digit_pngs[0], root)
    (root / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    with pytest.raises(DataError) as caught:
        data_of({"name": "image_folder", "path": str(root), "cache_dir": str(tmp_path / "c")})
    assert str(caught.value).startswith(f"cannot read image {root / '3' / 'broken.png'}: ")
    assert "data.on_bad_sample: skip" in str(caught.value)
    data = data_of(
        {"name": "image_folder", "path": str(root), "cache_dir": str(tmp_path / "c"), "on_bad_sample": "skip"}
    )
    assert sum(len(split) for split in data.splits.values()) == 120
    assert any(note.startswith("skipped 1 unreadable image(s), e.g. ") for note in data.notes)


def test_missing_or_wrong_paths_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="data.path '/nonexistent/x' does not exist"):
        data_of({"name": "image_folder", "path": "/nonexistent/x"})
    (tmp_path / "a.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match="is a file but not a .tar/.tar.gz archive"):
        data_of({"name": "image_folder", "path": str(tmp_path / "a.zip")})


def test_breastmnist_official_splits_and_positive_class():
    path = shared_data("breastmnist") / "breastmnist.npz"
    data = data_of({"name": "medmnist", "path": str(path), "class_names": ["malignant", "benign"], "positive_class": 0})
    sizes = {name: len(split) for name, split in data.splits.items()}
    assert sizes == {"train": 546, "val": 78, "test": 156}
    assert torch.bincount(data.splits["test"].targets).tolist() == [42, 114]  # MedMNIST v2's published counts
    assert data.spec.input_shape == (1, 28, 28) and data.spec.extra["positive_class"] == 0


def test_medmnist_channels_repeat_gray_and_take_the_luma_of_rgb(tmp_path):
    generator = numpy.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = generator.integers(0, 256, (count, 6, 5, 3), dtype=numpy.uint8)  # (N, H, W, RGB)
        arrays[f"{split}_labels"] = (numpy.arange(count) % 2).reshape(-1, 1)
    numpy.savez(tmp_path / "rgb.npz", **arrays)
    options = {"name": "medmnist", "path": str(tmp_path / "rgb.npz"), "val_fraction": 0.0}
    colour = data_of(options).splits["test"].inputs
    gray = data_of({**options, "channels": 1}).splits["test"].inputs
    assert colour.shape == (4, 3, 6, 5) and gray.shape == (4, 1, 6, 5)
    luma = (arrays["test_images"] @ numpy.array([0.299, 0.587, 0.114])).round()
    assert numpy.array_equal(gray[:, 0].numpy(), luma.astype(numpy.uint8))
    numpy.savez(tmp_path / "gray.npz", **{k: (v[..., 0] if k.endswith("images") else v) for k, v in arrays.items()})
    repeated = data_of({**options, "path": str(tmp_path / "gray.npz"), "channels": 3}).splits["test"].inputs
    assert repeated.shape == (4, 3, 6, 5) and all(torch.equal(repeated[:, c], repeated[:, 0]) for c in (1, 2))
    assert torch.equal(repeated[:, 0], torch.from_numpy(arrays["test_images"][..., 0]))


def test_labelled_fraction_keeps_a_stratified_seeded_subset():
    data = data_of({"name": "digits", "labelled_fraction": 0.1}, seed=4)
    train, pool = data.splits["train"], data.splits["unlabelled"]
    assert len(train) + len(pool) == 1259 and abs(len(train) - 126) <= 5
    assert torch.bincount(train.targets).min() >= 11 and (pool.targets == -1).all()
    again = data_of({"name": "digits", "labelled_fraction": 0.1}, seed=4)
    assert torch.equal(again.splits["train"].targets, train.targets)


def test_classes_and_reconstruction_task():
    data = data_of({"name": "digits", "classes": ["3", "7"], "task": "reconstruction"})
    assert data.spec.task == "reconstruction" and data.spec.class_names == ["3", "7"]
    train = data.splits["train"]
    assert train.targets is train.inputs and data.spec.output_size == 64
