"""Two-class data: the positive class by name or index wherever a data set is split into train/val/test, and the
warning when class balance differs sharply between train and val or test (lamina/data/checks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from conftest import EXACT_RUNTIME, run_cli

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
