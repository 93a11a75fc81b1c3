"""The fairness audit (lamina/insight/fairness.py, lamina/insight/groups.py): exact figures on a hand-made example,
equality with fairlearn, the bootstrap interval's coverage, an injected bias found by a trained run, no bias found
where there is none, and per-group thresholds narrowing the equalized-odds gap."""

from __future__ import annotations

import importlib
from argparse import Namespace

import numpy
import pytest
import torch

import lamina
from lamina.cli import commands
from lamina.cli.main import main
from lamina.core.errors import ConfigError
from lamina.insight.fairness import FairnessSamples, pair_difference, percentile_interval, widest_gap
from lamina.insight.group_lines import worst_group_line
from lamina.insight.groups import audit_split, choose_group_thresholds, decided_classes
from lamina.training.calibration import expected_calibration_error

torch.set_num_threads(1)


def _scores(decided: torch.Tensor, confidence: float = 0.9, classes: int = 2) -> torch.Tensor:
    scores = torch.full((len(decided), classes), (1 - confidence) / (classes - 1), dtype=torch.float64)
    scores[torch.arange(len(decided)), decided] = confidence
    return scores


# ---- exact figures ---------------------------------------------------------------------------------------------


def test_hand_made_example_gives_the_counted_figures():
    # group a: targets 1 1 0 0 0, decided 1 0 1 0 0 → accuracy 3/5, TPR 1/2, FPR 1/3, selection 2/5
    # group b: targets 1 1 1 0 0, decided 1 1 1 1 0 → accuracy 4/5, TPR 1, FPR 1/2, selection 4/5
    targets = torch.tensor([1, 1, 0, 0, 0, 1, 1, 1, 0, 0])
    decided = torch.tensor([1, 0, 1, 0, 0, 1, 1, 1, 1, 0])
    names = ["a"] * 5 + ["b"] * 5
    record = audit_split(_scores(decided), targets, names, ["no", "yes"], decided, positive=1, resamples=200)
    a, b = record["groups"]["a"], record["groups"]["b"]
    assert (a["count"], b["count"]) == (5, 5)
    assert a["accuracy"]["value"] == 0.6 and b["accuracy"]["value"] == 0.8
    assert a["true_positive_rate"]["value"] == 0.5 and b["true_positive_rate"]["value"] == 1.0
    assert a["false_positive_rate"]["value"] == pytest.approx(1 / 3, abs=1e-6)
    assert b["false_positive_rate"]["value"] == 0.5
    assert (a["selection_rate"]["value"], b["selection_rate"]["value"]) == (0.4, 0.8)
    # every confidence is 0.9, in one bin: ECE = |accuracy − 0.9|
    assert a["ece"]["value"] == pytest.approx(0.3) and b["ece"]["value"] == pytest.approx(0.1)
    gaps = record["gaps"]
    assert gaps["accuracy"]["value"] == pytest.approx(0.2)
    assert gaps["demographic_parity_difference"]["value"] == pytest.approx(0.4)
    assert gaps["equalized_odds_difference"]["value"] == pytest.approx(0.5)  # max(1 − 1/2, 1/2 − 1/3)
    assert gaps["equalized_odds_difference"]["between"] == ["b", "a"]
    assert gaps["equalized_odds_difference"]["of"] == "true positive rate of 'yes'"
    assert gaps["demographic_parity_difference"]["of"] == "selection rate of 'yes'"
    assert record["worst_group"]["name"] == "a"
    for figure in (a["accuracy"], gaps["accuracy"], gaps["equalized_odds_difference"]):
        assert figure["low"] <= figure["value"] <= figure["high"]


def test_small_groups_get_no_interval_and_stay_out_of_the_gaps():
    targets = torch.tensor([1, 0, 1, 0, 1, 0, 1, 1])
    decided = torch.tensor([1, 0, 1, 0, 1, 0, 0, 0])  # group a: all right; group b: 1 of 3
    names = ["a"] * 5 + ["b"] * 3  # b: 3 samples, below the 5 needed for an interval
    record = audit_split(_scores(decided), targets, names, None, decided, positive=1, resamples=100)
    assert record["groups"]["b"]["accuracy"] == pytest.approx(1 / 3, abs=1e-6)  # a plain number
    assert "fewer than 5 samples" in record["groups"]["b"]["note"]
    assert record["too_small"] == ["b"]
    assert record["worst_group"]["name"] == "a"  # the only group large enough
    assert record["gaps"]["accuracy"]["value"] == 0.0  # one eligible group: no gap


def test_group_ece_equals_the_calibration_module_on_each_group():
    generator = torch.Generator().manual_seed(3)
    probabilities = torch.softmax(torch.randn(400, 3, generator=generator) * 2, dim=1)
    targets = torch.randint(0, 3, (400,), generator=generator)
    names = [["x", "y", "z"][i % 3] for i in range(400)]
    decided = probabilities.argmax(dim=1)
    samples = FairnessSamples(decided, targets, probabilities.max(dim=1).values, names, 3)
    for index, name in enumerate(samples.names):
        mask = torch.tensor([group == name for group in names])
        expected = expected_calibration_error(probabilities[mask], targets[mask])
        assert float(samples.observed["ece"][0, index]) == pytest.approx(expected, abs=1e-6)  # float32 there


def test_equals_fairlearn_on_two_and_three_classes():
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    generator = numpy.random.default_rng(0)
    for classes in (2, 3):
        targets = generator.integers(0, classes, 300)
        decided = numpy.where(generator.random(300) < 0.7, targets, generator.integers(0, classes, 300))
        names = list(generator.choice(["north", "south", "east"], 300, p=[0.5, 0.3, 0.2]))
        t, d = torch.from_numpy(targets), torch.from_numpy(decided)
        positive = 1 if classes == 2 else None
        record = audit_split(_scores(d, classes=classes), t, names, None, d, positive, resamples=50)
        frame = fairlearn_metrics.MetricFrame(
            metrics={"accuracy": accuracy_score}, y_true=targets, y_pred=decided, sensitive_features=names
        )
        for name, value in frame.by_group["accuracy"].items():
            assert record["groups"][name]["accuracy"]["value"] == pytest.approx(value, abs=1e-6)
        assert record["gaps"]["accuracy"]["value"] == pytest.approx(frame.difference()["accuracy"], abs=1e-6)
        # more classes: fairlearn's difference on each class's one-vs-rest problem, the worst class
        parity, odds = [], []
        for positive_class in [1] if classes == 2 else range(classes):
            truth, called = targets == positive_class, decided == positive_class
            parity.append(fairlearn_metrics.demographic_parity_difference(truth, called, sensitive_features=names))
            odds.append(fairlearn_metrics.equalized_odds_difference(truth, called, sensitive_features=names))
        gaps = record["gaps"]
        assert gaps["demographic_parity_difference"]["value"] == pytest.approx(max(parity), abs=1e-6)
        assert gaps["equalized_odds_difference"]["value"] == pytest.approx(max(odds), abs=1e-6)


# ---- the interval ------------------------------------------------------------------------------------------


def test_gap_interval_covers_the_true_gap_about_95_percent_of_the_time():
    # two groups of 200 whose decisions are right with probability 0.85 and 0.75: a true accuracy gap of 0.10
    generator = torch.Generator().manual_seed(0)
    covered, trials = 0, 200
    names = ["a"] * 200 + ["b"] * 200
    truth = torch.tensor([0.85] * 200 + [0.75] * 200, dtype=torch.float64)
    targets = torch.zeros(400, dtype=torch.long)
    for trial in range(trials):
        decided = (torch.rand(400, generator=generator, dtype=torch.float64) >= truth).long()  # 0: right
        samples = FairnessSamples(decided, targets, torch.ones(400), names, 2)
        observed = samples.observed["accuracy"][0].unsqueeze(1)  # (G, 1)
        highest, lowest, component = widest_gap(observed, torch.tensor([True, True]))
        resampled = samples.resampled(400, seed=trial)["accuracy"].unsqueeze(2)
        low, high = percentile_interval(pair_difference(resampled, highest, lowest, component))
        sign = 1.0 if highest == 0 else -1.0  # the interval is of best − worst on this sample
        covered += bool(low <= sign * 0.10 <= high)
    assert 0.90 <= covered / trials <= 0.99


def test_resamples_keep_each_group_and_its_size():
    from lamina.insight.fairness import resample_index

    codes = torch.tensor([2, 0, 1, 0, 2, 2, 1, 0, 0])
    index = resample_index(codes, 50, torch.Generator().manual_seed(1))
    assert index.shape == (50, 9)
    for row in codes[index]:  # the group of each drawn sample, per resample
        assert torch.bincount(row, minlength=3).tolist() == [4, 2, 3]
    assert len(torch.unique(index[:, 0])) > 1  # really drawn, not the identity


# ---- trained runs ----------------------------------------------------------------------------------------------


def _table(seed: int, count: int, flip: float = 0.0, shift: float = 0.0):
    """Rows of 4 features, label = [x0 + x1/2 > 0]; group b (half the rows) has its labels flipped with
    probability `flip` and its first feature read `shift` too high. The group is not a feature."""
    generator = numpy.random.default_rng(seed)
    features = generator.normal(size=(count, 4)).astype("float32")
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype("int64")
    group = numpy.where(generator.random(count) < 0.5, "a", "b")
    labels = numpy.where((group == "b") & (generator.random(count) < flip), 1 - labels, labels)
    features[:, 0] += numpy.where(group == "b", shift, 0.0).astype("float32")
    return features, labels, list(group)


@pytest.fixture
def train_with_groups(monkeypatch, runs_dir):
    """Train an MLP on tables from `_table`, with the group of each row set as data.groups["group"] would."""

    def train(seed: int, overrides: dict | None = None, **table):
        splits = {name: _table(seed * 10 + index, 600, **table) for index, name in enumerate(("train", "val", "test"))}
        groups = {"group": {name: split[2] for name, split in splits.items()}}
        original = importlib.import_module("lamina.run").run_data

        def with_groups(config, given=None, *rest):
            bundle = original(config, given, *rest)
            bundle.groups = groups
            return bundle

        monkeypatch.setattr(importlib.import_module("lamina.pipeline.prepare"), "run_data", with_groups)
        monkeypatch.setattr(importlib.import_module("lamina.run"), "run_data", with_groups)  # Run.evaluate's
        config = {"data": {"name": "arrays"}, "model": "mlp", "seed": seed, "train": {"epochs": 4, **(overrides or {})}}
        data = {name: (split[0], split[1]) for name, split in splits.items()}
        return lamina.train(config, runs_dir=runs_dir, progress="quiet", data=data)

    return train


def test_injected_bias_is_found_with_an_interval_that_excludes_zero(train_with_groups, monkeypatch, capsys):
    run = train_with_groups(1, flip=0.2)
    record = run.summary["groups"]["group"]
    test = record["splits"]["test"]
    assert test["groups"]["b"]["accuracy"]["value"] < test["groups"]["a"]["accuracy"]["value"] - 0.1
    assert test["worst_group"]["name"] == "b"
    assert test["gaps"]["accuracy"]["low"] > 0  # the flipped group is worse, and not by chance
    assert record["interval"] == {"method": "bootstrap percentile", "resamples": 1000, "level": 0.95}
    assert record["unseen"] == [] and set(record["splits"]) == {"val", "test"}
    assert (run.dir / record["plot"]).is_file() and record["plot"] == "plots/groups-group.png"
    assert worst_group_line("group", record, "test").startswith("groups by group (test, 2 groups): worst b, accuracy")
    # evaluating again gives the same audit (same predictions, same seeded resamples), and the CLI shows it
    assert run.evaluate("test")["groups"]["group"]["splits"]["test"] == test
    monkeypatch.setattr(importlib.import_module("lamina.run"), "load_run", lambda path: run)
    commands.evaluate(Namespace(run_dir=[str(run.dir)], split="test", allow_unfinished=False, json=False))
    shown = capsys.readouterr().out
    assert worst_group_line("group", record, "test") in shown
    table = shown.split(worst_group_line("group", record, "test"))[1].split()
    assert table[:7] == ["group", "count", "accuracy", "ece", "true_positive_rate", "false_positive_rate",
                         "selection_rate"]  # fmt: skip
    a_count = str(test["groups"]["a"]["count"])
    assert table[table.index("a") + 1] == a_count and f"{test['groups']['a']['accuracy']['value']:.3f}" in table


def test_without_bias_the_gap_interval_covers_zero_in_most_test_sets(train_with_groups):
    # Training is the slow part, so the model is trained once and the data-generating process is resampled:
    # each seed draws a fresh test table from the same unbiased process. The group is not a feature and labels
    # do not depend on it, so the trained model's true accuracy is the same in both groups and the true gap is 0.
    run = train_with_groups(2)
    assert run.summary["groups"]["group"]["splits"]["test"]["gaps"]["accuracy"]["value"] >= 0
    covered, seeds = 0, 40
    for seed in range(seeds):
        features, labels, names = _table(1000 + seed, 600)
        probabilities = torch.tensor([list(r["probabilities"].values()) for r in run.predict(features)])
        decided = decided_classes(probabilities, run.spec.class_names, run.threshold)
        record = audit_split(probabilities, torch.from_numpy(labels), names, None, decided, 1, 500, seed)
        gap = record["gaps"]["accuracy"]
        covered += gap["low"] <= 0 <= gap["high"]
    assert covered / seeds >= 0.9


def test_group_thresholds_narrow_the_equalized_odds_gap(train_with_groups):
    # group b's first feature reads 1.5 too high, so at one threshold it is called positive far more often
    # (higher true and false positive rates); a threshold chosen for each group on val evens the rates out
    run = train_with_groups(3, {"group_thresholds": "group"}, shift=1.5)
    record = run.summary["group_thresholds"]
    assert record["attribute"] == "group" and record["chosen_on"] == "val"
    assert record["values"]["b"] > record["values"]["a"]  # b needs a higher threshold
    test = record["splits"]["test"]
    before = test["without"]["gaps"]["equalized_odds_difference"]["value"]
    after = test["with"]["gaps"]["equalized_odds_difference"]["value"]
    assert before > 0.2 and after < before / 2
    assert test["fallback_groups"] == []
    assert run.summary["groups"]["group"]["decisions"] == "per-group thresholds (train.group_thresholds), by group"
    # predicting: each input at its group's threshold when its group is given, else the run's, said in a note
    features, _, names = _table(33, 50, shift=1.5)
    results = run.predict(features, groups=names)
    assert [r["threshold"] for r in results] == [record["values"][name] for name in names]
    assert [r["label"] for r in results] == [
        "1" if r["probabilities"]["1"] >= record["values"][name] else "0"
        for r, name in zip(results, names, strict=True)
    ]
    unknown = run.predict(features[:2])
    assert unknown[0]["threshold"] == run.threshold["value"] and "the input's group is not known" in unknown[0]["note"]


def test_group_thresholds_fall_back_for_groups_without_both_classes_or_enough_samples():
    scores = torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.55, 0.45]] * 2 + [[0.4, 0.6]] * 6)
    targets = torch.tensor([0, 1, 0, 1, 0] * 2 + [0] * 6)
    names = ["a"] * 10 + ["c"] * 5 + ["d"]
    threshold = {"positive_class": "1", "positive_index": 1, "value": 0.5, "rule": "max Youden's J"}
    record = choose_group_thresholds(scores, targets, names, "site", threshold, None)
    assert list(record["values"]) == ["a"] and 0.45 < record["values"]["a"] < 0.7  # between the classes' scores
    assert record["fallback"]["groups"] == {"c": "one class in val", "d": "only 1 in val"}
    decided = decided_classes(scores[:4], None, threshold, record, ["a", "c", "d", "unseen"])
    assert decided.tolist() == [0, 1, 0, 1]  # a at its own threshold; c, d and the unseen group at 0.5


def test_group_thresholds_need_a_known_attribute_and_two_classes(runs_dir):
    with pytest.raises(ConfigError) as caught:
        lamina.train(
            {"data": "breast_cancer", "model": "mlp", "train": {"epochs": 1, "group_thresholds": "site"}},
            runs_dir=runs_dir,
            progress="quiet",
        )
    assert "train.group_thresholds: is 'site', which is not an attribute of data.groups (attributes: none: " in str(
        caught.value
    )
    with pytest.raises(ConfigError, match="need a two-class classification task; this data has 10 classes"):
        lamina.train(
            {"data": "digits", "model": "mlp", "train": {"epochs": 1, "group_thresholds": "site"}},
            runs_dir=runs_dir,
            progress="quiet",
        )


def test_lamina_train_ends_with_a_line_per_attribute(monkeypatch, runs_dir, tmp_path, capsys):
    # ten digits, groups by the parity of each sample's position (as data.groups would give them)
    original = importlib.import_module("lamina.run").run_data

    def with_groups(config, given=None, *rest):
        bundle = original(config, given, *rest)
        bundle.groups = {"parity": {name: ["even", "odd"] * (len(split) // 2) + ["even"] * (len(split) % 2)
                                    for name, split in bundle.splits.items()}}  # fmt: skip
        return bundle

    monkeypatch.setattr(importlib.import_module("lamina.pipeline.prepare"), "run_data", with_groups)
    config = tmp_path / "digits.yaml"
    config.write_text("data: digits\nmodel: mlp\ntrain: {epochs: 2}\n")
    assert main(["train", str(config), "--runs-dir", str(runs_dir), "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    line = next(line for line in printed if line.startswith("groups by parity"))
    run = lamina.load_run(printed[-1])
    assert line == worst_group_line("parity", run.summary["groups"]["parity"], "test")
    record = run.summary["groups"]["parity"]["splits"]["test"]
    assert sorted(record["groups"]) == ["even", "odd"] and "recall_9" in record["groups"]["odd"]
    assert record["gaps"]["equalized_odds_difference"]["of"].split(" of ")[0] in (
        "true positive rate",
        "false positive rate",
    )
