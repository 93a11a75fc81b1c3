"""The training doctor: a corpus of deliberately broken runs, each diagnosed with the right kind; healthy shipped
configs without a warning; the suggested change fixing the vanishing and the exploding runs; the layer statistics
only observing; the rules' edge cases on hand-made rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

import lamina
from lamina.cli.main import main
from lamina.core.errors import TrainingDiverged
from lamina.insight.doctor import Finding, diagnose, short_report
from lamina.run import load_run
from lamina.training.callbacks import Callback
from lamina.training.instruments import LayerProbe, dead_units, saturated_outputs
from tests.conftest import EXACT_RUNTIME, ROOT, tiny_config

RUNTIME = dict(EXACT_RUNTIME)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_digits()
    return torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16, torch.tensor(digits.target)  # (N, 1, 8, 8)


def _mlp(hidden: list[int], optimizer: dict, epochs: int = 10, **model) -> dict:
    return {
        "seed": 0,
        "data": "digits",
        "model": {"name": "mlp", "hidden_sizes": hidden, **model},
        "train": {"epochs": epochs, "batch_size": 64, "optimizer": optimizer},
        "runtime": RUNTIME,
    }


VANISHING = _mlp([64] * 10, {"name": "adam", "learning_rate": 0.001}, activation="sigmoid")  # no norm, default init
EXPLODING = _mlp([128, 64], {"name": "adamw", "learning_rate": 1.0})  # 1000 times adamw's default rate


class NegativeBias(Callback):
    """Starts every hidden layer with a bias of -3: standardized inputs then never make a ReLU fire."""

    def fit_start(self, loop) -> None:
        with torch.no_grad():
            for module in loop.model.modules():
                if isinstance(module, torch.nn.Linear) and module.out_features > 10:
                    module.bias.fill_(-3.0)


def _train(config: dict, tmp: Path, **arguments) -> lamina.Run:
    return lamina.train(config, runs_dir=tmp, progress="quiet", **arguments)


def _diverged(config: dict, tmp: Path, **overrides) -> lamina.Run:
    with pytest.raises(TrainingDiverged):
        lamina.train(config, overrides=overrides, runs_dir=tmp, progress="quiet")
    (folder,) = Path(tmp).iterdir()
    return load_run(folder)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, lamina.Run]:
    """The broken runs, trained once for every test of this module (about 6 s in all)."""
    runs = {}
    folder = tmp_path_factory.mktemp("corpus")
    images, labels = _digits()
    runs["vanishing"] = _train(VANISHING, folder / "vanishing")
    runs["exploding"] = _diverged(EXPLODING, folder / "exploding")
    dead = _mlp([128, 128], {"name": "adam", "learning_rate": 0.001})
    runs["dead"] = _train(dead, folder / "dead", callbacks=[NegativeBias()])
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 20, generator=generator)  # 200 samples, 20 features, labels 25 % noise: tiny data
    targets = (features[:, 0] + features[:, 1] + torch.randn(200, generator=generator) > 0).long()
    overfit = {
        "seed": 0,
        "data": {"name": "arrays", "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "mlp", "hidden_sizes": [256, 256]},  # 70,000 weights for 100 samples, no regularization
        "train": {"epochs": 40, "batch_size": 16, "optimizer": {"name": "adam", "learning_rate": 0.001}},
        "runtime": RUNTIME,
    }
    runs["overfitting"] = _train(overfit, folder / "overfitting", data=(features, targets))
    shuffled = labels[torch.randperm(len(labels), generator=generator)]
    chance = {**_mlp([256, 256], {"name": "adam", "learning_rate": 0.001}, epochs=20), "data": {"name": "arrays"}}
    runs["chance"] = _train(chance, folder / "chance", data=(images, shuffled))
    leaky = {**_mlp([64], {"name": "adamw"}, epochs=3), "data": {"name": "arrays"}}
    split = {"train": (images[:1400], labels[:1400]), "test": (images[1000:1400], labels[1000:1400])}
    runs["leakage"] = _train(leaky, folder / "leakage", data=split)
    return runs


def _kinds(run: lamina.Run, severities=("warning", "error")) -> dict[str, Finding]:
    return {finding.kind: finding for finding in run.doctor() if finding.severity in severities}


def test_vanishing_gradients_are_found_in_a_deep_sigmoid_network(corpus):
    found = _kinds(corpus["vanishing"])
    assert set(found) == {"vanishing_gradients"}  # chance level and underfitting are its symptoms: info
    finding = found["vanishing_gradients"]
    assert finding.numbers["ratio"] < 1e-6 and finding.numbers["first_layer"] == "body.0"
    assert "through a sigmoid network without normalization" in finding.evidence
    assert finding.changes == {"model.norm": "batch"}
    symptoms = {f.kind: f.suggestion for f in corpus["vanishing"].doctor() if f.severity == "info"}
    assert symptoms == {
        "underfitting": "see vanishing_gradients first",
        "chance_level": "see vanishing_gradients first",
    }


def test_a_diverged_run_is_diagnosed_as_exploding_with_the_epoch(corpus):
    run = corpus["exploding"]
    assert run.status == "diverged"
    finding = run.doctor()[0]
    assert (finding.kind, finding.severity, finding.numbers["epoch"]) == ("exploding", "error", 1)
    assert finding.evidence.startswith("training diverged at epoch 1: the training loss rose to ")
    assert finding.changes == {"train.optimizer.learning_rate": 0.001, "train.gradient_clip": 1.0}
    assert run.summary["doctor"][0]["kind"] == "exploding"  # recorded when the run stopped


def test_dead_relu_units_are_found_layer_by_layer(corpus):
    found = _kinds(corpus["dead"])
    assert set(found) == {"dead_units"}
    assert found["dead_units"].numbers["layers"] == {"body.1": 1.0, "body.3": 1.0}
    assert found["dead_units"].changes["model.activation"] == "leaky_relu"


def test_tiny_data_and_a_big_unregularized_model_overfit(corpus):
    found = _kinds(corpus["overfitting"])
    assert set(found) == {"overfitting"}
    numbers = found["overfitting"].numbers
    assert numbers["monitor"] == "val.accuracy" and numbers["epochs_worse"] >= 10
    assert numbers["best"] - numbers["last"] >= 0.02
    assert found["overfitting"].changes == {
        "train.early_stopping": {"patience": 5, "restore_best": True},
        "model.dropout": 0.3,
    }


def test_shuffled_labels_plateau_at_chance(corpus):
    found = _kinds(corpus["chance"])
    assert set(found) == {"chance_level"}  # its overfitting is memorized noise: info
    numbers = found["chance_level"].numbers
    assert numbers["val_accuracy"] <= numbers["chance"] + numbers["margin"] and numbers["chance"] < 0.11
    assert "while the train loss fell" in found["chance_level"].evidence


def test_a_test_split_copied_from_train_is_leakage(corpus):
    found = _kinds(corpus["leakage"])
    assert set(found) == {"leakage"}
    facts = corpus["leakage"].data_record["facts"]["duplicates"]
    assert facts["test"]["count"] == found["leakage"].numbers["copies"] > 300  # the 400 rows, less those in val
    assert facts["train"]["count"] == 0 and facts["test"]["examples"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("config", ["digits_cnn", "breast_cancer_mlp"])
def test_the_healthy_shipped_configs_get_no_warning(config, runs_dir):
    run = lamina.train(ROOT / "configs" / f"{config}.yaml", overrides={"runtime.threads": 1}, runs_dir=runs_dir,
                       progress="quiet")  # fmt: skip
    assert [finding.line() for finding in run.doctor() if finding.severity != "info"] == []
    assert short_report(run.doctor()) == ["doctor: no problems found"]
    assert run.summary["doctor"] == [finding.to_dict() for finding in run.doctor()]
    rows = run.folder.rows()
    logged = [row["step"] for row in rows if row["kind"] == "step"]
    assert [row["step"] for row in rows if row["kind"] == "updates"] == logged  # on logging steps only
    activations = [row["step"] for row in rows if row["kind"] == "activations"]
    assert activations == (logged if config == "digits_cnn" else [])  # ReLUs; the MLP's GELUs are not watched


def test_the_suggested_changes_fix_the_vanishing_and_exploding_runs(corpus, tmp_path):
    for broken, config in (("vanishing", VANISHING), ("exploding", EXPLODING)):
        changes = _kinds(corpus[broken])["vanishing_gradients" if broken == "vanishing" else "exploding"].changes
        fixed = lamina.train(config, overrides=changes, runs_dir=tmp_path / broken, progress="quiet")
        assert not _kinds(fixed), broken
        assert fixed.metrics["test"]["accuracy"] > 0.95, broken
    assert corpus["vanishing"].metrics["test"]["accuracy"] < 0.11


def test_layer_statistics_only_observe(runs_dir):
    """The same run with and without the statistics ends with bitwise the same weights."""
    weights = []
    for on in (True, False):
        run = lamina.train(tiny_config(epochs=2, log_layer_statistics=on, log_every_steps=3), runs_dir=runs_dir,
                           progress="quiet")  # fmt: skip
        weights.append(run.model.state_dict())
        kinds = {row["kind"] for row in run.folder.rows()}
        assert ("activations" in kinds) is on and ("updates" in kinds) is on
        assert all(not module._forward_hooks for module in run.model.modules())  # the hooks are gone
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_the_probe_measures_dead_and_saturated_units_and_update_ratios():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([1.0, -1.0, -1.0, 2.0]))  # units 1 and 2 never fire
        model[2].weight.fill_(10.0)
    probe = LayerProbe(model)
    probe.arm()
    model(torch.randn(5, 3))
    model.eval()(torch.randn(5, 3))  # a validation pass is not counted
    model.train()
    with torch.no_grad():
        model[2].weight.mul_(1.1)
    read = probe.read()
    assert read["activations"] == {
        "1": {"function": "relu", "dead": 0.5},
        "3": {"function": "sigmoid", "saturated": 1.0},
    }
    bias = float(model[2].bias.detach().pow(2).sum())  # the weights (2×4 of 10) grew by a tenth, the bias did not move
    assert read["updates"]["2"] == pytest.approx((8 / (800 + bias)) ** 0.5, rel=1e-5)
    assert read["updates"]["0"] == 0 and not model[1]._forward_hooks
    dead, units = dead_units(torch.zeros(2, 3, 4, 4))  # (N, C, H, W): channels
    assert (int(dead), units) == (3, 3)
    assert float(saturated_outputs(torch.tensor([-0.995, 0.0, 0.999]), "tanh")) == pytest.approx(2 / 3)


def _epochs(train_losses, monitor_values, monitor="val.accuracy"):
    return [
        {"kind": "epoch", "epoch": index + 1, "step": 10 * (index + 1), "train.loss": loss, monitor: value}
        for index, (loss, value) in enumerate(zip(train_losses, monitor_values, strict=True))
    ]


def test_overfitting_needs_the_monitor_worse_for_three_epochs_while_train_loss_falls():
    config = {"train": {"monitor": "val.loss"}, "model": {"name": "mlp", "dropout": 0.1}}
    rows = _epochs([1.0, 0.5, 0.3, 0.2, 0.1, 0.05], [0.8, 0.5, 0.55, 0.6, 0.6, 0.58], "val.loss")
    (finding,) = diagnose(rows, {}, {}, config)
    assert (finding.kind, finding.numbers["best_epoch"], finding.numbers["epochs_worse"]) == ("overfitting", 2, 4)
    assert finding.changes == {"train.early_stopping": {"patience": 5, "restore_best": True}}  # dropout already set
    assert diagnose(rows[:4], {}, {}, config) == []  # worse for two epochs only
    restored = diagnose(rows, {"restored_best": True}, {}, config)
    assert restored[0].severity == "info" and "restored the best epoch's weights" in restored[0].evidence


def test_unstable_and_slow_and_stuck_losses():
    config = {"train": {"optimizer": {"name": "sgd", "learning_rate": 0.5}, "epochs": 6}}
    rising = _epochs([1.0, 1.2, 0.9, 1.1, 1.3, 1.5], [0.5] * 6)
    found = {finding.kind: finding for finding in diagnose(rising, {}, {}, config)}
    assert found["unstable_loss"].changes == {"train.optimizer.learning_rate": 0.05}
    assert found["unstable_loss"].numbers["rises"] == 4
    slow = _epochs([1.0, 0.8, 0.6, 0.45, 0.3, 0.2], [0.5, 0.6, 0.7, 0.8, 0.85, 0.9])
    (finding,) = diagnose(slow, {"best": {"epoch": 6}}, {}, config)
    assert (finding.kind, finding.severity, finding.changes) == ("slow_convergence", "info", {"train.epochs": 12})
    stuck = _epochs([2.30, 2.29, 2.29], [0.5, 0.55, 0.6])
    updates = [{"kind": "updates", "step": 10, "layers": {"a": 1e-6, "b": 3e-6}}]
    (finding,) = diagnose(stuck + updates, {}, {}, config)
    assert (finding.kind, finding.changes) == ("underfitting", {"train.optimizer.learning_rate": 5.0})


def test_class_imbalance_and_repeats_that_the_data_explains():
    facts = {
        "class_counts": {"train": [950, 50], "val": [95, 5]},
        "duplicates": {"train": {"count": 100, "of": 1000}, "test": {"count": 9, "of": 100, "examples": [3]}},
    }
    config = {"train": {"loss": {"name": "cross_entropy"}, "monitor": "val.accuracy"}}
    found = {finding.kind: finding for finding in diagnose([], {}, {"facts": facts}, config)}
    assert found["class_imbalance"].severity == "warning" and found["class_imbalance"].numbers["ratio"] == 19
    assert found["class_imbalance"].changes == {"train.loss.class_weights": "balanced", "train.monitor": "val.f1"}
    assert found["leakage"].severity == "info"  # 9 % of test, from data whose train split repeats 10 %


def test_gradient_spikes_without_divergence():
    rows = [{"kind": "gradients", "step": 10 * index, "total": 1.0, "layers": {}} for index in range(1, 12)]
    rows.append({"kind": "gradients", "step": 120, "total": 500.0, "layers": {}})
    (finding,) = diagnose(rows, {}, {}, {"train": {"optimizer": {"name": "adamw", "learning_rate": 0.001}}})
    assert (finding.kind, finding.severity, finding.numbers["step"]) == ("exploding", "warning", 120)
    assert finding.changes == {"train.optimizer.learning_rate": 0.0001, "train.gradient_clip": 1.0}


def test_lamina_doctor_prints_the_findings_and_json(corpus, capsys):
    assert main(["doctor", str(corpus["exploding"].dir)]) == 0
    shown = capsys.readouterr().out
    assert "(diverged): 1 problem" in shown and "ERROR  exploding" in shown
    assert "--set train.optimizer.learning_rate=0.001 --set train.gradient_clip=1.0" in shown
    assert main(["doctor", str(corpus["vanishing"].dir), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [record["kind"] for record in records] == ["vanishing_gradients", "underfitting", "chance_level"]
