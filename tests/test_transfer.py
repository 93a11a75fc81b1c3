"""Transfer learning and few labels: init_from, the channel rule, freezing, unfreezing, rates, pseudo-labels,
the validation threshold."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from conftest import tiny_config
from lamina.core.errors import ConfigError, ModelError, RunInterrupted
from lamina.pipeline import resume, train
from lamina.training.transfer import adapt_channels, with_learning_rate_factors


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A small ResNet trained on three digit classes."""
    config = tiny_config(epochs=2)
    config["model"] = {"name": "resnet", "preset": "small", "width": 0.5}
    config["data"]["classes"] = ["0", "1", "2"]
    return train(config, runs_dir=tmp_path_factory.mktemp("pretrained"), progress="quiet")


def resnet_config(pretrained, **train_options) -> dict:
    config = tiny_config(**{"epochs": 2, **train_options})
    config["model"] = {"name": "resnet", "preset": "small", "width": 0.5, "init_from": str(pretrained.dir)}
    return config


def test_init_from_loads_the_backbone_and_rebuilds_a_head_for_other_classes(pretrained, runs_dir):
    from lamina.config.loading import load_config
    from lamina.pipeline.prepare import prepare

    session = prepare(load_config(resnet_config(pretrained)))
    assert session.transfer["fresh"] == ["head.0"] and session.transfer["loaded"] > 30
    source = load_file(str(pretrained.dir / "model.safetensors"))
    state = {name: value.cpu() for name, value in session.model.state_dict().items()}
    assert all(torch.equal(state[name], source[name]) for name in source if name.startswith("backbone."))
    assert state["head.0.weight"].shape == (10, 32) and source["head.0.weight"].shape == (3, 32)
    run = train(resnet_config(pretrained), runs_dir=runs_dir, progress="quiet")
    assert run.summary["init_from"]["fresh"] == ["head.0"]


def test_channel_rule_gives_gray_images_the_same_response():
    torch.manual_seed(0)
    rgb_kernel, gray = torch.randn(5, 3, 3, 3), torch.randn(2, 1, 8, 8)
    as_rgb = gray.repeat(1, 3, 1, 1)  # a gray image seen by an RGB network
    assert torch.allclose(F.conv2d(gray, adapt_channels(rgb_kernel, 1)), F.conv2d(as_rgb, rgb_kernel), atol=1e-5)
    gray_kernel = torch.randn(5, 1, 3, 3)
    assert torch.allclose(F.conv2d(as_rgb, adapt_channels(gray_kernel, 3)), F.conv2d(gray, gray_kernel), atol=1e-5)


def test_init_from_across_channels_and_unusable_sources(pretrained, tmp_path):
    from lamina.config.loading import load_config
    from lamina.data.spec import DataSpec
    from lamina.models.registry import build_model
    from lamina.training.transfer import load_pretrained

    rgb = build_model(
        {"name": "resnet", "preset": "small", "width": 0.5},
        DataSpec("image", "classification", (3, 8, 8), num_classes=3),
    )
    report = load_pretrained(rgb, str(pretrained.dir))
    assert report["adapted"] == ["backbone.0.0.weight"] and report["fresh"] == []
    source = load_file(str(pretrained.dir / "model.safetensors"))["backbone.0.0.weight"]
    assert torch.allclose(rgb.state_dict()["backbone.0.0.weight"], source.repeat(1, 3, 1, 1) / 3)
    torch.save(load_file(str(pretrained.dir / "model.safetensors")), tmp_path / "weights.pt")  # a state-dict file
    assert load_pretrained(rgb, str(tmp_path / "weights.pt"))["adapted"] == ["backbone.0.0.weight"]
    save_file({"something.else": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelError, match="none of its 1 tensors fits this model"):
        load_pretrained(rgb, str(tmp_path / "other.safetensors"))
    with pytest.raises(ConfigError, match="model.init_from: '/nowhere' does not exist"):
        from lamina.pipeline.prepare import prepare

        prepare(load_config({**tiny_config(), "model": {"name": "cnn", "init_from": "/nowhere"}}))


def test_frozen_backbone_stays_put_and_unfreezes_on_schedule(pretrained, runs_dir):
    frozen = train(resnet_config(pretrained, freeze=["backbone"]), runs_dir=runs_dir / "a", progress="quiet")
    start = load_file(str(pretrained.dir / "model.safetensors"))
    end = load_file(str(frozen.dir / "model.safetensors"))
    weights = [n for n in start if n.startswith("backbone.") and n.endswith("weight")]
    assert all(torch.equal(start[n], end[n]) for n in weights)  # BN running statistics may move; weights do not
    gradual = resnet_config(pretrained, freeze=["backbone"], unfreeze={"backbone.3": 1}, epochs=2)
    later = train(gradual, runs_dir=runs_dir / "b", progress="quiet")
    after = load_file(str(later.dir / "model.safetensors"))
    assert not torch.equal(start["backbone.3.0.conv1.weight"], after["backbone.3.0.conv1.weight"])
    assert torch.equal(start["backbone.1.0.conv1.weight"], after["backbone.1.0.conv1.weight"])
    with pytest.raises(RunInterrupted) as caught:  # resuming mid-way through the frozen epoch is exact
        from test_resume import InterruptAt

        train(gradual, runs_dir=runs_dir / "c", progress="quiet", callbacks=[InterruptAt(9)])
    resumed = load_file(str(resume(caught.value.run_dir, progress="quiet").dir / "model.safetensors"))
    assert all(torch.equal(after[name], resumed[name]) for name in after)


def test_unknown_module_names_are_config_errors(pretrained):
    from lamina.config.loading import load_config
    from lamina.pipeline.prepare import prepare

    with pytest.raises(ConfigError) as caught:
        prepare(load_config(resnet_config(pretrained, freeze=["backbon"], learning_rate_factors={"hed": 0.1})))
    text = str(caught.value)
    assert "train.freeze: 'backbon' names no parameters of this model; did you mean 'backbone'?" in text
    assert "train.learning_rate_factors: 'hed' names no parameters of this model; did you mean 'head'?" in text


def test_discriminative_rates_scale_each_groups_base_rate():
    from lamina.data.spec import DataSpec
    from lamina.models.registry import build_model
    from lamina.training.optimizers import build_optimizer
    from lamina.training.options import optimizers

    model = build_model("cnn", DataSpec("image", "classification", (1, 8, 8), num_classes=3))
    optimizer = with_learning_rate_factors(
        build_optimizer(optimizers.get("sgd").options(learning_rate=0.1), model),
        model,
        {"backbone": 0.1, "features.0": 0.5},
    )
    rate = {id(p): group["base_lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rate[id(model.head[0].weight)] == pytest.approx(0.1)
    assert rate[id(model.features[0].weight)] == pytest.approx(0.05)  # the longest prefix wins
    assert rate[id(model.features[4].weight)] == pytest.approx(0.01)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    for name in ("adamw", "muon"):  # every optimizer kind, including the two-part Muon + AdamW set
        split = with_learning_rate_factors(build_optimizer(optimizers.get(name).options(), model), model, {"head": 0.5})
        rates = {id(p): group["base_lr"] for group in split.param_groups for p in group["params"]}
        assert rates[id(model.head[0].weight)] == pytest.approx(0.5e-3) and len(rates) == len(list(model.parameters()))


def test_pseudo_labels_from_a_teacher_join_the_training_split(runs_dir):
    from lamina.config.loading import load_config
    from lamina.run import run_data

    config = tiny_config(epochs=15, batch_size=32)
    config["data"]["labelled_fraction"] = 0.2
    teacher = train(config, runs_dir=runs_dir, progress="quiet")
    student = {**config, "data": {**config["data"], "pseudo_labels": {"teacher": str(teacher.dir), "threshold": 0.8}}}
    data = run_data(load_config(student))
    plain = run_data(load_config(config))
    added = len(data.splits["train"]) - len(plain.splits["train"])
    assert added >= 10 and added + len(data.splits["unlabelled"]) == len(plain.splits["unlabelled"])
    assert any(note.startswith(f"pseudo-labels: {added} of ") for note in data.notes)
    with pytest.raises(Exception, match="needs unlabelled images"):
        run_data(load_config({**student, "data": {**student["data"], "labelled_fraction": 1.0}}))


def _online_step(threshold: float):
    """An OnlinePseudoLabels step on a linear model over a fixed pool, with its loop's parts stubbed."""
    from types import SimpleNamespace

    from lamina.data.bundle import Split
    from lamina.training.losses import Objective
    from lamina.training.semi_supervised import OnlinePseudoLabels
    from lamina.training.steps import StepContext

    generator = torch.Generator().manual_seed(0)
    pool = Split(torch.randn(50, 4, generator=generator), torch.full((50,), -1))
    data = SimpleNamespace(splits={"unlabelled": pool}, transform=lambda x: x * 2, augment=None)
    options = SimpleNamespace(threshold=threshold, weight=0.5, unlabelled_ratio=2, strong_augment=[])
    objective = Objective(F.cross_entropy, lambda outputs: outputs.softmax(dim=1), 3)
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 4, generator=generator) * 3)
    step = OnlinePseudoLabels(options, data)
    step.strong_augment = lambda inputs, targets, generator: (inputs + 0.5, targets)
    context = StepContext(objective, data, seed=1, step=7)
    return (lambda model, inputs, targets: step(model, (inputs, targets), context)), model, objective, pool


def test_online_pseudo_labels_add_the_confident_strong_views_loss():
    step, model, objective, pool = _online_step(threshold=0.7)
    inputs, targets = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    loss, prediction, logged = step(model, inputs, targets)
    # the same draw by hand: 10 pool images (ratio 2 × batch 5), seeded by (seed, step)
    position = ((1 * 1_000_003 + 7) * 7919 + 17) % (2**63)
    weak = pool.inputs[torch.randint(50, (10,), generator=torch.Generator().manual_seed(position))] * 2
    confidence, pseudo = model(weak).softmax(dim=1).max(dim=1)
    keep = confidence >= 0.7
    assert 0 < int(keep.sum()) < 10  # some kept, some not: the test sees the mask
    unlabelled = F.cross_entropy(model(weak + 0.5)[keep], pseudo[keep]) * keep.float().mean()
    assert torch.allclose(loss, F.cross_entropy(model(inputs), targets) + 0.5 * unlabelled)
    assert torch.allclose(prediction, model(inputs)) and logged["pseudo_label_fraction"] == keep.float().mean()
    none_kept = _online_step(threshold=1.01)  # above any probability: nothing kept
    loss, _, logged = none_kept[0](none_kept[1], inputs, targets)
    assert torch.allclose(loss, F.cross_entropy(none_kept[1](inputs), targets)) and logged["unlabelled_loss"] == 0


def test_online_pseudo_labels_train_on_the_pool_and_reject_label_mixing(runs_dir):
    from lamina.config.loading import load_config

    config = tiny_config(epochs=8, batch_size=16)
    online = {"threshold": 0.5, "strong_augment": [{"name": "cutout", "size": 3}]}
    config["data"].update(labelled_fraction=0.3, pseudo_labels=online)
    first = train(config, runs_dir=runs_dir, progress="quiet")
    fractions = [row["train.pseudo_label_fraction"] for row in first.history]
    assert fractions[-1] > fractions[0] and fractions[-1] > 0.3  # the model grows confident on the pool

    resumed = _interrupted_at_step_30_and_resumed(config, runs_dir)
    weights, again = (load_file(run.dir / "model.safetensors") for run in (first, resumed))
    assert all(torch.equal(weights[name], again[name]) for name in weights)  # draws depend on (seed, step) only
    mixing = {**config, "data": {**config["data"], "augment": [{"name": "mixup"}]}}
    with pytest.raises(ConfigError, match="mixup mixes labels, which online pseudo-labelling cannot pair"):
        load_config(mixing)
    offline = {**config, "data": {**config["data"], "pseudo_labels": {**online, "teacher": "runs/x"}}}
    with pytest.raises(ConfigError, match="strong_augment is used by online pseudo-labelling only"):
        load_config(offline)
    empty = {**config, "data": {**config["data"], "pseudo_labels": {"teacher": []}}}
    with pytest.raises(ConfigError, match="teacher is an empty list; name one or more run folders"):
        load_config(empty)


def test_pseudo_labels_from_several_teachers_average_them_and_refuse_leaked_labels(runs_dir):
    from lamina.config.loading import load_config
    from lamina.core.errors import DataError
    from lamina.run import run_data

    config = tiny_config(epochs=15, batch_size=32)
    config["data"]["labelled_fraction"] = 0.2
    first = train(config, runs_dir=runs_dir, progress="quiet")
    # another seed on the same labelled subset (data.seed fixes it)
    second = train({**config, "seed": 4, "data": {**config["data"], "seed": 3}}, runs_dir=runs_dir, progress="quiet")
    pseudo = {"teacher": [str(first.dir), str(second.dir)], "threshold": 0.6}
    student = {**config, "data": {**config["data"], "pseudo_labels": pseudo}}
    data = run_data(load_config(student))
    pool = run_data(load_config(config)).splits["unlabelled"]
    mean = (
        sum(
            torch.tensor([list(row["probabilities"].values()) for row in run.predict(pool.inputs)])
            for run in (first, second)
        )
        / 2
    )
    chosen = mean.max(dim=1).values >= 0.6
    assert 0 < int(chosen.sum()) < len(pool) - 2  # the threshold keeps some and drops some
    assert torch.equal(data.splits["train"].targets[-int(chosen.sum()) :], mean.argmax(dim=1)[chosen])
    assert any(
        note.startswith(f"pseudo-labels: {int(chosen.sum())} of ") and "mean of 2 teachers" in note
        for note in data.notes
    )
    # a teacher that never finished would label from its last checkpoint: refused
    import json
    import shutil

    from lamina.core.errors import RunError

    killed = runs_dir / "killed-teacher"
    shutil.copytree(second.dir, killed)
    (killed / "summary.json").write_text(json.dumps({**second.summary, "status": "interrupted"}))
    unfinished = {**student, "data": {**student["data"], "pseudo_labels": {**pseudo, "teacher": [str(killed)]}}}
    with pytest.raises(
        RunError,
        match=r"is interrupted, not completed; a pseudo-labelling teacher needs finished runs\n.*lamina train --resume",
    ):
        run_data(load_config(unfinished))
    # a teacher whose own split seed differs was trained on labels of images in this student's pool
    leaking = {**student, "seed": 5}
    with pytest.raises(
        DataError, match=r"trained on another labelled subset of this data set: split seed 3 \(here 5\)"
    ):
        run_data(load_config(leaking))


def test_youden_threshold_matches_sklearns_roc_curve():
    from sklearn.metrics import roc_curve

    from lamina.tasks.decisions import rates_at, youden_threshold

    generator = torch.Generator().manual_seed(0)
    positives = torch.rand(200, generator=generator) < 0.3
    scores = (positives.float() * 0.8 + torch.rand(200, generator=generator)).clamp(0, 1)
    false_rate, true_rate, _ = roc_curve(positives.numpy(), scores.numpy())
    best = float((true_rate - false_rate).max())
    chosen = rates_at(scores, positives, youden_threshold(scores, positives))
    assert chosen["sensitivity"] + chosen["specificity"] - 1 == pytest.approx(best, abs=1e-9)


def test_two_class_runs_report_a_validation_threshold(runs_dir):
    config = {
        "seed": 1,
        "data": {"name": "breast_cancer"},
        "model": {"name": "mlp", "hidden_sizes": [16]},
        "train": {"epochs": 10},
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    threshold = run.summary["threshold"]
    assert threshold["positive_class"] == run.spec.class_names[1] and 0 < threshold["value"] < 1
    test = run.metrics["test"]
    assert test["sensitivity_at_threshold"] > 0.8 and test["specificity_at_threshold"] > 0.8


def test_resume_does_not_need_the_pretrained_source_any_more(tmp_path, runs_dir):
    import shutil

    from test_resume import InterruptAt

    source = train(tiny_config(epochs=1), runs_dir=tmp_path / "source", progress="quiet")
    copy = tmp_path / "pretrained"
    shutil.copytree(source.dir, copy)
    config = {**tiny_config(epochs=2), "model": {**tiny_config()["model"], "init_from": str(copy)}}
    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=runs_dir, progress="quiet", callbacks=[InterruptAt(25)])
    shutil.rmtree(copy)
    assert resume(caught.value.run_dir, progress="quiet").summary["status"] == "completed"


def test_semi_supervised_autoencoder_fine_tunes_the_whole_autoencoder_on_labels_and_unlabelled_images(runs_dir):
    autoencoder = {"name": "autoencoder", "channels": [8, 16], "latent_size": 12, "noise": "masking"}
    pretrain = tiny_config(epochs=2)
    pretrain["data"]["task"] = "reconstruction"
    pretrain["model"] = autoencoder
    pretrained = train(pretrain, runs_dir=runs_dir, progress="quiet")
    config = tiny_config(epochs=2)
    config["data"]["labelled_fraction"] = 0.3
    config["model"] = {
        **autoencoder,
        "classify_from": "code",
        "reconstruction_weight": 1.0,
        "init_from": str(pretrained.dir),
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    assert run.summary["init_from"]["fresh"] == ["code_activation.0", "head.0"]  # latent and decoder loaded
    first, last = (row["train.unlabelled_reconstruction"] for row in (run.history[0], run.history[-1]))
    assert last < first and run.metrics["test"]["accuracy"] > 0.5  # learns from both at once
    start, end = (load_file(path / "model.safetensors") for path in (pretrained.dir, run.dir))
    assert not torch.equal(start["decoder.0.weight"], end["decoder.0.weight"])  # the reconstruction trains it
    before = sorted(runs_dir.iterdir())
    del config["data"]["labelled_fraction"]
    with pytest.raises(ConfigError, match="is 1, but there are no unlabelled images to reconstruct"):
        train(config, runs_dir=runs_dir, progress="quiet")
    config["data"].update(labelled_fraction=0.3, pseudo_labels={"threshold": 0.5})
    with pytest.raises(ConfigError, match="cannot be combined with online pseudo-labels"):
        train(config, runs_dir=runs_dir, progress="quiet")
    pretrain["model"] = {**autoencoder, "reconstruction_weight": 1.0}
    with pytest.raises(ConfigError, match="the task is 'reconstruction'"):
        train(pretrain, runs_dir=runs_dir, progress="quiet")
    assert sorted(runs_dir.iterdir()) == before  # refused before a run folder was made


def test_semi_supervised_autoencoder_resumes_exactly(runs_dir):
    config = tiny_config(epochs=3, batch_size=16)
    config["data"]["labelled_fraction"] = 0.3
    config["model"] = {
        "name": "autoencoder",
        "channels": [8],
        "latent_size": 6,
        "noise": "masking",
        "reconstruction_weight": 1.0,
    }
    first = train(config, runs_dir=runs_dir, progress="quiet")
    resumed = _interrupted_at_step_30_and_resumed(config, runs_dir)
    weights, again = (load_file(run.dir / "model.safetensors") for run in (first, resumed))
    assert all(torch.equal(weights[name], again[name]) for name in weights)  # unlabelled draws and masks replay
    assert [row["train.unlabelled_reconstruction"] for row in first.history] == [
        row["train.unlabelled_reconstruction"] for row in resumed.history
    ]


def _interrupted_at_step_30_and_resumed(config: dict, runs_dir):
    """Train `config`, stop it after step 30 (mid-epoch 2 with 24 steps per epoch) as Ctrl-C does, resume it."""
    from test_resume import InterruptAt

    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=runs_dir, progress="quiet", callbacks=[InterruptAt(30)])
    return resume(caught.value.run_dir, progress="quiet")
