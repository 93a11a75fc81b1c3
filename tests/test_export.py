"""lamina export: a run → a verified ONNX bundle (docs/deploy.md). Each run is trained here for 1–2 epochs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

import lamina
from lamina.core.errors import RunError
from tests.conftest import EXACT_RUNTIME, ROOT, run_cli, tiny_config

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

from lamina.export import bundle as bundle_module  # noqa: E402
from lamina.export import export_run  # noqa: E402
from lamina.export.graph import check_exportable  # noqa: E402

FIELDS = {
    "format", "version", "lamina_version", "created", "run", "config_hash", "task", "family", "classes",
    "threshold", "temperature", "input", "output", "preprocessing", "metrics", "files",
}  # fmt: skip


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> lamina.Run:
    runs = tmp_path_factory.mktemp("runs")
    return lamina.train(tiny_config(epochs=1), runs_dir=runs, progress="quiet")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> lamina.Run:
    config = {
        "seed": 0,
        "data": {"name": "breast_cancer"},
        "model": {"name": "mlp", "hidden_sizes": [16]},
        "train": {"epochs": 2},
        "runtime": dict(EXACT_RUNTIME),
    }
    return lamina.train(config, runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")


def session(bundle: Path):
    return onnxruntime.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])


def test_a_digits_cnn_exports_verified_with_a_dynamic_batch(digits_run):
    bundle = export_run(digits_run.dir)
    assert bundle == digits_run.dir / "bundle"
    assert sorted(path.name for path in bundle.iterdir()) == ["bundle.json", "export.json", "model.onnx"]
    record = json.loads((bundle / "bundle.json").read_text())
    assert set(record) == FIELDS
    assert record["format"] == "lamina-bundle" and record["version"] == 1 and record["task"] == "classification"
    assert record["family"] == "cnn" and record["classes"] == [str(digit) for digit in range(10)]
    assert record["input"] == {"name": "inputs", "dtype": "uint8", "shape": [None, 1, 8, 8], "kind": "image"}
    assert record["output"] == {"name": "scores", "shape": [None, 10]}
    assert record["preprocessing"] == digits_run.data_record["preprocessing"]
    assert record["metrics"]["test"]["accuracy"] == digits_run.metrics["test"]["accuracy"]
    assert record["threshold"] is None and record["temperature"] is None
    check = json.loads((bundle / "export.json").read_text())
    assert check["backend"] == "onnxruntime" and check["split"] == "val" and check["tolerance"] == 1e-4
    assert check["max_abs_difference"] <= 1e-4 and check["argmax_equal"] is True
    assert check["exporter"] == "dynamo" and check["opset"] == 18
    assert len(check["dynamic"]["batch_sizes"]) == 2 and len(set(check["dynamic"]["batch_sizes"])) == 2
    # any batch size, as Run.predict gives them
    images = numpy.random.default_rng(0).integers(0, 256, size=(5, 1, 8, 8), dtype=numpy.uint8)
    scores = session(bundle).run(None, {"inputs": images})[0]
    expected = [result["probabilities"] for result in digits_run.predict(lamina_tensor(images))]
    assert scores.shape == (5, 10)
    assert numpy.abs(scores - numpy.array([[row[name] for name in record["classes"]] for row in expected])).max() < 1e-4


def lamina_tensor(array: numpy.ndarray):
    import torch

    return torch.from_numpy(array)


def test_a_calibrated_table_mlp_keeps_its_threshold_and_temperature(table_run, tmp_path):
    temperature = table_run.calibrate()["temperature"]["value"]
    bundle = export_run(table_run.dir, tmp_path / "shipped")
    record = json.loads((bundle / "bundle.json").read_text())
    assert bundle == tmp_path / "shipped" and not (table_run.dir / "bundle").exists()
    assert record["input"] == {"name": "inputs", "dtype": "float32", "shape": [None, 30], "kind": "table"}
    assert record["threshold"] == table_run.summary["threshold"] | {"positive_index": 1}
    assert record["classes"] == ["malignant", "benign"] and record["temperature"] == temperature != 1.0
    rows = numpy.random.default_rng(1).normal(size=(3, 30)).astype(numpy.float32)  # encoded rows: stored form
    scores = session(bundle).run(None, {"inputs": rows})[0]
    calibrated = [result["probabilities"]["benign"] for result in table_run.predict(lamina_tensor(rows))]
    assert numpy.abs(scores[:, 1] - numpy.array(calibrated)).max() < 1e-5  # the temperature is inside the graph


def test_a_failed_check_names_the_difference_and_writes_no_bundle(table_run, tmp_path, monkeypatch):
    real = bundle_module.export_graph

    def perturbed(graph, example, path, sequence, family):  # the graph's first weight changed after export
        exported = real(graph, example, path, sequence, family)
        model = onnx.load(str(path))
        weight = next(tensor for tensor in model.graph.initializer if len(tensor.dims) == 2)
        values = onnx.numpy_helper.to_array(weight) + 0.5
        weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
        onnx.save(model, str(path))
        return exported

    monkeypatch.setattr(bundle_module, "export_graph", perturbed)
    target = tmp_path / "shipped"
    target.mkdir()
    (target / "bundle.json").write_text('{"an": "earlier bundle"}')
    with pytest.raises(RunError) as caught:
        export_run(table_run.dir, target)
    message = str(caught.value)
    assert (
        "the ONNX graph of model 'mlp' (dynamo exporter) differs from PyTorch on 57 val inputs: max abs difference"
        in message
    )
    assert "(allowed 0.0001)" in message and "no bundle was written" in message
    assert "first at module model.body.0 (ONNX op Gemm)" in message  # the layer whose output diverges first
    assert [path.name for path in tmp_path.iterdir()] == ["shipped"]  # no partial folder left beside it
    assert [path.name for path in target.iterdir()] == ["bundle.json"]  # the earlier bundle stays as it was
    assert (target / "bundle.json").read_text() == '{"an": "earlier bundle"}'


def test_a_text_gru_exports_with_dynamic_length(tmp_path):
    texts = tmp_path / "texts.tsv"
    rows = [f"win cash prize now {i}\tspam" if i % 3 == 0 else f"see you at lunch {i}\tham" for i in range(90)]
    rows[5] = "ok\tham"  # a short text: padding the recurrent network must ignore
    texts.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    config = {
        "seed": 0,
        "data": {"name": "labelled_text", "path": str(texts), "tokenizer": "character", "max_length": 40},
        "model": {
            "name": "rnn",
            "cell": "gru",
            "embedding_size": 8,
            "hidden_size": 8,
            "bidirectional": True,
            "pooling": "max",
        },
        "train": {"epochs": 1},
        "runtime": dict(EXACT_RUNTIME),
    }
    run = lamina.train(config, runs_dir=tmp_path / "runs", progress="quiet")
    bundle = export_run(run.dir)
    record = json.loads((bundle / "bundle.json").read_text())
    check = json.loads((bundle / "export.json").read_text())
    assert record["input"] == {"name": "inputs", "dtype": "int64", "shape": [None, None], "kind": "text"}
    assert record["files"]["tokenizer"] == "tokenizer.json"
    assert json.loads((bundle / "tokenizer.json").read_text()) == run.data_record["preprocessing"]["tokenizer"]
    assert check["max_abs_difference"] <= 1e-4 and check["argmax_equal"] is True
    assert check["exporter"] == "torchscript"  # packed sequences: the dynamo exporter refuses them
    assert check["exporter_notes"][0].startswith("dynamo exporter failed: ")
    lengths = check["dynamic"]["lengths"]  # the val texts as stored, then the last ones without their padding
    assert lengths[0] == run_data_length(run) and lengths[1] < lengths[0]


def run_data_length(run: lamina.Run) -> int:
    from lamina.run import run_data

    return int(run_data(run.config).splits["val"].inputs.shape[1])


def test_an_audio_crnn_exports_its_log_mel_features_inside_the_graph(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    generator = numpy.random.default_rng(0)
    for number in range(40):  # two tones, two "digits", with noise: 0.25 s at 8 kHz
        digit = number % 2
        wave = numpy.sin(numpy.arange(2000) * (0.2 + 0.3 * digit)) + 0.1 * generator.normal(size=2000)
        soundfile.write(recordings / f"{digit}_speaker{number % 4}_{number}.wav", (0.5 * wave).astype("float32"), 8000)
    config = {
        "seed": 0,
        "data": {"name": "audio", "path": str(recordings), "seconds": 0.25, "n_fft": 128, "n_mels": 16},
        "model": {"name": "hybrid", "channels": [4], "hidden_size": 4, "pooling": "mean"},
        "train": {"epochs": 1},
        "runtime": dict(EXACT_RUNTIME),
    }
    run = lamina.train(config, runs_dir=tmp_path / "runs", progress="quiet")
    bundle = export_run(run.dir)
    record = json.loads((bundle / "bundle.json").read_text())
    check = json.loads((bundle / "export.json").read_text())
    assert record["input"] == {"name": "inputs", "dtype": "float32", "shape": [None, 2000], "kind": "audio"}
    assert check["exporter"] == "dynamo" and check["max_abs_difference"] <= 1e-4 and check["argmax_equal"]
    operators = {node.op_type for node in onnx.load(str(bundle / "model.onnx")).graph.node}
    assert "STFT" in operators or "DFT" in operators  # the features are computed inside the graph


def test_a_regression_on_arrays_exports_with_its_data_given_again(tmp_path):
    generator = numpy.random.default_rng(0)
    features = generator.normal(size=(200, 6)).astype("float32")
    targets = (features @ generator.normal(size=6) * 10 + 50).astype("float32")  # targets far from 0: units matter
    config = {"seed": 0, "data": {"name": "arrays"}, "model": {"name": "mlp"}, "train": {"epochs": 2}}
    run = lamina.train(config, runs_dir=tmp_path / "runs", progress="quiet", data=(features, targets))
    with pytest.raises(
        RunError, match=r"learned from data passed from Python \(.*\), so exporting it needs that data again"
    ):
        export_run(run.dir)  # a new Run of the folder: the arrays are not in it
    bundle = export_run(run.dir, data=(features, targets))
    record = json.loads((bundle / "bundle.json").read_text())
    assert record["task"] == "regression" and record["classes"] is None
    assert record["input"] == {"name": "inputs", "dtype": "float32", "shape": [None, 6], "kind": "arrays"}
    assert record["output"] == {"name": "scores", "shape": [None, 1]}
    predictions = session(bundle).run(None, {"inputs": features[:4]})[0]  # (4, 1) in target units
    expected = [result["prediction"] for result in run.predict(features[:4])]
    assert numpy.abs(predictions[:, 0] - numpy.array(expected, dtype=numpy.float32).reshape(-1)).max() < 1e-4


def test_a_missing_export_package_names_the_install_command(digits_run, monkeypatch):
    monkeypatch.setattr(bundle_module, "installed", lambda name: name != "onnxscript")
    with pytest.raises(
        RunError, match=r"exporting to ONNX needs the packages onnxscript, which are not installed"
    ) as caught:
        export_run(digits_run.dir)
    hint = caught.value.hint  # the requirement as lamina declares it, where its metadata is installed
    assert re.search(r"-m pip install .?onnxscript", hint) and "lamina[export]" in hint


def test_tasks_without_a_bundle_form_are_refused_with_the_reason():
    with pytest.raises(RunError, match=r"a transcription run \(model 'crnn'\) cannot be exported to ONNX: .*CTC"):
        check_exportable("transcription", "crnn")
    with pytest.raises(RunError, match=r"a reconstruction run \(model 'autoencoder'\) cannot be exported"):
        check_exportable("reconstruction", "autoencoder")
    check_exportable("language_modeling", "transformer")  # supported: no error


def test_the_cli_exports_and_refuses_bad_paths_and_formats(digits_run, tmp_path, capsys):
    from lamina.cli.main import main  # in this process: a subprocess would import PyTorch and onnx again

    assert main(["export", str(digits_run.dir), "--out", str(tmp_path / "b")]) == 0
    shown = capsys.readouterr()
    assert "verified in onnxruntime on 216 val inputs: max abs difference" in shown.out
    assert shown.out.strip().endswith(str(tmp_path / "b")) and shown.err == ""
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    nowhere = tmp_path / "nowhere"
    assert (
        capsys.readouterr().err
        == f"error: run folder '{nowhere}' does not exist\n  hint: list runs with 'lamina runs'\n"
    )
    unknown = run_cli("export", str(digits_run.dir), "--format", "tflite")  # argparse refuses it: no PyTorch
    assert unknown.returncode == 2 and "invalid choice: 'tflite'" in unknown.stderr


def test_export_help_imports_neither_torch_nor_onnx():
    code = (
        "import sys\n"
        "from lamina.cli.main import main\n"
        "try:\n"
        "    main(['export', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded:', sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert "--out DIR" in done.stdout and done.stdout.strip().endswith("loaded: []")
