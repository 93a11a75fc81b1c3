"""The CLI, driven as a user would: subprocesses, real YAML files, exit codes and exact messages."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from conftest import ROOT, run_cli, tiny_config


def write_config(path: Path, document: dict) -> str:
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One digits run made through the CLI, shared by the read-only tests below."""
    folder = tmp_path_factory.mktemp("cli")
    config = write_config(folder / "digits.yaml", tiny_config(epochs=4))
    result = run_cli("train", config, "--runs-dir", str(folder / "runs"), "--quiet")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_help_does_not_import_torch():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lamina", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0 and "lamina train" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "pydantic" not in imported


def test_train_prints_the_run_folder_last_and_writes_it(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 4 and summary["steps"] == 80
    assert set(summary["metrics"]) == {"val", "test"} and summary["metrics"]["test"]["accuracy"] > 0.5
    assert summary["wall_seconds"] > 0
    for name in (
        "config.yaml",
        "data.json",
        "metrics.jsonl",
        "model.safetensors",
        "plots/learning_curves.png",
        "plots/confusion_matrix.png",
        "checkpoints/last/state.json",
        "checkpoints/best/model.safetensors",
    ):
        assert (trained / name).is_file(), name
    assert not (trained / "plots" / "roc_curve.png").exists()  # ten classes: no threshold, no ROC curve
    resolved = yaml.safe_load((trained / "config.yaml").read_text())
    assert resolved["train"]["optimizer"]["beta2"] == 0.999  # every default is written out
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3, 4]
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(5, 81, 5))


def test_plain_progress_prints_one_line_per_epoch(tmp_path):
    config = write_config(tmp_path / "c.yaml", tiny_config(epochs=2))
    result = run_cli("train", config, "--runs-dir", str(tmp_path / "runs"))
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0
    assert lines[0].startswith("epoch 1/2  train.loss ") and "val.accuracy" in lines[0] and "samples/s" in lines[0]
    assert lines[1].startswith("epoch 2/2 ") and lines[2].startswith("done in ")
    assert lines[3] == "doctor: no problems found" and Path(lines[4]).is_dir()


def test_evaluate_reproduces_the_summary(trained):
    result = run_cli("evaluate", str(trained), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    summary = json.loads((trained / "summary.json").read_text())
    assert metrics["accuracy"] == summary["metrics"]["test"]["accuracy"]
    assert metrics["confusion_matrix"] == summary["metrics"]["test"]["confusion_matrix"]


def test_predict_image_files(trained, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index in range(20):
        # a 32×32 PNG as a user would have it; predict resizes it to the run's 8×8
        pixels = (digits.images[index] * 255 / 16).astype("uint8")
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(tmp_path / f"digit{index}.png")
        paths.append(str(tmp_path / f"digit{index}.png"))
    result = run_cli("predict", str(trained), *paths, "--json")
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(predictions) == 20 and set(predictions[0]) == {"input", "label", "probability", "probabilities"}
    # the PNGs decode to exactly the stored images, so predict agrees with the model on the data set itself
    from lamina import load_run

    stored = torch.from_numpy((digits.images[:20] * 255 / 16).astype("uint8")).unsqueeze(1)
    direct = load_run(trained).predict(stored)
    assert [p["label"] for p in predictions] == [p["label"] for p in direct]
    assert [p["probability"] for p in predictions] == pytest.approx([p["probability"] for p in direct], abs=1e-6)


def test_runs_lists_past_runs(trained):
    result = run_cli("runs", "--runs-dir", str(trained.parent))
    assert result.returncode == 0
    assert trained.name in result.stdout and "completed" in result.stdout and "val.accuracy" in result.stdout


def test_a_config_with_three_mistakes_exits_2_naming_all(tmp_path):
    config = write_config(
        tmp_path / "bad.yaml",
        {"data": "digits", "model": {"name": "cnnn"}, "train": {"epocs": 2, "batch_size": "many"}},
    )
    result = run_cli("train", config, "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: config has 3 problems in {config}:\n")
    assert "  - model.name: unknown model 'cnnn'; did you mean 'cnn'?" in result.stderr
    assert "  - train.batch_size: expected a whole number, received 'many' (str)" in result.stderr
    assert "  - train.epocs: unknown option of train; did you mean 'epochs'?" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing is written for an invalid config


def test_set_overrides_are_validated_too(tmp_path):
    config = write_config(tmp_path / "c.yaml", tiny_config())
    result = run_cli("validate", config, "--set", "train.optimizer.learning_rat=0.1")
    assert result.returncode == 2
    assert (
        "train.optimizer.learning_rat: unknown option of train.optimizer 'adamw'; did you mean 'learning_rate'?"
        in result.stderr
    )


def test_a_milestone_at_the_end_of_training_exits_2(tmp_path):
    config = write_config(tmp_path / "c.yaml", tiny_config())
    result = run_cli(
        "validate", config, "--set", "train.epochs=4", "--set", "train.schedule={name: step, milestones: [2, 4]}"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "train.schedule.milestones: epoch 4 is not before the end of training (train.epochs 4), so it never "
        "decays the rate" in result.stderr
    )
    assert (
        run_cli(
            "validate", config, "--set", "train.epochs=5", "--set", "train.schedule={name: step, milestones: [2, 4]}"
        ).returncode
        == 0
    )


@pytest.mark.parametrize(
    ("data", "model", "message"),
    [
        ({"name": "mnist", "path": "no/such/folder"}, "cnn", "error: data.path 'no/such/folder' is not a folder"),
        (
            {"name": "breast_cancer"},
            "cnn",
            "error: model 'cnn' needs images (channels, height, width), but the data "
            "gives tabular inputs of shape (30)",
        ),
    ],
)
def test_data_and_model_mistakes_exit_2_with_a_hint(tmp_path, data, model, message):
    config = write_config(tmp_path / "c.yaml", {"data": data, "model": model})
    result = run_cli("train", config, "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == message or lines[0].startswith(message)
    assert len(lines) == 2 and lines[1].startswith("  hint: ")


def test_corrupt_idx_file_exits_2_naming_the_file(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (folder / name).write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + b"short")
    config = write_config(tmp_path / "c.yaml", {"data": {"name": "mnist", "path": str(folder)}, "model": "mlp"})
    result = run_cli("train", config)
    assert result.returncode == 2
    assert (
        f"error: corrupt IDX file {folder / 'train-images-idx3-ubyte'}: its header promises shape (9,)" in result.stderr
    )


def test_csv_with_unknown_target_column_exits_2(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("height,weight,species\n1,2,a\n3,4,b\n")
    config = write_config(
        tmp_path / "c.yaml", {"data": {"name": "csv", "path": str(table), "target": "specie"}, "model": "mlp"}
    )
    result = run_cli("validate", config)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: data.target: CSV file {table} has no column 'specie'\n"
        "  hint: did you mean 'species'? columns: height, weight, species\n"
    )


def test_csv_train_and_predict_rows(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    header = [name.replace(" (cm)", "").replace(" ", "_") for name in iris.feature_names]
    rows = [",".join(header + ["species"])]
    rows += [",".join([*map(str, x), iris.target_names[y]]) for x, y in zip(iris.data, iris.target, strict=True)]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    config = write_config(
        tmp_path / "c.yaml",
        {
            "data": {"name": "csv", "path": str(tmp_path / "iris.csv"), "target": "species"},
            "model": {"name": "mlp", "hidden_sizes": [16]},
            "train": {"epochs": 40, "batch_size": 16, "optimizer": {"name": "adamw", "learning_rate": 0.01}},
            "runtime": {"threads": 1},
        },
    )
    result = run_cli("train", config, "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert result.returncode == 0, result.stderr
    run_dir = result.stdout.strip().splitlines()[-1]
    assert json.loads((Path(run_dir) / "summary.json").read_text())["metrics"]["test"]["accuracy"] >= 0.9
    (tmp_path / "new.csv").write_text("\n".join(rows[:1] + rows[1:3] + rows[-2:]) + "\n")
    result = run_cli("predict", run_dir, str(tmp_path / "new.csv"), "--json")
    labels = [json.loads(line)["label"] for line in result.stdout.splitlines()]
    assert labels == ["setosa", "setosa", "virginica", "virginica"]


def test_inspection_commands(tmp_path):
    config = write_config(tmp_path / "c.yaml", tiny_config())
    validate = run_cli("validate", config)
    assert validate.returncode == 0 and "valid" in validate.stdout and "parameters" in validate.stdout
    models = run_cli("models")
    assert "cnn — " in models.stdout and "hidden_sizes" in models.stdout and "ConvBlock" in models.stdout
    sized = run_cli("models", config)
    assert "parameters: 1,"[:12] in sized.stdout and "Conv2d" in sized.stdout and "(2, 16, 4, 4)" in sized.stdout
    datasets = run_cli("datasets")
    assert "mnist — " in datasets.stdout and "val_fraction" in datasets.stdout
    augment = next(line for line in datasets.stdout.splitlines() if line.startswith("augment "))
    assert augment.split()[1:4] == ["list[augmentation", "(by", "name)]"]  # not the union of every option class
    summary = run_cli("datasets", "summary", config)
    assert summary.returncode == 0 and "one training batch" in summary.stdout and "0:" in summary.stdout
    schema = json.loads(run_cli("schema").stdout)
    assert schema["title"] == "lamina config" and "data" in schema["properties"]


def _uninterrupted_weights(tmp_path: Path, config: str) -> dict:
    result = run_cli("train", config, "--runs-dir", str(tmp_path / "reference"), "--quiet")
    assert result.returncode == 0, result.stderr
    return load_file(str(Path(result.stdout.strip().splitlines()[-1]) / "model.safetensors"))


def _start(config: str, runs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lamina", "train", config, "--runs-dir", str(runs), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(runs: Path, process: subprocess.Popen, minimum_step: int) -> Path:
    deadline = time.time() + 120
    while time.time() < deadline:
        for state in runs.glob("*/checkpoints/last/state.json"):
            try:
                if json.loads(state.read_text())["train_state"]["step"] >= minimum_step:
                    return state.parents[2]
            except (ValueError, KeyError, OSError):
                pass
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c", "sigterm"])
def test_killed_run_resumes_to_the_same_weights(tmp_path, how):
    document = tiny_config(epochs=6, checkpoint_every_steps=3)
    config = write_config(tmp_path / "c.yaml", document)
    expected = _uninterrupted_weights(tmp_path, config)
    process = _start(config, tmp_path / "runs")
    run_dir = _wait_for_checkpoint(tmp_path / "runs", process, minimum_step=25)
    process.send_signal({"kill -9": signal.SIGKILL, "ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM}[how])
    stdout, stderr = process.communicate(timeout=60)
    if how in ("ctrl-c", "sigterm"):  # a checkpoint, status interrupted, resumable
        assert process.returncode == 130, stderr
        assert "resume with: lamina train --resume" in stderr
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    else:
        assert process.returncode == -signal.SIGKILL
        listed = run_cli("runs", "--runs-dir", str(tmp_path / "runs")).stdout
        assert listed.splitlines()[-1].split()[-1] == "stopped"  # it says running, but no process holds its lock
    if json.loads((run_dir / "summary.json").read_text()).get("status") == "completed":
        pytest.skip("the run finished before the signal arrived")
    result = run_cli("train", "--resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    actual = load_file(str(run_dir / "model.safetensors"))
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_generate_on_a_classifier_says_which_families_can(trained):
    result = run_cli("generate", str(trained), "--samples", "4")
    assert result.returncode == 2
    assert result.stderr.startswith("error: model family 'cnn' cannot generate samples\n  hint: families that can:")
