"""Accuracy reached on real data (small budgets, so the suite stays fast; the full results are in
docs/benchmarks.md)."""

from __future__ import annotations

import pytest
import torch

from conftest import ROOT, shared_data
from lamina.pipeline import train


def test_breast_cancer_config_reaches_96_percent(runs_dir):
    run = train(
        ROOT / "configs" / "breast_cancer_mlp.yaml", {"runtime.threads": 1}, runs_dir=runs_dir, progress="quiet"
    )
    assert run.metrics["test"]["accuracy"] >= 0.96
    assert run.metrics["test"]["roc_auc"] >= 0.98


def test_mnist_cnn_learns_from_a_tenth_of_the_data(runs_dir):
    path = shared_data("mnist")
    overrides = {"data.path": str(path), "data.limit": 6000, "train.epochs": 2, "runtime.threads": 1}
    run = train(ROOT / "configs" / "mnist_cnn.yaml", overrides, runs_dir=runs_dir, progress="quiet")
    assert run.metrics["test"]["accuracy"] >= 0.95  # on the full official 10,000-image test split


def test_csv_regression_on_real_measurements(tmp_path, runs_dir):
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes(scaled=False)
    lines = [",".join([*diabetes.feature_names, "progression"])]
    lines += [",".join(map(str, [*row, target])) for row, target in zip(diabetes.data, diabetes.target, strict=True)]
    (tmp_path / "diabetes.csv").write_text("\n".join(lines) + "\n")
    config = {
        "data": {"name": "csv", "path": str(tmp_path / "diabetes.csv"), "target": "progression"},
        "model": {"name": "mlp", "hidden_sizes": [32], "dropout": 0.1},
        "train": {
            "epochs": 60,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "learning_rate": 0.003},
            "early_stopping": {"patience": 10},
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    test = run.metrics["test"]
    assert run.spec.task == "regression" and set(test) >= {"mse", "rmse", "mae", "r2"}
    assert test["r2"] >= 0.35  # a linear model gets ~0.45 on this data; predicting the mean gets 0
    assert 30 < test["mae"] < 60  # in the target's own units (disease progression score)
    prediction = run.predict(torch.zeros(1, 10))[0]["prediction"]
    assert 100 < prediction < 200  # all-average features predict near the average target (~152)


@pytest.mark.parametrize("loss", ["bce", "cross_entropy"])
def test_binary_losses_both_work_on_breast_cancer(loss, runs_dir):
    run = train(
        ROOT / "configs" / "breast_cancer_mlp.yaml",
        {"train.loss": loss, "runtime.threads": 1},
        runs_dir=runs_dir,
        progress="quiet",
    )
    assert run.metrics["test"]["accuracy"] >= 0.94
    assert run.spec.output_size == (1 if loss == "bce" else 2)
