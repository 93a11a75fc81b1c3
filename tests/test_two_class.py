"""Two-class runs give one answer everywhere: the threshold chosen on val is stored with the run and used by the
training output, `lamina evaluate`, `Run.evaluate()`, `lamina predict` and ensembles; old run folders without one
choose it again on val; the ROC and precision-recall curves match scikit-learn's."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from conftest import EXACT_RUNTIME, run_cli, shared_data
from lamina.core.errors import RunError
from lamina.data.bundle import split_indices
from lamina.pipeline import train
from lamina.run import load_run
from lamina.tasks.decisions import average_precision, precision_recall_curve, rates_at, roc_curve

SEED = 4


def breast_cancer_config(**data) -> dict:
    return {
        "name": "two-class",
        "seed": SEED,
        "data": {"name": "breast_cancer", "val_fraction": 0.2, "test_fraction": 0.25, **data},
        "model": {"name": "mlp", "hidden_sizes": [8]},
        "train": {"epochs": 3, "batch_size": 32, "monitor": "val.roc_auc"},
        "runtime": dict(EXACT_RUNTIME),
    }


def found_in(text: str, pattern: str) -> re.Match:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text}"
    return found


def raw_test_rows(path: Path) -> list[int]:
    """Write the test split's rows of breast_cancer_config() to a CSV, as a user would have them (raw
    measurements); returns their true classes."""
    from sklearn.datasets import load_breast_cancer

    dataset = load_breast_cancer()
    targets = torch.tensor(dataset.target)
    index = split_indices(targets, len(targets), {"test": 0.25, "val": 0.2}, SEED)["test"].tolist()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(dataset.feature_names)
        for row in index:
            writer.writerow([repr(float(value)) for value in dataset.data[row]])
    return [int(targets[row]) for row in index]


def test_one_threshold_and_the_same_rates_in_train_evaluate_run_evaluate_and_predict(tmp_path):
    config = tmp_path / "two-class.yaml"
    config.write_text(yaml.safe_dump(breast_cancer_config()))
    trained = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert trained.returncode == 0, trained.stderr
    run_dir = Path(trained.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    stored = summary["threshold"]
    assert stored["positive_class"] == "benign" and stored["positive_index"] == 1 and stored["chosen_on"] == "val"
    test = summary["metrics"]["test"]
    said = (
        f"threshold {stored['value']:.4f} for 'benign' (chosen on val, max Youden's J): test sensitivity "
        f"{test['sensitivity_at_threshold']:.4f}, specificity {test['specificity_at_threshold']:.4f}"
    )
    assert said in trained.stdout.splitlines()  # the training output

    evaluated = run_cli("evaluate", str(run_dir))  # lamina evaluate, as a table
    assert evaluated.returncode == 0, evaluated.stderr
    assert said in evaluated.stdout.splitlines()
    decided = found_in(evaluated.stdout, r"at the threshold .*\n((?:\s+\d+\s+\d+\n?){2})")[1].split()
    assert [int(count) for count in decided] == sum(test["confusion_matrix_at_threshold"], [])
    as_json = json.loads(run_cli("evaluate", str(run_dir), "--json").stdout)
    assert as_json["threshold"] == stored
    for name in ("sensitivity", "specificity", "precision", "accuracy"):
        assert as_json[f"{name}_at_threshold"] == test[f"{name}_at_threshold"], name

    run = load_run(run_dir)  # Run.evaluate()
    metrics = run.evaluate("test")
    assert run.threshold == stored and metrics["threshold"] == stored
    assert {key: metrics[key] for key in test} == test  # every number of the summary, bit for bit

    truth = raw_test_rows(tmp_path / "patients.csv")  # lamina predict on the raw rows
    predicted = run_cli("predict", str(run_dir), str(tmp_path / "patients.csv"))
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.splitlines()
    assert lines[0] == (
        f"threshold {stored['value']:.4f} for 'benign' (chosen on val, max Youden's J): 'benign' where its "
        "probability is at least that"
    )
    assert lines[1].split() == ["input", "label", "probability", "of", "'benign'"]
    as_lines = run_cli("predict", str(run_dir), str(tmp_path / "patients.csv"), "--json").stdout.splitlines()
    results = [json.loads(line) for line in as_lines]
    assert {result["threshold"] for result in results} == {stored["value"]}
    labels = [result["label"] for result in results]
    assert [row.split()[1] for row in lines[3:]] == labels
    called = torch.tensor([label == "benign" for label in labels])
    positives = torch.tensor(truth) == 1
    sensitivity = int((called & positives).sum()) / int(positives.sum())
    specificity = int((~called & ~positives).sum()) / int((~positives).sum())
    assert (sensitivity, specificity) == (test["sensitivity_at_threshold"], test["specificity_at_threshold"])
    # a label disagrees with the most likely class exactly where the probability lies between 0.5 and the threshold
    low, high = sorted([0.5, stored["value"]])
    between = [result for result in results if low <= result["probabilities"]["benign"] < high]
    assert between and all(result["probability"] <= 0.5 for result in between)

    listed = run_cli("runs", "--runs-dir", str(tmp_path / "runs"))  # the monitor, not accuracy
    row = listed.stdout.splitlines()[2].split()
    assert row[3:7] == [
        "val.roc_auc",
        f"{summary['best']['value']:.4f}",
        "test.roc_auc",
        f"{test['roc_auc']:.4f}",
    ]


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory):
    return train(breast_cancer_config(), runs_dir=tmp_path_factory.mktemp("two-class"), progress="quiet")


def rewrite_summary(run_dir: Path, change) -> None:
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    change(summary)
    path.write_text(json.dumps(summary))


def test_an_old_run_folder_without_a_threshold_chooses_the_same_one_again_on_val(two_class_run, tmp_path):
    import shutil

    stored = two_class_run.threshold
    expected = two_class_run.evaluate("test")
    old = tmp_path / "old"
    shutil.copytree(two_class_run.dir, old)
    rewrite_summary(old, lambda summary: summary.pop("threshold"))  # as runs trained before thresholds were stored
    run = load_run(old)
    again = run.evaluate("test")
    note = "chosen now on val: the run folder stores no threshold"
    assert run.threshold == {**stored, "note": note} and again["threshold"] == run.threshold
    assert {key: again[key] for key in expected if key != "threshold"} == {
        key: value for key, value in expected.items() if key != "threshold"
    }
    inputs = run_data_of(run).splits["test"].inputs
    assert [p["label"] for p in run.predict(inputs)] == [p["label"] for p in two_class_run.predict(inputs)]
    shown = run_cli("evaluate", str(old)).stdout
    assert "for 'benign' (chosen on val, max Youden's J): test sensitivity" in shown and f"; {note}" in shown

    # a record written before the index was stored: the class by name, the value rounded to 6 places
    def older(summary):
        summary["threshold"] = {"positive_class": "benign", "value": round(stored["value"], 6), "chosen_on": "val"}

    rewrite_summary(old, older)
    assert load_run(old).threshold["positive_index"] == 1


def run_data_of(run):
    from lamina.run import run_data

    return run_data(run.config)


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ("high", "it is 'high'"),
        ({"positive_class": "benign", "value": 1.5}, "its value 1.5 is not a probability"),
        ({"positive_class": "cyst", "value": 0.5}, "positive class 'cyst' is not one of the two classes"),
    ],
)
def test_a_damaged_stored_threshold_is_an_error_naming_the_file(two_class_run, tmp_path, record, said):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(two_class_run.dir, copy)
    rewrite_summary(copy, lambda summary: summary.update(threshold=record))
    with pytest.raises(RunError) as caught:
        load_run(copy).evaluate("test")
    assert str(caught.value) == (
        f"the decision threshold in {copy / 'summary.json'} is damaged: {said}\n"
        "  hint: copy the run folder again, or delete the 'threshold' entry to choose it again on the val split"
    )


def test_curves_match_scikit_learn():
    from sklearn.metrics import average_precision_score
    from sklearn.metrics import precision_recall_curve as sklearn_precision_recall
    from sklearn.metrics import roc_curve as sklearn_roc

    generator = torch.Generator().manual_seed(1)
    positives = torch.rand(300, generator=generator) < 0.35
    scores = ((positives.float() * 0.6 + torch.rand(300, generator=generator)) * 20).round() / 20  # with ties
    false_rate, true_rate, thresholds = roc_curve(scores, positives)
    expected = sklearn_roc(positives.numpy(), scores.double().numpy(), drop_intermediate=False)
    for ours, theirs in zip((false_rate, true_rate, thresholds), expected, strict=True):
        assert ours.tolist() == pytest.approx(theirs.tolist())
    precision, recall, cuts = precision_recall_curve(scores, positives)
    their_precision, their_recall, their_cuts = sklearn_precision_recall(positives.numpy(), scores.double().numpy())
    # scikit-learn lists rising thresholds and ends at (precision 1, recall 0) without a threshold
    assert precision.tolist() == pytest.approx(their_precision[::-1].tolist())
    assert recall.tolist() == pytest.approx(their_recall[::-1].tolist())
    assert cuts[1:].tolist() == pytest.approx(their_cuts[::-1].tolist())
    assert average_precision(scores, positives) == pytest.approx(average_precision_score(positives, scores.double()))
    # the operating point of a threshold lies on both curves
    rates = rates_at(scores, positives, 0.625)
    point = int((thresholds >= 0.625).nonzero().max())
    assert (false_rate[point], true_rate[point]) == pytest.approx((1 - rates["specificity"], rates["sensitivity"]))
    assert (precision[point], recall[point]) == pytest.approx((rates["precision"], rates["sensitivity"]))


def test_each_ensemble_member_decides_at_its_own_stored_threshold(tmp_path):
    from lamina.ensemble import evaluate_ensemble

    members = [
        train({**breast_cancer_config(seed=0), "seed": seed}, runs_dir=tmp_path, progress="quiet") for seed in (1, 2)
    ]
    rewrite_summary(members[1].dir, lambda summary: summary["threshold"].update(value=0.999))  # an odd choice
    result = evaluate_ensemble([run.dir for run in members], "test")
    decisions = ["sensitivity", "specificity", "precision", "accuracy", "confusion_matrix"]
    for run in members:
        own, column = load_run(run.dir).evaluate("test"), result["metrics"][str(run.dir)]
        for key in (f"{name}_at_threshold" for name in decisions):  # as JSON: NaN (none called positive) included
            assert json.dumps(column[key]) == json.dumps(own[key]), key
    odd = result["metrics"][str(members[1].dir)]
    assert odd["sensitivity_at_threshold"] < 0.5 and odd["specificity_at_threshold"] == 1.0
    assert 0 < result["threshold"]["value"] < 0.999  # the ensemble chooses its own on its val predictions


def test_breastmnist_decides_about_malignant_by_name_everywhere(tmp_path):
    path = shared_data("breastmnist") / "breastmnist.npz"
    config = {
        "seed": 0,
        "data": {"name": "medmnist", "path": str(path), "class_names": ["malignant", "benign"]},
        "model": {"name": "cnn", "blocks": [8, 16]},
        "train": {"epochs": 2, "batch_size": 64, "monitor": "val.roc_auc"},
        "runtime": dict(EXACT_RUNTIME),
    }
    config["data"]["positive_class"] = "malignant"
    run = train(config, runs_dir=tmp_path, progress="quiet")
    assert run.threshold["positive_class"] == "malignant" and run.threshold["positive_index"] == 0
    metrics = run.evaluate("test")
    test = run.metrics["test"]
    assert {key: metrics[key] for key in test} == test and metrics["threshold"] == run.summary["threshold"]
    images = run_data_of(run).splits["test"]
    labels = [result["label"] for result in run.predict(images.inputs)]
    called, positives = torch.tensor([label == "malignant" for label in labels]), images.targets == 0
    assert int((called & positives).sum()) / int(positives.sum()) == test["sensitivity_at_threshold"]
    assert int((~called & ~positives).sum()) / int((~positives).sum()) == test["specificity_at_threshold"]


def test_two_class_runs_draw_roc_and_precision_recall_curves_of_val_and_test(two_class_run):
    from lamina.artifacts.run_plots import roc_figure
    from lamina.training.evaluate import evaluate_split

    plots = two_class_run.dir / "plots"
    assert sorted(path.name for path in plots.iterdir()) == [
        "confusion_matrix.png",
        "gradient_norms.png",
        "learning_curves.png",
        "precision_recall_curve.png",
        "reliability.png",
        "roc_curve.png",
    ]
    data, run = run_data_of(two_class_run), two_class_run
    predictions = {
        split: evaluate_split(run.model, data.splits[split], data.transform, run.objective(), "classification", [], 64)[
            1
        ]
        for split in ("val", "test")
    }
    panel = roc_figure(predictions, run.threshold, run.spec.class_names).panels[0]
    assert [series.label for series in panel.series] == [
        f"val (AUC {run.metrics['val']['roc_auc']:.3f})",
        f"test (AUC {run.metrics['test']['roc_auc']:.3f})",
        "chance",
    ]
    test = run.metrics["test"]
    assert panel.series[1].marks == [
        pytest.approx((1 - test["specificity_at_threshold"], test["sensitivity_at_threshold"]))
    ]
