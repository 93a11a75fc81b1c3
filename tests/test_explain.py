"""Explanations (lamina/insight): the faithfulness math against references, each image and table method on small
trained runs, Grad-CAM's layer, the sanity check and deletion curve numbers a trained model reaches, a planted
decisive feature found by both importance measures, the CLI, the config's explain: step and the errors."""

from __future__ import annotations

import json

import numpy
import pytest
import torch
from scipy.stats import spearmanr

import lamina
from lamina.core.errors import ModelError, UsageError
from lamina.data.spec import DataSpec
from lamina.insight import faithfulness
from lamina.insight.explain import modality_for, randomized_copy
from lamina.insight.images import ImageModality, conv_stages, last_conv_stage
from lamina.insight.methods import ClassScores
from lamina.insight.modality import ExplainContext
from lamina.models.options import ResNetOptions
from lamina.models.resnet import ResNet
from tests.conftest import EXACT_RUNTIME, run_cli

pytest.importorskip("captum")

DIGITS = {
    "seed": 0,
    "data": {"name": "digits"},
    "model": {"name": "cnn", "blocks": [16, {"channels": 32, "pool": "none"}], "dropout": 0.1},
    "train": {"epochs": 8, "batch_size": 64, "optimizer": {"name": "adamw", "learning_rate": 0.01},
              "schedule": "one_cycle"},
    "runtime": dict(EXACT_RUNTIME),
}  # fmt: skip


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = lamina.train(DIGITS, runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")
    assert run.metrics["test"]["accuracy"] > 0.9
    return run


# ---- faithfulness: pure functions -------------------------------------------------------------------------


def test_rank_correlation_is_spearman_of_absolute_values_with_ties_averaged():
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(5, 40, generator=generator).round()  # many ties (and zeros)
    second = first + torch.randn(5, 40, generator=generator)
    ours = faithfulness.rank_correlation(first, second)
    expected = [spearmanr(a.abs().numpy(), b.abs().numpy()).statistic for a, b in zip(first, second, strict=True)]
    assert numpy.allclose(ours.numpy(), expected, atol=1e-6)
    mask = first.abs() > 0  # over a subset of the units only
    masked = faithfulness.rank_correlation(first, second, mask)
    expected = [spearmanr(a[m].abs(), b[m].abs()).statistic for a, b, m in zip(first, second, mask, strict=True)]
    assert numpy.allclose(masked.numpy(), expected, atol=1e-6)


def test_deletion_curve_and_area_against_hand_computed_values():
    inputs = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    remove = lambda x, mask: x.masked_fill(mask, 0.0)  # noqa: E731
    best = faithfulness.deletion_curve(inputs, torch.tensor([[0, 1, 2, 3]]), (4,), remove, lambda x: x.sum(1), 4)
    worst = faithfulness.deletion_curve(inputs, torch.tensor([[3, 2, 1, 0]]), (4,), remove, lambda x: x.sum(1), 4)
    assert best.tolist() == [[6.0, 3.0, 1.0, 0.0, 0.0]] and worst.tolist() == [[6.0, 6.0, 5.0, 3.0, 0.0]]
    # trapezoids of width 1/4: (6+3)/8 + (3+1)/8 + (1+0)/8 + 0 = 1.75; (6+6)/8 + (6+5)/8 + (5+3)/8 + 3/8 = 4.25
    assert faithfulness.curve_area(best).item() == pytest.approx(1.75)
    assert faithfulness.curve_area(worst).item() == pytest.approx(4.25)
    assert faithfulness.fraction_below(torch.tensor([1.75, 5.0]), torch.tensor([4.25, 4.25])) == 0.5
    order = faithfulness.random_order(3, 10, seed=7)
    assert torch.equal(order, faithfulness.random_order(3, 10, seed=7))
    assert sorted(order[0].tolist()) == list(range(10)) and not torch.equal(order[0], order[1])


# ---- images -----------------------------------------------------------------------------------------------


def _image_context(run, count: int = 6):
    bundle = lamina.run.run_data(run.config)
    stored = bundle.splits["test"].inputs[:count]
    model = run.model.eval()
    return ExplainContext(model, run.spec, stored, bundle.transform(stored), transform=bundle.transform), model


def test_each_image_method_gives_one_finite_score_per_pixel(digits_run):
    context, model = _image_context(digits_run)
    targets = torch.tensor([0, 1, 2, 3, 4, 5])
    for method in ImageModality.methods:
        scores = ImageModality().attribute(ClassScores(model, False), context.inputs, targets, method, context)
        assert scores.shape == (6, 8, 8), method
        assert torch.isfinite(scores).all() and scores.abs().sum() > 0, method
    assert context.extra["layer"] == "features"  # the CNN's last convolutional stage, before global pooling


def test_grad_cam_finds_the_last_stage_of_a_resnet_and_lists_stages_for_a_wrong_name(digits_run):
    spec = DataSpec(kind="image", task="classification", input_shape=(1, 16, 16), num_classes=3)
    resnet = ResNet(spec.input_shape, 3, ResNetOptions(preset="small")).eval()
    sample = torch.randn(1, 1, 16, 16)
    stages = [name for name in conv_stages(resnet, sample) if name.count(".") == 1]
    assert stages == ["backbone.0", "backbone.1", "backbone.2", "backbone.3"]
    assert last_conv_stage(resnet, sample) == "backbone.3"
    context, model = _image_context(digits_run, 2)
    context.layer = "features.99"
    with pytest.raises(ModelError) as caught:
        ImageModality().attribute(ClassScores(model, False), context.inputs, torch.tensor([0, 1]), "grad_cam", context)
    assert str(caught.value) == (
        "the model has no layer 'features.99'\n  hint: name one of its convolutional stages: features.0, features.4, "
        "features (default: the last)"
    )


def test_trained_digits_cnn_passes_the_sanity_check_and_beats_random_deletion(digits_run, tmp_path):
    record = digits_run.explain(count=32, output=tmp_path / "ig").record
    sanity, deletion = record["sanity_check"], record["deletion"]
    assert record["method"] == "integrated_gradients"
    assert sanity["self_rank_correlation"] > 0.85
    assert sanity["randomized_rank_correlation"] < sanity["self_rank_correlation"] - 0.4
    assert deletion["fraction_below_random"] >= 0.9 and deletion["auc"] < deletion["random_auc"] / 2
    assert len(record["inputs"]) == 32 and record["files"] == ["images-1.png", "images-2.png", "images-3.png",
                                                                 "images-4.png"]  # fmt: skip
    cam = digits_run.explain(count=16, method="grad_cam", output=tmp_path / "cam").record["sanity_check"]
    assert cam["randomized_rank_correlation"] < cam["self_rank_correlation"] - 0.5


def test_randomized_copy_reinitializes_every_layer_and_leaves_the_model_alone(digits_run):
    model = digits_run.model
    before = {name: value.clone() for name, value in model.state_dict().items()}
    random_state = torch.get_rng_state()
    copied = randomized_copy(model, seed=0)
    assert torch.equal(torch.get_rng_state(), random_state)  # the caller's random stream is untouched
    for name, value in copied.state_dict().items():
        if value.is_floating_point() and value.numel() > 1 and "running_var" not in name:
            assert not torch.equal(value, before[name]), name
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert torch.equal(randomized_copy(model, seed=0).features[0].weight, copied.features[0].weight)


# ---- tables -----------------------------------------------------------------------------------------------


def test_a_planted_decisive_feature_ranks_first_by_attribution_and_by_permutation(tmp_path):
    generator = numpy.random.default_rng(0)
    features = generator.normal(size=(600, 6)).astype(numpy.float32)
    labels = (features[:, 3] > 0).astype(numpy.int64)  # only feature 3 decides the class
    config = {"seed": 0, "model": {"name": "mlp", "hidden_sizes": [16]}, "runtime": dict(EXACT_RUNTIME),
              "train": {"epochs": 15, "batch_size": 32, "optimizer": {"name": "adam", "learning_rate": 0.01}}}  # fmt: skip
    run = lamina.train(config, data=(features, labels), runs_dir=tmp_path, progress="quiet")
    assert run.metrics["test"]["accuracy"] > 0.95
    result = run.explain(count=32, output=tmp_path / "explained")
    importance = result.record["summary"]["importance"]
    for measure in ("mean_abs_attribution", "permutation_importance"):
        values = importance[measure]
        assert max(range(6), key=values.__getitem__) == 3, measure
        assert values[3] > 3 * max(values[:3] + values[4:]), measure
    assert importance["permutation_importance"][3] > 0.3  # shuffling it costs about half the accuracy
    assert sorted(path.name for path in result.files) == ["explanation.json", "importance.png", "rows-1.png",
                                                          "rows-2.png", "rows-3.png", "rows-4.png"]  # fmt: skip
    assert "feature importance" in result.shown and "feature 3" in result.shown.splitlines()[-6]
    assert result.record["deletion"]["fraction_below_random"] >= 0.9


# ---- the command, the config section, the errors ------------------------------------------------------------


def test_cli_explain_writes_pictures_and_json_and_prints_the_checks(digits_run, tmp_path):
    done = run_cli("explain", str(digits_run.dir), "--count", "3", "--method", "saliency", "--target", "7")
    assert done.returncode == 0, done.stderr
    folder = digits_run.dir / "explanations" / "saliency-test"
    record = json.loads((folder / "explanation.json").read_text())
    assert (folder / "images-1.png").stat().st_size > 1000
    assert [entry["target"] for entry in record["inputs"]] == ["7", "7", "7"]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("saliency on 3 image inputs; baseline: a black image")
    assert "; explaining 7" in lines[1]
    assert any(line.startswith("sanity check: rank correlation with a randomized model") for line in lines)
    assert lines[-1].endswith(str(folder))
    wrong = run_cli("explain", str(digits_run.dir), "--method", "lime")
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        "error: unknown explanation method 'lime' for image inputs",
        "  hint: methods: integrated_gradients, grad_cam, saliency, occlusion (default: integrated_gradients)",
    ]


def test_explain_section_puts_the_figures_in_the_summary(tmp_path):
    config = {**DIGITS, "train": {**DIGITS["train"], "epochs": 2}, "explain": {"enabled": True, "count": 4}}
    run = lamina.train(config, runs_dir=tmp_path, progress="quiet")
    figures = run.summary["explain"]
    assert figures["method"] == "integrated_gradients" and figures["folder"] == "explanations/integrated_gradients-test"
    assert set(figures["sanity_check"]) >= {"randomized_rank_correlation", "self_rank_correlation"}
    assert 0 <= figures["deletion"]["fraction_below_random"] <= 1 and "inputs" not in figures
    assert (run.dir / figures["folder"] / "explanation.json").is_file()


def test_what_cannot_be_explained_is_refused_with_the_reason():
    with pytest.raises(ModelError, match="explanations of reconstruction runs are not available"):
        modality_for(DataSpec(kind="image", task="reconstruction", input_shape=(1, 8, 8)))
    with pytest.raises(ModelError, match="explanations for sequence inputs are not available"):
        modality_for(DataSpec(kind="sequence", task="regression", input_shape=(12, 1), num_targets=1))


def test_unknown_target_names_the_classes(digits_run, tmp_path):
    with pytest.raises(UsageError) as caught:
        digits_run.explain(count=2, target="eleven", output=tmp_path)
    assert str(caught.value) == (
        "unknown target 'eleven': this run has 10 classes\n  hint: use 'predicted', a name (0, 1, 2, 3, 4, 5, 6, 7, "
        "8, 9) or an index from 0 to 9"
    )


def test_without_captum_the_error_and_the_config_name_the_install_command(digits_run, tmp_path, monkeypatch):
    import sys

    from lamina.config.loading import load_config
    from lamina.core.errors import ConfigError
    from lamina.core.packages import install_command
    from lamina.pipeline.prepare import prepare

    monkeypatch.setitem(sys.modules, "captum", None)  # as if not installed: find_spec finds None
    with pytest.raises(ModelError) as caught:
        digits_run.explain(count=2, output=tmp_path)
    # the requirement lamina declares ('captum>=0.7' once installed; 'captum' from a tree without metadata)
    command = install_command("captum")
    assert str(caught.value) == (
        f"explanations need the package 'captum', which is not installed\n  hint: install it: {command}"
    )
    assert " -m pip install " in command and "captum" in command
    with pytest.raises(ConfigError) as caught:
        prepare(load_config({**DIGITS, "explain": {"enabled": True}}))
    assert str(caught.value).startswith(
        "config problem: explain: explaining needs the package 'captum', which is not installed; install it: "
    )


def test_explain_help_names_every_modality_s_methods_with_its_default_first():
    from lamina.cli.main import build_parser
    from lamina.insight.explain import MODALITIES, modality_class

    explain = build_parser()._subparsers._group_actions[0].choices["explain"]
    epilog = " ".join(explain.epilog.split())
    for key in MODALITIES:
        methods = modality_class(key).methods
        listed = f"{methods[0]} (default), {', '.join(methods[1:])}"
        assert listed in epilog, (key, listed)
