"""Calibration: the figures (ECE, MCE, Brier, NLL) against hand examples and a plain loop, temperature scaling that
recovers a known temperature, and a run's probabilities at its temperature everywhere (evaluate, predict, the
summary), with a two-class run's decisions unchanged by `lamina calibrate` and the errors said in words."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
import yaml

from conftest import EXACT_RUNTIME, run_cli
from lamina.core.errors import ConfigError, RunError
from lamina.data.inputs import transform_for
from lamina.insight.calibration import moved_threshold
from lamina.pipeline import train
from lamina.run import load_run, run_data
from lamina.training.calibration import (
    brier_score,
    calibration_figures,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
    with_temperature,
)

# ---- the figures ------------------------------------------------------------------------------------------------


def reference_figures(probabilities: torch.Tensor, targets: torch.Tensor, bins: int) -> dict[str, float]:
    """ECE, MCE, Brier and NLL sample by sample in plain Python: bin b holds confidences in (b/B, (b+1)/B]."""
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    brier = nll = 0.0
    for row, target in zip(probabilities.tolist(), targets.tolist(), strict=True):
        confidence = max(row)
        index = max(0, min(bins - 1, math.ceil(confidence * bins) - 1))
        members[index].append((confidence, row.index(confidence) == target))
        brier += sum((p - (c == target)) ** 2 for c, p in enumerate(row))
        nll -= math.log(max(row[target], 1e-12))
    gaps = [
        (len(m), abs(sum(correct for _, correct in m) / len(m) - sum(c for c, _ in m) / len(m))) for m in members if m
    ]
    count = len(targets)
    return {
        "ece": sum(n * gap for n, gap in gaps) / count,
        "mce": max(gap for _, gap in gaps),
        "brier": brier / count,
        "nll": nll / count,
    }


def test_the_figures_of_a_hand_example():
    probabilities = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]], dtype=torch.float64)
    targets = torch.tensor([0, 1, 1, 0])
    # 2 bins: (0, .5] is empty, (.5, 1] holds all four: accuracy 2/4, mean confidence (.9+.7+.6+.8)/4 = .75
    assert expected_calibration_error(probabilities, targets, bins=2) == pytest.approx(0.25)
    assert maximum_calibration_error(probabilities, targets, bins=2) == pytest.approx(0.25)
    # 5 bins: (.4, .6] holds .6 (right), (.6, .8] holds .7 and .8 (both wrong), (.8, 1] holds .9 (right)
    table = reliability_bins(probabilities, targets, bins=5)
    assert table["count"] == [0, 0, 1, 2, 1]
    assert table["accuracy"][2:] == pytest.approx([1.0, 0.0, 1.0])
    assert expected_calibration_error(probabilities, targets, bins=5) == pytest.approx((0.4 + 0.75 * 2 + 0.1) / 4)
    assert maximum_calibration_error(probabilities, targets, bins=5) == pytest.approx(0.75)
    assert brier_score(probabilities, targets) == pytest.approx((0.02 + 0.98 + 0.32 + 1.28) / 4)
    assert negative_log_likelihood(probabilities, targets) == pytest.approx(
        -(math.log(0.9) + math.log(0.3) + math.log(0.6) + math.log(0.2)) / 4
    )


@pytest.mark.parametrize("bins", [1, 7, 15])
def test_the_figures_match_a_loop_over_samples(bins):
    generator = torch.Generator().manual_seed(bins)
    probabilities = torch.softmax(torch.randn(300, 4, generator=generator, dtype=torch.float64) * 2, dim=1)
    targets = torch.randint(0, 4, (300,), generator=generator)
    expected = reference_figures(probabilities, targets, bins)
    assert calibration_figures(probabilities, targets, bins) == pytest.approx(expected, rel=1e-9)


def overconfident(temperature: float, count: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z), probabilities given as softmax(z · temperature): over-confident by exactly
    `temperature`, which scaling by it undoes."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(count, 5, generator=generator, dtype=torch.float64) * 2
    targets = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).flatten()
    return torch.softmax(logits * temperature, dim=1), targets


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece():
    probabilities, targets = overconfident(2.5)
    fitted = fit_temperature(probabilities, targets)
    assert fitted == pytest.approx(2.5, rel=0.06)
    before = expected_calibration_error(probabilities, targets)
    after = expected_calibration_error(with_temperature(probabilities, fitted), targets)
    assert before > 0.1 and after < 0.03
    assert torch.equal(with_temperature(probabilities, fitted).argmax(1), probabilities.argmax(1))
    under, under_targets = overconfident(0.5, seed=1)  # under-confident: a temperature below 1
    assert fit_temperature(under, under_targets) == pytest.approx(0.5, rel=0.06)


def test_a_moved_threshold_makes_the_same_decisions():
    scores = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    two_class = torch.stack([1 - scores, scores], dim=1)
    for positive, value, temperature in [(1, 0.3, 1.7), (0, 0.62, 0.4)]:
        moved = moved_threshold(value, positive, temperature)
        scaled = with_temperature(two_class, temperature)
        assert torch.equal(two_class[:, positive] >= value, scaled[:, positive] >= moved)
    assert moved_threshold(0.3, 1, 1.0) == pytest.approx(0.3)


# ---- runs ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    config = {
        "seed": 1,
        "data": "digits",
        "model": {"name": "mlp", "hidden_sizes": [32]},
        "train": {"epochs": 2, "calibrate": "temperature"},
        "runtime": dict(EXACT_RUNTIME),
    }
    return train(config, runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")


def test_train_calibrate_records_the_temperature_figures_and_the_diagram(calibrated_run):
    summary = calibrated_run.summary
    record = summary["calibration"]
    fitted = record["temperature"]
    assert record["bins"] == 15 and record["plot"] == "plots/reliability.png" and fitted["fitted_on"] == "val"
    assert (calibrated_run.dir / record["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fitted["value"] > 0 and fitted["value"] != pytest.approx(1.0, abs=0.02)
    for split in ("val", "test"):
        assert set(fitted["before"][split]) == {"ece", "mce", "brier", "nll"}
        assert record["splits"][split] == fitted["after"][split]
        assert {k: summary["metrics"][split][k] for k in ("ece", "mce", "brier")} == {
            k: fitted["after"][split][k] for k in ("ece", "mce", "brier")
        }
    assert fitted["after"]["val"]["nll"] < fitted["before"]["val"]["nll"]  # the fit minimizes it there


def test_evaluate_and_predict_give_the_probabilities_at_the_temperature(calibrated_run):
    run = load_run(calibrated_run.dir)
    evaluated = run.evaluate("test")
    test = run.metrics["test"]
    assert {k: evaluated[k] for k in ("accuracy", "ece", "mce", "brier")} == {
        k: test[k] for k in ("accuracy", "ece", "mce", "brier")
    }
    images = run_data(run.config).splits["test"].inputs[:60]  # stored form, as predict reads it
    predicted = run.predict(images)
    given = torch.tensor([list(result["probabilities"].values()) for result in predicted], dtype=torch.float64)
    with torch.no_grad():
        outputs = run.model(transform_for(run.data_record["preprocessing"])(images))
        raw = run.objective(calibrated=False).scores(outputs).double()
    temperature = run.summary["calibration"]["temperature"]["value"]
    assert given == pytest.approx(with_temperature(raw, temperature), abs=1e-6)  # predict rounds to 6 places
    assert (given - raw).abs().max() > 0.01
    assert torch.equal(given.argmax(1), raw.argmax(1))
    assert [result["label"] for result in predicted] == [str(int(index)) for index in raw.argmax(1)]


def two_class_config(**train_options) -> dict:
    return {
        "seed": 4,
        "data": {"name": "breast_cancer", "val_fraction": 0.2, "test_fraction": 0.25},
        "model": {"name": "mlp", "hidden_sizes": [8]},
        "train": {"epochs": 3, "batch_size": 32, **train_options},
        "runtime": dict(EXACT_RUNTIME),
    }


def test_lamina_calibrate_keeps_a_two_class_runs_decisions_and_refits_from_the_uncalibrated_scores(tmp_path):
    trained = train(two_class_config(), runs_dir=tmp_path, progress="quiet")
    assert "temperature" not in trained.summary["calibration"]  # figures and diagram without train.calibrate
    assert set(trained.summary["calibration"]["splits"]) == {"val", "test"}
    before = load_run(trained.dir)
    stored = before.summary["threshold"]
    evaluated = {split: before.evaluate(split) for split in ("val", "test")}
    inputs = run_data(before.config).splits["test"].inputs
    labels = [result["label"] for result in before.predict(inputs)]

    result = run_cli("calibrate", str(trained.dir))
    assert result.returncode == 0, result.stderr
    after = load_run(trained.dir)
    fitted = after.summary["calibration"]["temperature"]
    assert result.stdout.startswith(f"temperature {fitted['value']:.4g} fitted on val")
    moved = after.summary["threshold"]
    assert moved["value"] == pytest.approx(moved_threshold(stored["value"], 1, fitted["value"]), rel=1e-12)
    assert moved["value"] != pytest.approx(stored["value"], rel=1e-3)
    said = f"moved from {stored['value']:.4f} to the same decisions at temperature {fitted['value']:.3g}"
    assert moved["note"] == said and said in result.stdout
    for split in ("val", "test"):
        again = after.evaluate(split)
        assert again["confusion_matrix_at_threshold"] == evaluated[split]["confusion_matrix_at_threshold"]
        assert again["ece"] == pytest.approx(fitted["after"][split]["ece"], rel=1e-9)
        assert evaluated[split]["ece"] == pytest.approx(fitted["before"][split]["ece"], rel=1e-9)
    assert [result["label"] for result in after.predict(inputs)] == labels

    refitted = load_run(trained.dir).calibrate()["temperature"]  # from the model's own scores again, not twice
    assert refitted["value"] == pytest.approx(fitted["value"], rel=1e-9)
    assert all(refitted["before"][split] == pytest.approx(fitted["before"][split]) for split in ("val", "test"))
    assert load_run(trained.dir).summary["threshold"]["value"] == pytest.approx(moved["value"], rel=1e-9)

    copy = shutil.copytree(trained.dir, tmp_path / "without-val")  # as if its data now had no val samples
    config = yaml.safe_load((copy / "config.yaml").read_text())
    (copy / "config.yaml").write_text(yaml.safe_dump(config | {"data": {**config["data"], "val_fraction": 0.0}}))
    with pytest.raises(RunError) as raised:
        load_run(copy).calibrate()
    assert str(raised.value) == (
        f"run {copy} has no val samples to fit a temperature on\n"
        "  hint: train it again with data.val_fraction above 0 (calibration fits on val, then reports on test)"
    )


def test_what_calibration_cannot_do_is_said(tmp_path):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 3, generator=generator)
    values = features.sum(dim=1) + 0.1 * torch.randn(200, generator=generator)
    regression = train({"model": "mlp", "train": {"epochs": 1}}, data=(features.numpy(), values.numpy()),
                       runs_dir=tmp_path / "runs", progress="quiet")  # fmt: skip
    assert "calibration" not in regression.summary
    refused = run_cli("calibrate", str(regression.dir))
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"error: run {regression.dir} is a regression run; calibration is for classification runs, whose outputs "
        "are class probabilities",
        "  hint: calibrate a classification run (image, table, text or audio classes)",
    ]

    no_val = two_class_config(calibrate="temperature") | {"data": {"name": "breast_cancer", "val_fraction": 0.0}}
    with pytest.raises(ConfigError) as raised:
        train(no_val, runs_dir=tmp_path / "runs", progress="quiet")
    assert (
        "  - train.calibrate: fits the temperature on the val split, and this data has no val samples; set "
        "data.val_fraction above 0, or remove train.calibrate"
    ) in str(raised.value).splitlines()
    with pytest.raises(ConfigError) as raised:
        train({"model": "mlp", "train": {"epochs": 1, "calibrate": "temperature"}},
              data=(features.numpy(), values.numpy()), runs_dir=tmp_path / "runs", progress="quiet")  # fmt: skip
    assert str(raised.value) == (
        "config problem: train.calibrate: is for classification runs, whose outputs are class probabilities; the "
        "data is a regression task; remove train.calibrate"
    )
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [regression.dir.name]  # nothing written
