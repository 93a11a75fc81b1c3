"""Ensembles of runs (`lamina evaluate RUN RUN ...`): the mean of the members' probabilities, scored only on
samples that every member held out."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import EXACT_RUNTIME, run_cli
from lamina.core.errors import RunError
from lamina.data.build import build_data
from lamina.ensemble import evaluate_ensemble
from lamina.pipeline import train
from lamina.training.metrics import roc_auc


def breast_cancer(seed: int, data_seed: int | None) -> dict:
    data = {"name": "breast_cancer", "val_fraction": 0.15, "test_fraction": 0.2}
    if data_seed is not None:
        data["seed"] = data_seed
    return {
        "seed": seed,
        "data": data,
        "model": {"name": "mlp", "hidden_sizes": [16], "dropout": 0.1},
        "train": {"epochs": 4, "batch_size": 32, "optimizer": {"name": "adamw", "learning_rate": 0.003}},
        "runtime": dict(EXACT_RUNTIME),
    }


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three runs of different seeds on one split (data.seed 0)."""
    folder = tmp_path_factory.mktemp("ensemble")
    return [train(breast_cancer(seed, 0), runs_dir=folder, progress="quiet") for seed in (1, 2, 3)]


def test_data_seed_fixes_the_split_whatever_the_run_seed(members):
    first, second = (build_data(run.config.data, run.config.seed) for run in members[:2])
    assert members[0].config.seed != members[1].config.seed
    for name in ("train", "val", "test"):
        assert torch.equal(first.splits[name].inputs, second.splits[name].inputs), name
    # the runs themselves differ: different initial weights and batch order
    assert members[0].metrics["test"]["loss"] != members[1].metrics["test"]["loss"]


def test_ensemble_is_the_mean_of_the_members_probabilities(members, monkeypatch):
    import lamina.ensemble
    from lamina.run import run_data

    reads = []
    monkeypatch.setattr(lamina.ensemble, "run_data", lambda *a: reads.append(a) or run_data(*a))
    result = evaluate_ensemble([run.dir for run in members], "test")
    assert len(reads) == 1  # three seeds on one data.seed: the data is read once
    for run in members:  # each member as its own run reports it
        for name in ("accuracy", "roc_auc"):
            assert result["metrics"][str(run.dir)][name] == pytest.approx(run.metrics["test"][name], abs=1e-6)
    # the ensemble from another path: each run's predict() on the raw test rows, probabilities averaged
    test = build_data(members[0].config.data, 0).splits["test"]
    probabilities = torch.stack(
        [torch.tensor([list(row["probabilities"].values()) for row in run.predict(test.inputs)]) for run in members]
    ).mean(dim=0)
    ensemble = result["metrics"]["ensemble"]
    assert ensemble["accuracy"] == pytest.approx(float((probabilities.argmax(1) == test.targets).double().mean()))
    assert ensemble["roc_auc"] == pytest.approx(roc_auc(probabilities[:, 1], test.targets == 1), abs=1e-4)
    assert sum(map(sum, ensemble["confusion_matrix"])) == len(test.targets)
    # two classes: a threshold chosen on the ensemble's val predictions, applied to test
    assert result["threshold"]["chosen_on"] == "val" and 0 <= ensemble["sensitivity_at_threshold"] <= 1


def test_runs_that_split_differently_cannot_be_ensembled(members, tmp_path):
    other = train(breast_cancer(5, None), runs_dir=tmp_path, progress="quiet")  # split by its own seed, 5
    with pytest.raises(RunError, match=r"hold out different test samples"):
        evaluate_ensemble([members[0].dir, other.dir])
    with pytest.raises(RunError, match="at least two runs"):
        evaluate_ensemble([members[0].dir])


def test_cli_prints_members_and_ensemble_and_exits_2_on_a_bad_ensemble(members, tmp_path):
    result = run_cli("evaluate", *(str(run.dir) for run in members))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "test split; ensemble = mean of the 3 runs' predictions"
    assert lines[1].split() == ["metric", "run", "1", "run", "2", "run", "3", "ensemble"]
    assert any(line.startswith("roc_auc ") for line in lines)
    as_json = json.loads(run_cli("evaluate", *(str(run.dir) for run in members), "--json").stdout)
    assert as_json["members"] == [str(run.dir) for run in members]
    bad = tmp_path / "bad"  # a copy of a member whose data set names other classes
    bad.mkdir()
    for name in ("config.yaml", "data.json", "summary.json", "model.safetensors"):
        (bad / name).write_bytes((members[1].dir / name).read_bytes())
    record = json.loads((bad / "data.json").read_text())
    record["spec"]["class_names"] = ["cat", "dog"]
    (bad / "data.json").write_text(json.dumps(record))
    failed = run_cli("evaluate", str(members[0].dir), str(bad))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "predicts 2 classes (cat, dog), but" in failed.stderr and len(failed.stderr.strip().splitlines()) <= 2


def test_an_unfinished_run_is_refused_not_silently_scored_from_its_last_checkpoint(members, tmp_path):
    import shutil

    unfinished = tmp_path / "killed"
    shutil.copytree(members[1].dir, unfinished)
    summary = json.loads((unfinished / "summary.json").read_text())
    (unfinished / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    with pytest.raises(RunError, match=r"killed is interrupted, not completed; an ensemble needs finished runs"):
        evaluate_ensemble([members[0].dir, unfinished])
