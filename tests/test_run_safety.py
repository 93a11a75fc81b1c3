"""Runs that go wrong lose nothing and say so: divergence, full disks, two processes on one run, unfinished or
damaged runs, malformed run folders, a home-relative runs folder."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, run_cli, tiny_config
from lamina.artifacts.folder import RunFolder
from lamina.core.errors import RunError, TrainingDiverged
from lamina.pipeline import resume, train
from lamina.run import load_run


def write_config(path: Path, document: dict) -> str:
    import yaml

    path.write_text(yaml.safe_dump(document))
    return str(path)


def finite(path: Path) -> bool:
    return all(
        bool(torch.isfinite(value).all()) for value in load_file(str(path)).values() if value.is_floating_point()
    )


def test_a_run_that_turns_non_finite_keeps_its_last_finite_checkpoint(runs_dir):
    # the step schedule multiplies the rate by 1e8 after 2 epochs: batch-norm statistics overflow in epoch 3
    config = tiny_config(epochs=4, checkpoint_every_steps=1)
    config["train"]["schedule"] = {"name": "step", "every_epochs": 2, "gamma": 1.0e8}
    with pytest.raises(TrainingDiverged, match=r"training diverged: the layer features\.\d+ holds non-finite values "
                       r"\(features\.\d+\.running_var\) after step \d+ \(epoch 3\)") as caught:  # fmt: skip
        train(config, runs_dir=runs_dir, progress="quiet")
    assert caught.value.hint.endswith("then train again; checkpoints/last holds the last finite state")
    run_dir = next(runs_dir.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["error"].startswith("training diverged")
    state = json.loads((run_dir / "checkpoints" / "last" / "state.json").read_text())["train_state"]
    assert state["epoch"] == 2 and finite(run_dir / "checkpoints" / "last" / "model.safetensors")
    assert finite(run_dir / "checkpoints" / "best" / "model.safetensors")
    assert not (run_dir / "model.safetensors").exists()
    with pytest.raises(RunError, match="diverged; resuming would repeat the same steps"):
        resume(run_dir, progress="quiet")
    with pytest.raises(RunError, match="diverged; evaluating needs finished runs"):
        load_run(run_dir).evaluate()
    scored = load_run(run_dir).evaluate(allow_unfinished=True)
    assert scored["loss"] == scored["loss"]  # the finite checkpoint scores (badly, but as a number)


def test_a_loss_that_explodes_without_nan_is_divergence_and_the_cli_exits_1(tmp_path):
    config = tiny_config(epochs=3)
    config["train"]["optimizer"] = {"name": "sgd", "learning_rate": 1.0e6}
    result = run_cli("train", write_config(tmp_path / "c.yaml", config), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 1 and "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: training diverged: the training loss ")
    assert "over 100 times its first value" in result.stderr or "became nan" in result.stderr
    assert result.stderr.rstrip().endswith("; no checkpoint was saved")  # it diverged within the first epoch
    assert "doctor: error exploding: training diverged at " in result.stdout  # with the rate to try: sgd's default
    assert "lower train.optimizer.learning_rate from 1e+06 to 0.05" in result.stdout
    listed = run_cli("runs", "--runs-dir", str(tmp_path / "runs"))
    assert listed.stdout.splitlines()[-1].split()[-1] == "diverged"


def _limited(limit: int):
    def apply() -> None:  # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize(("limit", "left"), [(5_000, "failed"), (20, None)])
def test_a_full_disk_is_a_user_error_and_never_leaves_a_half_written_run(tmp_path, limit, left):
    config = write_config(tmp_path / "c.yaml", tiny_config(epochs=2))
    runs = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "lamina", "train", config, "--runs-dir", str(runs), "--quiet"],
                            cwd=ROOT, capture_output=True, text=True, preexec_fn=_limited(limit))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: cannot write ") and "File too large" in result.stderr
    assert "internal error" not in result.stderr and "CallbackError" not in result.stderr
    folders = list(runs.iterdir())
    if left is None:  # not even config.yaml fitted: no run folder is left behind
        assert folders == []
        return
    (folder,) = folders
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed" and "File too large" in summary["error"]
    assert not (folder / "lock").exists()


def test_a_run_being_trained_is_locked_and_a_stale_lock_is_taken_over(runs_dir):
    first = train(tiny_config(epochs=1), runs_dir=runs_dir, progress="quiet")
    folder = RunFolder(first.dir)
    folder.update_summary(status="interrupted")
    (first.dir / "lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "since": "now"}))
    with pytest.raises(RunError, match=rf"run {first.dir} is being trained by process {os.getpid()} on "):
        resume(first.dir, progress="quiet")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (first.dir / "lock").write_text(json.dumps({"pid": int(gone.stdout), "host": os.uname().nodename}))
    assert not folder.training_now()  # its process has exited: stale
    resumed = resume(first.dir, progress="quiet")  # takes the stale lock over (training had already ended)
    assert resumed.summary["status"] == "completed" and not (first.dir / "lock").exists()


def test_unfinished_runs_are_refused_unless_asked_and_then_name_their_checkpoint(tmp_path):
    run = train(tiny_config(epochs=2), runs_dir=tmp_path / "runs", progress="quiet")
    (run.dir / "model.safetensors").unlink()  # as a run killed before it finished
    RunFolder(run.dir).update_summary(status="interrupted")
    refused = run_cli("evaluate", str(run.dir))
    assert refused.returncode == 2 and "is interrupted, not completed; evaluating needs finished runs" in refused.stderr
    assert "--allow-unfinished" in refused.stderr
    allowed = run_cli("evaluate", str(run.dir), "--allow-unfinished")
    assert allowed.returncode == 0 and "accuracy" in allowed.stdout
    assert f"used its last checkpoint ({run.dir}/checkpoints/last, at the end of epoch 2)" in allowed.stderr
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    predicted = run_cli("predict", str(run.dir), str(image))
    assert predicted.returncode == 2 and "predicting needs finished runs" in predicted.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("epoch 999", "does not fit this run: it is at epoch 999"),
        ("extra key", "does not fit this run: "),
        ("dropped group", "does not fit this run: "),
        ("missing tensor", "cannot read"),
    ],
)
def test_a_damaged_checkpoint_is_refused_on_resume(runs_dir, damage, message):
    run = train(tiny_config(epochs=2), runs_dir=runs_dir, progress="quiet")
    RunFolder(run.dir).update_summary(status="interrupted")
    (run.dir / "model.safetensors").unlink()
    state_path = run.dir / "checkpoints" / "last" / "state.json"
    state = json.loads(state_path.read_text())
    if damage == "epoch 999":
        state["train_state"]["epoch"] = 999
    elif damage == "extra key":
        state["train_state"]["surprise"] = 1
    elif damage == "dropped group":
        state["optimizer"]["param_groups"].pop()
    else:
        state["optimizer"]["state"]["__dict__"][0][1]["exp_avg"] = {"__tensor__": "no.such.tensor"}
    state_path.write_text(json.dumps(state))
    result = run_cli("train", "--resume", str(run.dir))
    assert result.returncode == 2 and message in result.stderr and "internal error" not in result.stderr, result.stderr


def test_damaged_data_json_and_init_from_files_are_user_errors(tmp_path):
    run = train(tiny_config(epochs=1), runs_dir=tmp_path / "runs", progress="quiet")
    record = json.loads((run.dir / "data.json").read_text())
    del record["spec"]["task"]
    (run.dir / "data.json").write_text(json.dumps(record))
    result = run_cli("evaluate", str(run.dir))
    assert result.returncode == 2 and "data.json" in result.stderr and "internal error" not in result.stderr
    truncated = tmp_path / "weights.safetensors"
    truncated.write_bytes((run.dir / "model.safetensors").read_bytes()[:200])
    config = tiny_config(epochs=1)
    config["model"]["init_from"] = str(truncated)
    result = run_cli("validate", write_config(tmp_path / "c.yaml", config))
    assert result.returncode == 2 and "model.init_from" in result.stderr and "internal error" not in result.stderr


def test_lamina_runs_shows_damaged_summaries_instead_of_failing(tmp_path):
    runs = tmp_path / "runs"
    good = train(tiny_config(epochs=1), runs_dir=runs, progress="quiet")
    shapes = {"a-list": [1, 2], "a-string-best": {"best": {"monitor": "val.loss", "value": "low"}, "status": "x"},
              "a-null-accuracy": {"metrics": {"test": {"accuracy": None}}, "status": "completed"}}  # fmt: skip
    for name, summary in shapes.items():
        (runs / name).mkdir()
        (runs / name / "config.yaml").write_text("{}")
        (runs / name / "summary.json").write_text(json.dumps(summary))
    result = run_cli("runs", "--runs-dir", str(runs))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["a-list"][-1] == "damaged" and rows["a-string-best"][3] == "-" and rows["a-null-accuracy"][4] == "-"
    assert rows[good.dir.name][-1] == "completed"


def test_a_runs_dir_under_home_is_expanded(tmp_path):
    config = write_config(tmp_path / "c.yaml", tiny_config(epochs=1))
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli("train", config, "--runs-dir", "~/experiments", "--quiet", env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert list((home / "experiments").iterdir()) and not (ROOT / "~").exists()


def test_an_empty_validation_split_is_refused_and_an_empty_test_split_dropped(tmp_path):
    from PIL import Image

    from lamina.config.loading import load_config
    from lamina.core.errors import ConfigError
    from lamina.pipeline.prepare import prepare
    from lamina.run import run_data

    for name in ("cat", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for number in range(4):  # 10 % of 4 images per class rounds to none
            Image.new("L", (8, 8), color=number * 40).save(tmp_path / "images" / name / f"{number}.png")
    section = {"name": "image_folder", "path": str(tmp_path / "images"), "cache_dir": str(tmp_path / "cache")}
    assert len(run_data(load_config({"data": section, "model": "mlp"})).splits["val"]) == 0  # fine to look at
    with pytest.raises(ConfigError, match=r"data.val_fraction: leaves the val split empty \(8 samples in all\)"):
        prepare(load_config({"data": section, "model": "mlp"}))
    data = run_data(load_config({"data": {**section, "val_fraction": 0.25, "test_fraction": 0.0}, "model": "mlp"}))
    assert "test" not in data.splits and "no test split: the held-out fraction leaves no samples" in data.notes


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_every_file_of_a_run_gets_the_permissions_the_umask_gives(runs_dir, umask, mode):
    """Atomic writes (tempfile.mkstemp) and safetensors made config.yaml, data.json, summary.json and every
    .safetensors file 0600 while the other files of a run were 0644."""
    previous = os.umask(umask)
    try:
        run = train(tiny_config(epochs=1), runs_dir=runs_dir, progress="quiet")
    finally:
        os.umask(previous)
    modes = {str(path.relative_to(run.dir)): oct(path.stat().st_mode & 0o777) for path in run.dir.rglob("*")}
    files = {name: value for name, value in modes.items() if (run.dir / name).is_file()}
    assert {
        "config.yaml",
        "data.json",
        "summary.json",
        "model.safetensors",
        "checkpoints/last/state.safetensors",
    } <= set(files)
    assert set(files.values()) == {oct(mode)}, files
