"""runtime.budget: a run stops cleanly at its budget (checkpoint, status "budget"), is refused where a finished
run is needed, and resumed with a larger budget ends with the weights of an uninterrupted run; the accounting
behind it (FLOPs, CPU time, energy) in summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import tiny_config
from lamina.artifacts.checkpoint import read_checkpoint
from lamina.cli.main import main
from lamina.core.errors import ConfigError, RunError
from lamina.pipeline import resume, train
from lamina.training.accounting import Accounting

# digits: 1,259 training samples / 64 per batch = 20 steps per epoch (the last of 43 samples), 3 epochs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(tiny_config(), runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")


def same_weights(run_a, run_b) -> bool:
    first, second = load_file(str(run_a / "model.safetensors")), load_file(str(run_b / "model.safetensors"))
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def with_budget(**budget) -> dict:
    config = tiny_config()
    config["runtime"]["budget"] = budget
    return config


def test_the_run_records_its_compute_and_energy(uninterrupted):
    summary = uninterrupted.summary
    compute, energy = summary["compute"], summary["energy"]
    per_sample = compute["training_flops_per_sample"]
    # every training sample of each of the 3 epochs paid the per-sample training FLOPs, counted once
    assert compute["training_flops"] == per_sample * 1259 * 3
    assert 2 * compute["flops_per_sample"] < per_sample < 3 * compute["flops_per_sample"]
    assert compute["flops_per_step"] == per_sample * 64
    assert compute["flops_per_sample"] == summary["forward_flops_per_sample"]
    # summary's wall_seconds is rounded to the millisecond; a run of a fraction of a second feels it
    assert compute["achieved_flops_per_second"] == pytest.approx(
        compute["training_flops"] / compute["wall_seconds"], rel=1e-4 + 0.0006 / compute["wall_seconds"]
    )
    assert compute["peak_share"] == pytest.approx(
        compute["achieved_flops_per_second"] / compute["peak_flops_per_second"], abs=1e-4
    )
    assert compute["cpu_seconds"] > 0 and compute["threads"] == 1 and compute["device"] == "cpu"
    if energy["method"] == "cpu_estimate":  # no RAPL here: CPU-seconds × 3.5 W
        assert energy["label"] == "estimated"
        assert energy["joules"] == pytest.approx(compute["cpu_seconds"] * 3.5, rel=0.02, abs=0.01)
    assert energy["kwh"] == pytest.approx(energy["joules"] / 3.6e6, rel=1e-3)
    assert energy["co2e_grams"] == pytest.approx(energy["kwh"] * 481, rel=1e-3, abs=1e-6)
    assert "budget" not in summary


def spent_after(steps: int, per_sample: int) -> int:
    """Training FLOPs after `steps` steps: 20 per epoch, the 20th of 43 samples, the others of 64."""
    epochs, rest = divmod(steps, 20)
    return per_sample * (epochs * 1259 + rest * 64)


def test_a_flops_budget_stops_mid_run_and_a_larger_one_finishes_with_the_same_weights(uninterrupted, runs_dir):
    per_sample = uninterrupted.summary["compute"]["training_flops_per_sample"]
    budget = 1632 * per_sample  # reached by the 26th step (1,643 samples), mid-way through epoch 2
    run = train(with_budget(flops=budget), runs_dir=runs_dir, progress="quiet")
    summary = run.summary
    assert (summary["status"], summary["steps"], summary["epochs"]) == ("budget", 26, 1)
    assert summary["budget"]["reached"] == "flops" and summary["budget"]["flops"] == budget
    assert summary["budget"]["spent"]["flops"] == spent_after(26, per_sample) == 1643 * per_sample
    state = read_checkpoint(run.dir / "checkpoints" / "last")["train_state"]
    assert state["step"] == 26 and state["flops"] == summary["budget"]["spent"]["flops"]
    assert summary["compute"]["training_flops"] == state["flops"] and summary["energy"]["joules"] > 0
    with pytest.raises(RunError, match=r"is budget, not completed; evaluating needs finished runs"):
        run.evaluate("test")
    with pytest.raises(RunError, match=r"is budget, not completed; predicting needs finished runs"):
        run.predict([[0.0] * 64])
    # the same budget again: refused before anything runs, with the way on
    with pytest.raises(RunError, match=r"has spent .* FLOPs, which reaches runtime.budget.flops=.*\n.*raise it: "):
        resume(run.dir, progress="quiet")
    with pytest.raises(ConfigError, match=r"train.epochs: cannot change when resuming .* only runtime.budget"):
        resume(run.dir, progress="quiet", overrides={"train.epochs": 5})
    # a larger budget, counted over both sessions: stops again, at step 42 (2,646 samples ≥ 2,592)
    again = resume(run.dir, progress="quiet", overrides=[f"runtime.budget.flops={2592 * per_sample}"])
    assert (again.summary["status"], again.summary["steps"]) == ("budget", 42)
    assert again.summary["compute"]["training_flops"] == spent_after(42, per_sample)
    finished = resume(run.dir, progress="quiet", overrides={"runtime.budget": None})
    assert finished.summary["status"] == "completed" and finished.summary["steps"] == 60
    assert same_weights(finished.dir, uninterrupted.dir)
    assert finished.metrics["test"] == uninterrupted.metrics["test"]
    assert finished.summary["compute"]["training_flops"] == uninterrupted.summary["compute"]["training_flops"]
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["runtime"]["budget"] is None


def test_a_minutes_budget_from_the_command_line(uninterrupted, runs_dir, tmp_path, capsys, monkeypatch):
    # a clock of 10 ms per step, so where the budget stops does not depend on how busy the machine is
    monkeypatch.setattr(Accounting, "wall_seconds", lambda self, loop: 0.01 * loop.state.step)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(with_budget(minutes=0.004)))  # 0.24 s: 24 steps of the 60
    assert main(["train", str(config), "--runs-dir", str(runs_dir), "--quiet"]) == 0
    out, err = capsys.readouterr()
    folder = Path(out.strip().splitlines()[-1])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "budget" and summary["budget"]["reached"] == "minutes" and summary["steps"] == 24
    line = err.strip().splitlines()[-1]
    assert line.startswith("budget reached: ") and f"runtime.budget.minutes=0.004 at step {summary['steps']}" in line
    assert line.endswith(f"continue with: lamina train --resume {folder} --set runtime.budget.minutes=<more>")
    assert main(["train", "--resume", str(folder), "--set", "train.epochs=9"]) == 2
    assert "train.epochs: cannot change when resuming" in capsys.readouterr().err
    assert main(["train", "--resume", str(folder), "--set", "runtime.budget.minutes=10", "--quiet"]) == 0
    written = yaml.safe_load((folder / "config.yaml").read_text())["runtime"]["budget"]
    assert written == {"minutes": 10.0, "kwh": None, "flops": None}
    finished = json.loads((folder / "summary.json").read_text())
    assert finished["status"] == "completed" and finished["budget"]["reached"] is None
    assert same_weights(folder, uninterrupted.dir)
