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


# ---- the positive class, by name or index -------------------------------------------------------------------


def data_of(data: dict):
    from lamina.config.loading import load_config
    from lamina.data.build import build_data

    return build_data(load_config({"data": data, "model": "mlp"}).data, 0)


def write_table(path: Path, labels: list[str]) -> str:
    rows = [f"{index % 7},{(index * 3) % 5},{label}" for index, label in enumerate(labels)]
    path.write_text("a,b,target\n" + "\n".join(rows) + "\n")
    return str(path)


def test_positive_class_by_name_or_index_wherever_two_class_data_is_read(tmp_path):
    cancer = {"name": "breast_cancer"}
    assert "positive_class" not in data_of(cancer).spec.extra  # default: the second class, 'benign'
    assert data_of({**cancer, "positive_class": "malignant"}).spec.extra["positive_class"] == 0
    assert data_of({**cancer, "positive_class": 0}).spec.extra["positive_class"] == 0
    spam = {"name": "csv", "path": write_table(tmp_path / "spam.csv", ["ham", "spam"] * 20), "target": "target"}
    assert data_of({**spam, "positive_class": "spam"}).spec.extra["positive_class"] == 1
    digits = {"name": "digits", "classes": ["8", "3"]}  # folder-like names, renumbered in the order given
    assert data_of({**digits, "positive_class": "3"}).spec.extra["positive_class"] == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "breast_cancer", "positive_class": "cancer"},
            "data.positive_class 'cancer' is not a class of this data (0: 'malignant', 1: 'benign')\n"
            "  hint: use one of the names 'malignant' and 'benign', or an index 0 or 1",
        ),
        (
            {"name": "breast_cancer", "positive_class": 2},
            "data.positive_class is 2, but there are two classes (0: 'malignant', 1: 'benign')\n"
            "  hint: use an index 0 or 1, or a class name in quotes such as 'malignant'",
        ),
        (
            {"name": "digits", "positive_class": 1},
            "data.positive_class is 1, but the data has 10 classes\n"
            "  hint: remove data.positive_class: it names the positive class of two-class data",
        ),
        (
            {"name": "digits", "classes": ["0", "1"], "task": "reconstruction", "positive_class": "1"},
            "data.positive_class is '1', but the data has a reconstruction task\n"
            "  hint: remove data.positive_class: it names the positive class of two-class data",
        ),
    ],
)
def test_a_positive_class_that_does_not_fit_is_a_data_error(data, message):
    from lamina.core.errors import DataError

    with pytest.raises(DataError) as caught:
        data_of(data)
    assert str(caught.value) == message


def test_a_bare_number_that_could_name_two_classes_is_refused(tmp_path):
    from lamina.core.errors import DataError

    grades = {"name": "csv", "path": write_table(tmp_path / "grades.csv", ["1", "2"] * 20), "target": "target"}
    with pytest.raises(DataError) as caught:
        data_of({**grades, "positive_class": 1})
    assert str(caught.value) == (
        "data.positive_class 1 is ambiguous: class index 1 is named '2', but the class named '1' is index 0\n"
        "  hint: write the class name in quotes: positive_class: '1' (or '2')"
    )
    assert data_of({**grades, "positive_class": "1"}).spec.extra["positive_class"] == 0


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


# ---- class balance between splits ---------------------------------------------------------------------------


def bundle_with(counts: dict[str, list[int]], positive: int | None = None):
    """A classification DataBundle whose splits hold these many samples of each class."""
    from lamina.data.bundle import DataBundle, Split
    from lamina.data.spec import DataSpec

    classes = len(next(iter(counts.values())))
    splits = {}
    for name, per_class in counts.items():
        targets = torch.cat([torch.full((count,), index) for index, count in enumerate(per_class)])
        splits[name] = Split(torch.zeros(len(targets), 1), targets)
    names = [f"c{index}" for index in range(classes)]
    spec = DataSpec("tabular", "classification", (1,), num_classes=classes, class_names=names)
    if positive is not None:
        spec.extra["positive_class"] = positive
    return DataBundle(spec, splits, {}, lambda inputs: inputs)


@pytest.mark.parametrize(
    ("train_counts", "held_out", "flagged"),
    [
        ([700, 300], [610, 390], False),  # 30 % → 39 %: 9 points
        ([700, 300], [600, 400], True),  # 30 % → 40 %: 10 points
        ([950, 50, 0], [900, 100, 0], True),  # 5 % → 10 %: twice, 5 points
        ([995, 5, 0], [988, 12, 0], False),  # 0.5 % → 1.2 %: more than twice, under 5 points
        ([960, 40, 0], [960, 10, 30], False),  # 4 % → 1 % and 0 % → 3 %: more than twice, 3 points each
        ([960, 40, 0], [900, 40, 60], True),  # 0 % → 6 %: a class train lacks, 6 points
    ],
)
def test_sharply_means_ten_points_or_twice_the_share_by_five_points(train_counts, held_out, flagged):
    from lamina.data.checks import class_balance_warnings

    bundle = bundle_with({"train": train_counts, "val": train_counts, "test": held_out})
    warnings = class_balance_warnings(bundle)
    assert len(warnings) == int(flagged) and all(" of test (" in warning for warning in warnings)


def test_the_balance_warning_names_the_class_and_the_shift():
    from lamina.data.checks import class_balance_warnings

    two = bundle_with({"train": [75, 25], "val": [15, 5], "test": [20, 20]}, positive=0)
    assert class_balance_warnings(two) == [
        "class balance: 'c0' is 75.0% of train but 50.0% of test (-25.0 points): accuracy, precision and the "
        "threshold chosen on val depend on class balance, so they may not carry over between these splits"
    ]
    three = bundle_with({"train": [50, 30, 20], "val": [10, 10, 80], "test": [50, 30, 20]})
    assert class_balance_warnings(three) == [
        "class balance: 'c2' is 20.0% of train but 80.0% of val (+60.0 points; 2 more classes differ too): "
        "accuracy, precision and the threshold chosen on val depend on class balance, so they may not carry over "
        "between these splits"
    ]


def test_a_shifted_test_split_is_warned_about_on_the_terminal_and_in_the_run_folder(tmp_path):
    import numpy

    generator = numpy.random.default_rng(0)
    arrays = {}
    for split, count, sick in (("train", 40, 12), ("val", 20, 6), ("test", 20, 12)):  # 30 %, 30 %, 60 % sick
        arrays[f"{split}_images"] = generator.integers(0, 256, (count, 6, 5), dtype=numpy.uint8)
        arrays[f"{split}_labels"] = (numpy.arange(count) < sick).astype(numpy.int64).reshape(-1, 1)
    numpy.savez(tmp_path / "scans.npz", **arrays)
    config = {
        "data": {"name": "medmnist", "path": str(tmp_path / "scans.npz"), "class_names": ["well", "sick"]},
        "model": {"name": "mlp", "hidden_sizes": [4]},
        "train": {"epochs": 1},
        "runtime": dict(EXACT_RUNTIME),
    }
    config["data"]["positive_class"] = "sick"
    (tmp_path / "scans.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", str(tmp_path / "scans.yaml"), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    warning = (
        "class balance: 'sick' is 30.0% of train but 60.0% of test (+30.0 points): accuracy, precision and the "
        "threshold chosen on val depend on class balance, so they may not carry over between these splits"
    )
    assert result.stdout.splitlines()[0] == f"warning: {warning}"  # before the first epoch
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert json.loads((run_dir / "summary.json").read_text())["warnings"] == [warning]
    assert json.loads((run_dir / "data.json").read_text())["warnings"] == [warning]
    summary = run_cli("datasets", "summary", str(tmp_path / "scans.yaml"))
    assert f"warning: {warning}" in summary.stdout.splitlines()


def test_two_class_runs_draw_roc_and_precision_recall_curves_of_val_and_test(two_class_run):
    from lamina.artifacts.run_plots import roc_figure
    from lamina.training.evaluate import evaluate_split

    plots = two_class_run.dir / "plots"
    assert sorted(path.name for path in plots.iterdir()) == [
        "confusion_matrix.png",
        "gradient_norms.png",
        "learning_curves.png",
        "precision_recall_curve.png",
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
