"""Your own data with no preparation: arrays in .npz/.npy files under any key names, numpy arrays and tensors
passed from Python, pandas DataFrames and Parquet files — each trains to a real accuracy and predicts."""

from __future__ import annotations

import gzip
import json

import numpy
import pytest
import torch
import yaml

from conftest import run_cli
from lamina import load_run, train
from lamina.config.loading import load_config
from lamina.core.errors import ConfigError, DataError, RunError
from lamina.data.build import build_data
from lamina.data.given import given_data
from lamina.data.paths import data_path
from lamina.pipeline import resume

with gzip.open(data_path("package:sklearn/datasets/data/digits.csv.gz"), "rt") as handle:
    DIGITS = numpy.loadtxt(handle, delimiter=",")  # scikit-learn's 8×8 digits: 64 pixels (0–16), then the label
IMAGES = DIGITS[:, :-1].reshape(-1, 8, 8) / 16.0  # (1797, 8, 8) floats in [0, 1]
LABELS = DIGITS[:, -1].astype(numpy.int64)
MLP = {"name": "mlp", "hidden_sizes": [64]}
QUICK = {"epochs": 10, "batch_size": 32}


def data_of(section: dict, given=None):
    config = load_config({"data": section, "model": "mlp"}, data_defaults=given.defaults if given else None)
    return build_data(config.data, 0, given=given)


def agreement(predictions: list[dict], labels) -> float:
    return float(numpy.mean([int(p["label"]) == int(label) for p, label in zip(predictions, labels, strict=True)]))


def test_arrays_named_arr_0_in_two_files_train_and_predict(tmp_path):
    numpy.savez(tmp_path / "x.npz", IMAGES.astype(numpy.float32))
    numpy.savez(tmp_path / "y.npz", LABELS)
    config = {"data": {"name": "arrays", "x": str(tmp_path / "x.npz"), "y": str(tmp_path / "y.npz")}, "model": MLP,
              "train": QUICK}  # fmt: skip
    run = train(config, runs_dir=tmp_path / "runs", progress="quiet")
    assert run.metrics["test"]["accuracy"] > 0.93
    assert run.spec.kind == "image" and run.spec.input_shape == (1, 8, 8)
    notes = json.loads((run.dir / "data.json").read_text())["notes"]
    assert f"{tmp_path / 'x.npz'}:arr_0 (1797, 8, 8) float32 read as 8×8 images with 1 channel (NHW; floats in " \
           "[0, 1], scaled ×255) (set data.kind if that is wrong)" in notes  # fmt: skip
    assert agreement(run.predict(IMAGES[:200].astype(numpy.float32)), LABELS[:200]) > 0.93
    from_file = run.predict([str(tmp_path / "x.npz")])
    assert len(from_file) == 1797 and from_file[0]["input"] == f"{tmp_path / 'x.npz'}:arr_0[0]"


def test_numpy_arrays_passed_from_python_train_evaluate_and_resume(tmp_path):
    features = DIGITS[:, :-1]  # (N, 64)
    run = train({"model": MLP, "train": QUICK}, data=(features, LABELS), runs_dir=tmp_path, progress="quiet")
    assert run.config.data.name == "arrays" and run.spec.kind == "tabular"
    assert run.metrics["test"]["accuracy"] > 0.93
    assert agreement(run.predict(features[:300]), LABELS[:300]) > 0.93
    assert run.evaluate("test")["accuracy"] == run.metrics["test"]["accuracy"]  # trained here: the data is known
    again = load_run(run.dir)
    with pytest.raises(RunError, match=r"learned from data passed from Python \(train 1,797 samples passed from "
                                       r"Python\), so evaluating it needs that data again"):  # fmt: skip
        again.evaluate("test")
    assert again.evaluate("test", data=(features, LABELS))["accuracy"] == run.metrics["test"]["accuracy"]
    changed = features.copy()
    changed[0, 0] += 1
    with pytest.raises(RunError, match="the data passed is not the data run"):
        again.evaluate("test", data=(changed, LABELS))
    cli = run_cli("evaluate", str(run.dir))
    assert cli.returncode == 2 and "needs that data again" in cli.stderr and "Traceback" not in cli.stderr
    (run.dir / "summary.json").write_text(json.dumps({**run.summary, "status": "interrupted"}))
    with pytest.raises(RunError, match="so resuming it needs that data again"):
        resume(run.dir, progress="quiet")


def test_splits_passed_from_python_are_kept_and_the_rest_drawn_from_train():
    given = given_data({"train": (torch.tensor(IMAGES[:1500]), LABELS[:1500].tolist()), "test": (IMAGES[1500:],
                        LABELS[1500:])})  # fmt: skip
    data = data_of({}, given)
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 1350, "val": 150, "test": 297}
    assert torch.equal(data.splits["test"].targets, torch.from_numpy(LABELS[1500:]))
    assert "made the val (10%) split from the 1,500 training samples (stratified, seed 0)" in data.notes


def test_a_pandas_dataframe_trains_and_predicts(tmp_path):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(DIGITS[:, :-1], columns=[f"pixel{i}" for i in range(64)])
    frame["digit"] = [f"d{int(label)}" for label in LABELS]
    run = train({"model": MLP, "data": {"target": "digit"}, "train": QUICK}, data=frame, runs_dir=tmp_path,
                progress="quiet")  # fmt: skip
    assert run.config.data.name == "dataframe" and run.spec.class_names[:3] == ["d0", "d1", "d2"]
    assert run.metrics["test"]["accuracy"] > 0.93
    predictions = run.predict(frame.drop(columns="digit").iloc[:200])
    assert numpy.mean([p["label"] == f"d{label}" for p, label in zip(predictions, LABELS[:200], strict=True)]) > 0.93
    # (features, target): the target Series' name becomes the target column
    split = train({"model": MLP, "train": QUICK}, data=(frame.drop(columns="digit"), frame["digit"]),
                  runs_dir=tmp_path, progress="quiet")  # fmt: skip
    assert split.config.data.target == "digit" and split.metrics["test"]["accuracy"] > 0.93


def test_a_parquet_file_trains_and_predicts(tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pandas.DataFrame(DIGITS[:, :-1], columns=[f"pixel{i}" for i in range(64)])
    frame["digit"] = LABELS
    frame.to_parquet(tmp_path / "digits.parquet")
    config = tmp_path / "parquet.yaml"
    config.write_text(yaml.safe_dump({"data": {"name": "parquet", "path": str(tmp_path / "digits.parquet"),
                                               "target": "digit"}, "model": MLP, "train": QUICK}))  # fmt: skip
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert load_run(folder).metrics["test"]["accuracy"] > 0.93
    frame.drop(columns="digit").iloc[:100].to_parquet(tmp_path / "new.parquet")
    predicted = run_cli("predict", str(folder), str(tmp_path / "new.parquet"), "--json")
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert predicted.returncode == 0 and len(rows) == 100 and rows[0]["input"] == "new.parquet:0"
    assert agreement(rows, LABELS[:100]) > 0.93


@pytest.mark.parametrize(
    ("array", "section", "shape", "note"),
    [
        (numpy.zeros((40, 8, 8, 3), numpy.uint8), {}, (3, 8, 8), "read as 8×8 images with 3 channels (NHWC)"),
        (numpy.zeros((40, 3, 8, 8), numpy.uint8), {}, (3, 8, 8), "read as 8×8 images with 3 channels (NCHW)"),
        (numpy.zeros((40, 5, 8, 8), numpy.uint8), {"layout": "NCHW"}, (5, 8, 8), "images with 5 channels (NCHW)"),
        (numpy.zeros((40, 12, 3), numpy.float32), {}, (12, 3), "read as sequences of 12 steps × 3 features"),
        (numpy.zeros((40, 12), numpy.float32), {"kind": "sequence"}, (12, 1), "as data.kind says"),
        (numpy.zeros((40, 12), numpy.float32), {}, (12,), "read as 12 features per sample"),
    ],
)
def test_the_kind_of_inputs_is_read_from_their_shape_and_reported(array, section, shape, note):
    data = data_of(section, given_data((array, numpy.arange(40) % 2)))
    assert data.spec.input_shape == shape and any(note in line for line in data.notes), data.notes


def test_keras_and_medmnist_key_layouts_are_found_with_their_splits(tmp_path):
    pixels = (IMAGES * 255).astype(numpy.uint8)
    numpy.savez(tmp_path / "mnist.npz", x_train=pixels[:1500], y_train=LABELS[:1500], x_test=pixels[1500:],
                y_test=LABELS[1500:])  # fmt: skip
    data = data_of({"name": "arrays", "path": str(tmp_path / "mnist.npz")})
    assert len(data.splits["test"]) == 297 and len(data.splits["train"]) + len(data.splits["val"]) == 1500
    assert f"read x_train/y_train as train, x_test/y_test as test from {tmp_path / 'mnist.npz'}" in data.notes
    numpy.savez(tmp_path / "own.npz", pictures=pixels, classes=LABELS)
    error = pytest.raises(DataError, data_of, {"name": "arrays", "path": str(tmp_path / "own.npz")}).value
    assert str(error).startswith(f"data.path {tmp_path / 'own.npz'} holds the arrays pictures, classes; which are ")
    assert "data.x: KEY and data.y: KEY" in error.hint
    named = data_of({"name": "arrays", "path": str(tmp_path / "own.npz"), "x": "pictures", "y": "classes"})
    assert data.spec == named.spec or named.spec.input_shape == (1, 8, 8)


def test_string_and_one_hot_labels_become_classes():
    strings = numpy.array(["cat", "dog", "bird"] * 20)
    data = data_of({}, given_data((numpy.random.default_rng(0).random((60, 4)), strings)))
    assert data.spec.class_names == ["bird", "cat", "dog"]
    ordered = data_of({"class_names": ["dog", "cat", "bird"]}, given_data((numpy.zeros((60, 4)), strings)))
    assert ordered.spec.class_names == ["dog", "cat", "bird"]
    one_hot = numpy.eye(3)[numpy.arange(60) % 3]
    data = data_of({}, given_data((numpy.zeros((60, 4)), one_hot)))
    assert data.spec.num_classes == 3 and "labels are one-hot (3 columns): read as class indices" in data.notes
    floats = data_of({}, given_data((numpy.zeros((60, 4)), numpy.linspace(0, 1, 60))))
    assert floats.spec.task == "regression"


@pytest.mark.parametrize(
    ("given", "section", "message"),
    [
        ((numpy.zeros((10, 4)), numpy.zeros(9)), {}, "data holds 10 inputs but 9 labels"),
        (
            (numpy.zeros((10, 4)), numpy.zeros(10)),
            {"name": "csv", "path": "x.csv", "target": "y"},
            "data was passed from Python, but data.name is 'csv', which reads its own files",
        ),
        ({"training": (numpy.zeros((10, 4)), numpy.zeros(10))}, {}, "data has the splits 'training'"),
        ((numpy.full((20, 4), numpy.nan), numpy.arange(20) % 2), {}, "data['train'][0] holds nan at index (0, 0)"),
        (
            (numpy.zeros((20, 4)), numpy.arange(20) % 2),
            {"class_names": ["a"]},
            "the labels go from 0 to 1, but data.class_names names 1 classes",
        ),
    ],
)
def test_bad_data_from_python_is_a_data_error(given, section, message):
    with pytest.raises(DataError) as caught:
        data_of(section, given_data(given))
    assert message in str(caught.value)


def test_a_dataframe_with_a_column_name_given_twice_is_refused_naming_both_columns():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame([[0.0, 1.0, 0], [1.0, 0.0, 1]] * 10, columns=["a", "a", "y"])
    with pytest.raises(DataError) as caught:
        data_of({"name": "dataframe", "target": "y"}, given_data(frame))
    assert "has two columns named 'a': columns 1 and 2" in str(caught.value)
    assert caught.value.hint == "rename one of them; column names must be unique"


def test_arrays_files_that_are_damaged_or_pickled_are_refused(tmp_path):
    numpy.savez(tmp_path / "objects.npz", x=numpy.array([{"a": 1}] * 4, dtype=object), y=numpy.arange(4))
    with pytest.raises(DataError, match="holds Python objects \\(pickled data\\), which lamina does not load"):
        data_of({"name": "arrays", "path": str(tmp_path / "objects.npz")})
    (tmp_path / "cut.npz").write_bytes((tmp_path / "objects.npz").read_bytes()[:100])
    with pytest.raises(DataError, match="is not a complete .npz archive"):
        data_of({"name": "arrays", "x": str(tmp_path / "cut.npz"), "y": str(tmp_path / "cut.npz")})
    with pytest.raises(DataError, match=r"does not exist \(resolved to /"):
        data_of({"name": "arrays", "x": "missing.npy", "y": "missing.npy"})
    with pytest.raises(DataError, match="data set 'dataframe' takes a pandas DataFrame passed from Python"):
        data_of({"name": "dataframe", "target": "y"})
    with pytest.raises(ConfigError, match="val_x and val_y come together"):
        load_config({"data": {"name": "arrays", "x": "a.npy", "y": "b.npy", "val_x": "c.npy"}, "model": "mlp"})
