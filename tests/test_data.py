"""Data sets, splits, batching and preprocessing."""

from __future__ import annotations

import gzip
import struct

import pytest
import torch

from conftest import shared_data
from lamina.config.loading import load_config
from lamina.core.errors import DataError
from lamina.data.build import build_data
from lamina.data.bundle import Split, batch_bounds, epoch_order, iterate_batches, split_indices
from lamina.data.images import read_idx


def data_of(section: dict, seed: int = 0):
    return build_data(load_config({"data": section, "model": "mlp"}).data, seed)


def test_digits_is_built_in_stratified_and_seeded():
    first, again, other = data_of({"name": "digits"}), data_of({"name": "digits"}), data_of({"name": "digits"}, 1)
    sizes = {name: len(split) for name, split in first.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == pytest.approx(360, abs=10)
    assert torch.equal(first.splits["test"].targets, again.splits["test"].targets)
    assert not torch.equal(first.splits["test"].inputs, other.splits["test"].inputs)
    counts = torch.bincount(first.splits["test"].targets)
    assert counts.max() - counts.min() <= 2  # each class is split in the same proportion
    assert first.splits["train"].inputs.dtype == torch.uint8 and first.spec.input_shape == (1, 8, 8)


def test_image_normalization_uses_train_statistics_only():
    data = data_of({"name": "digits"})
    train = data.transform(data.splits["train"].inputs)
    assert train.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert train.std().item() == pytest.approx(1.0, abs=1e-3)
    test = data.transform(data.splits["test"].inputs)
    assert abs(test.mean().item()) > 1e-4  # other splits are not re-centred on themselves


def test_split_indices_cover_every_sample_once():
    targets = torch.arange(103) % 3
    parts = split_indices(targets, 103, {"test": 0.2, "val": 0.1}, seed=5)
    joined = torch.sort(torch.cat(list(parts.values()))).values
    assert torch.equal(joined, torch.arange(103))


def test_batches_are_slices_in_a_seeded_order_and_resume_mid_epoch():
    split = Split(torch.arange(10).float().unsqueeze(1), torch.arange(10))
    order = epoch_order(10, seed=0, epoch=2)
    assert torch.equal(order, epoch_order(10, seed=0, epoch=2))
    assert not torch.equal(order, epoch_order(10, seed=0, epoch=3))
    batches = [targets for _, targets in iterate_batches(split, 4, order)]
    assert torch.equal(torch.cat(batches), order)
    resumed = [targets for _, targets in iterate_batches(split, 4, order, start_batch=1)]
    assert torch.equal(torch.cat(resumed), torch.cat(batches[1:]))


def test_a_trailing_single_sample_joins_the_previous_batch():
    assert batch_bounds(9, 4) == [(0, 4), (4, 9)]
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(1, 4) == [(0, 1)]


def test_breast_cancer_is_standardized_with_train_statistics():
    data = data_of({"name": "breast_cancer"})
    assert data.spec.kind == "tabular" and data.spec.input_shape == (30,)
    assert data.spec.class_names == ["malignant", "benign"]
    train = data.splits["train"].inputs
    assert torch.allclose(train.mean(0), torch.zeros(30), atol=1e-5)


def write_csv(path, text: str):
    path.write_text(text)
    return str(path)


def test_csv_encodes_numbers_and_categories_and_imputes_missing(tmp_path):
    rows = ["size,colour,weight,label"] + [
        f"{i % 7},{['red', 'green', 'blue'][i % 3]},{'' if i == 4 else i * 0.5},{'yes' if i % 2 else 'no'}"
        for i in range(60)
    ]
    path = write_csv(tmp_path / "table.csv", "\n".join(rows) + "\n")
    data = data_of({"name": "csv", "path": path, "target": "label"})
    assert data.spec.task == "classification" and data.spec.class_names == ["no", "yes"]
    assert data.spec.feature_names == ["size", "weight", "colour=blue", "colour=green", "colour=red"]
    assert not torch.isnan(data.splits["train"].inputs).any()
    assert any("imputed missing values in 1 rows" in note for note in data.notes)


def test_csv_regression_target_is_detected(tmp_path):
    rows = ["x,y"] + [f"{i},{i * 1.37 + 0.01}" for i in range(50)]
    data = data_of({"name": "csv", "path": write_csv(tmp_path / "r.csv", "\n".join(rows)), "target": "y"})
    assert data.spec.task == "regression" and data.spec.num_targets == 1
    assert data.splits["train"].targets.shape[1] == 1


def test_csv_unknown_target_column_suggests_the_closest(tmp_path):
    path = write_csv(tmp_path / "t.csv", "size,label\n1,a\n2,b\n")
    with pytest.raises(DataError) as caught:
        data_of({"name": "csv", "path": path, "target": "lable"})
    assert str(caught.value) == (
        f"data.target: CSV file {path} has no column 'lable'\n  hint: did you mean 'label'? columns: size, label"
    )


def test_csv_missing_values_can_be_an_error(tmp_path):
    path = write_csv(tmp_path / "m.csv", "a,b,label\n1,,x\n2,3,y\n4,5,x\n")
    with pytest.raises(DataError, match=r"missing values in 1 rows \(first on line 2\)"):
        data_of({"name": "csv", "path": path, "target": "label", "missing": "error"})


def test_csv_ragged_rows_name_the_line(tmp_path):
    path = write_csv(tmp_path / "bad.csv", "a,label\n1,x\n2,y,extra\n")
    with pytest.raises(DataError, match="line 3: 3 fields, but the header has 2"):
        data_of({"name": "csv", "path": path, "target": "label"})


def idx_bytes(array: torch.Tensor) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def test_idx_round_trip_and_corruption(tmp_path):
    images = torch.randint(0, 255, (5, 28, 28), dtype=torch.uint8)
    good = tmp_path / "images-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(idx_bytes(images)))
    assert torch.equal(read_idx(good), images)
    truncated = tmp_path / "cut-idx3-ubyte"
    truncated.write_bytes(idx_bytes(images)[:-100])
    with pytest.raises(DataError, match=r"corrupt IDX file .*promises shape \(5, 28, 28\)"):
        read_idx(truncated)
    garbage = tmp_path / "garbage-idx3-ubyte"
    garbage.write_bytes(b"hello world")
    with pytest.raises(DataError, match="is not an IDX file"):
        read_idx(garbage)


def test_missing_mnist_folder_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="is not a folder") as caught:
        data_of({"name": "mnist", "path": str(tmp_path / "nowhere")})
    assert "data.path" in caught.value.hint


def test_mnist_from_the_shared_idx_files():
    path = shared_data("mnist")
    data = data_of({"name": "mnist", "path": str(path), "val_fraction": 0.1})
    assert len(data.splits["test"]) == 10_000
    assert len(data.splits["train"]) + len(data.splits["val"]) == 60_000
    assert data.spec.input_shape == (1, 28, 28) and data.spec.num_classes == 10
