"""ResNets and autoencoders against references: parameter counts, block arithmetic, the VAE's KL, generation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.registry import build_model

CIFAR = DataSpec("image", "classification", (3, 32, 32), num_classes=10)
IMAGENET = DataSpec("image", "classification", (3, 224, 224), num_classes=1000)


@pytest.mark.parametrize(
    ("preset", "parameters"), [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032)]
)
def test_presets_have_torchvisions_parameter_counts(preset, parameters):
    model = build_model({"name": "resnet", "preset": preset}, IMAGENET)  # large stem: 7×7 stride 2 + max pool
    assert sum(p.numel() for p in model.parameters()) == parameters  # torchvision.models.resnet18/34/50


def test_basic_block_computes_relu_of_shortcut_plus_branch():
    from lamina.models.resnet import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(4, 8, stride=2, preactivation=False).eval()
    for norm in (block.bn1, block.bn2, block.shortcut[1]):
        norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2), norm.weight.data.uniform_(0.5, 2)
    x = torch.randn(2, 4, 9, 9)

    def bn(norm, value):
        return F.batch_norm(value, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps)

    branch = bn(
        block.bn2,
        F.conv2d(
            F.relu(bn(block.bn1, F.conv2d(x, block.conv1.weight, stride=2, padding=1))), block.conv2.weight, padding=1
        ),
    )
    shortcut = bn(block.shortcut[1], F.conv2d(x, block.shortcut[0].weight, stride=2))
    assert torch.allclose(block(x), F.relu(shortcut + branch), atol=1e-5)


def test_resnet9_shape_preactivation_and_flip_averaging():
    model = build_model({"name": "resnet", "preset": "resnet9", "width": 0.5}, CIFAR)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 64, 128, 256, 256, 256]
    names = model.state_dict().keys()  # the names runs saved by earlier versions use: they must still load
    assert {"backbone.1.0.0.weight", "backbone.1.2.conv1.weight", "backbone.3.2.bn2.running_var"} <= names
    flip = build_model({"name": "resnet", "preset": "small", "test_time_flip": True}, CIFAR).eval()
    x = torch.randn(3, 3, 32, 32)
    plain = flip.head(flip.backbone(x))
    assert torch.allclose(flip(x), (plain + flip.head(flip.backbone(x.flip(3)))) / 2, atol=1e-5)
    pre = build_model({"name": "resnet", "preset": "resnet18", "preactivation": True}, CIFAR)
    assert pre(x).shape == (3, 10)


def test_too_many_strided_stages_for_small_images_is_a_model_error():
    stages = [{"channels": 8, "stride": 2, "transition": "conv_pool"}] * 5
    with pytest.raises(ModelError, match=r"model.stages\[3\] shrinks the 8×8 input to nothing"):
        build_model(
            {"name": "resnet", "preset": "none", "stages": stages, "stem": "small"},
            DataSpec("image", "classification", (1, 8, 8), num_classes=10),
        )


def test_a_norm_group_size_that_does_not_divide_the_batch_is_a_config_error(tmp_path):
    import yaml

    from conftest import run_cli

    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": "digits",
                "train": {"epochs": 1, "batch_size": 64},
                "model": {"name": "resnet", "preset": "small", "norm_group_size": 24},
            }
        )
    )
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and not (tmp_path / "runs").exists()
    assert (
        "model.norm_group_size: is 24, which does not divide train.batch_size 64, so no batch would be split "
        "into groups; use a divisor of 64 such as 16, or make train.batch_size a multiple of 24"
    ) in result.stderr


def test_vae_kl_matches_torch_distributions():
    spec = DataSpec("image", "reconstruction", (1, 28, 28), output_size=784)
    torch.manual_seed(0)
    model = build_model({"name": "autoencoder", "variational": True, "latent_size": 5}, spec).eval()
    x = torch.randn(6, 1, 28, 28)
    output = model(x)
    mean, log_variance = model.encode(x)
    posterior = torch.distributions.Normal(mean, (0.5 * log_variance).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(dim=1).mean()
    assert torch.allclose(output.auxiliary_losses["kl"], expected, atol=1e-5)
    assert torch.equal(output.prediction, model.decode(mean))  # evaluation decodes the mean code


def test_pixel_losses_match_torch_formulas():
    from lamina.training.reconstruction import pixel_bce, pixel_mse

    spec = DataSpec("image", "reconstruction", (1, 4, 4), output_size=16)
    logits, images = torch.randn(3, 1, 4, 4), torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    target = images.float() / 255
    bce = F.binary_cross_entropy(logits.sigmoid(), target, reduction="sum") / 3
    assert torch.allclose(pixel_bce(None, spec, None).loss(logits, images), bce, atol=1e-4)
    mse = F.mse_loss(logits.sigmoid(), target, reduction="sum") / 3
    assert torch.allclose(pixel_mse(None, spec, None).loss(logits, images), mse, atol=1e-5)


def test_denoising_noise_acts_only_in_training():
    from lamina.models.autoencoder import corrupt

    spec = DataSpec("image", "reconstruction", (1, 8, 8), output_size=64)
    model = build_model(
        {"name": "autoencoder", "kind": "dense", "hidden_sizes": [16], "noise": "masking", "noise_level": 0.5}, spec
    )
    x = torch.randn(4, 1, 8, 8)
    assert (corrupt(x, model.config) == 0).float().mean() > 0.3
    patches = corrupt(torch.ones(64, 1, 8, 8), model.config.model_copy(update={"noise": "patches", "patch_size": 4}))
    blocks = patches.unfold(2, 4, 4).unfold(3, 4, 4).reshape(64, 4, 16)  # (B, 4 patches, 16 pixels each)
    assert ((blocks == 0).all(-1) | (blocks == 1).all(-1)).all()  # whole 4 × 4 patches masked, none in part
    assert 0.35 < (blocks[..., 0] == 0).float().mean() < 0.65
    model.eval()
    assert torch.equal(model(x).prediction, model(x).prediction)


def test_vae_on_digits_learns_generates_and_scores_anomalies(tmp_path):
    import json
    from pathlib import Path

    from lamina.pipeline import train

    config = {
        "seed": 1,
        "data": {"name": "digits", "task": "reconstruction"},
        "model": {"name": "autoencoder", "variational": True, "kind": "dense", "hidden_sizes": [128], "latent_size": 8},
        "train": {"epochs": 8, "batch_size": 64, "optimizer": {"name": "adamw", "learning_rate": 0.003}},
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=tmp_path, progress="quiet")
    history = run.history
    assert history[-1]["val.loss"] < 0.8 * history[0]["val.loss"] and "train.kl" in history[0]
    test = run.metrics["test"]
    assert test["pixel_mse"] < 0.06 and test["kl"] > 0  # the mean image scores ≈ 0.09 on these digits
    result = run_cli("generate", str(run.dir), "--samples", "9", "--seed", "3")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    from PIL import Image

    assert path.is_file() and Image.open(path).size == (3 * (3 * 10 + 2), 3 * (3 * 10 + 2))
    assert json.loads((run.dir / "summary.json").read_text())["status"] == "completed"
    scored = run.predict(run_data_images(run)[:3])
    assert [sorted(row) for row in scored] == [["anomaly_score", "code", "input"]] * 3
    assert len(scored[0]["code"]) == 8 and 0 < scored[0]["anomaly_score"] < 0.1
    plain = run_cli("generate", str(run.dir), "--samples", "0")
    assert plain.returncode == 2 and "--samples" in plain.stderr


def run_data_images(run) -> torch.Tensor:
    from lamina.data.build import build_data

    return build_data(run.config.data, run.config.seed).splits["test"].inputs


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_ghost_batch_norm_normalizes_each_group_alone(layout):
    from lamina.models.normalization import GhostBatchNorm

    torch.manual_seed(0)
    norm = GhostBatchNorm(6, group_size=8)
    norm.weight.data.uniform_(0.5, 2), norm.bias.data.normal_()
    x = (torch.randn(32, 6, 5, 5) * 3 + 1).contiguous(memory_format=layout).requires_grad_()
    out = norm(x)
    reference_input = x.detach().clone().requires_grad_()
    reference = torch.cat(
        [F.batch_norm(chunk, None, None, norm.weight, norm.bias, training=True) for chunk in reference_input.split(8)]
    )
    assert torch.allclose(out, reference, atol=1e-5) and out.is_contiguous(memory_format=layout)
    gradient = torch.randn_like(out)
    (out * gradient).sum().backward(), (reference * gradient).sum().backward()
    assert torch.allclose(x.grad, reference_input.grad, atol=1e-4)
    group_means = x.detach().reshape(4, 8, 6, 25).mean(dim=(1, 3)).mean(dim=0)
    assert torch.allclose(norm.running_mean, 0.1 * group_means, atol=1e-6)  # one momentum step from zero
    norm.eval()  # evaluation: the running statistics, exactly as BatchNorm2d
    assert torch.allclose(norm(x), F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias))


def test_patch_whitening_decorrelates_patches_and_keeps_its_first_fit():
    from lamina.models.normalization import PatchWhitening

    torch.manual_seed(0)
    whitening = PatchWhitening(3).train()
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [0.5, 0.5, 0.2]])  # strongly correlated channels
    images = torch.einsum("dc,bchw->bdhw", mixing, torch.randn(64, 3, 12, 12)) + 2
    out = whitening(images)  # (64, 27, 12, 12)
    patches = out[:, :, 1:-1, 1:-1].permute(0, 2, 3, 1).reshape(-1, 27)
    covariance = torch.cov(patches.T)
    inputs = images.unfold(2, 3, 1).unfold(3, 3, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 27)
    eigenvalues = torch.linalg.eigvalsh(torch.cov(inputs.T).double()).flip(0).float()
    assert torch.allclose(covariance.diag(), eigenvalues / (eigenvalues + 1e-2), atol=2e-3)  # λ/(λ + ε)
    assert (covariance - torch.diag(covariance.diag())).abs().max() < 1e-3
    fitted = whitening.weight.clone()
    whitening(torch.rand(8, 3, 12, 12))  # a later batch changes nothing: the layer is fixed after its fit
    assert torch.equal(whitening.weight, fitted) and bool(whitening.state_dict()["ready"])


def test_fast_resnet9_options_freeze_scales_pool_first_and_scale_bias_rates():
    from lamina.models.normalization import GhostBatchNorm, PatchWhitening
    from lamina.training.optimizers import build_optimizer
    from lamina.training.options import optimizers
    from lamina.training.transfer import Freezing

    model = build_model(
        {
            "name": "resnet",
            "preset": "resnet9",
            "width": 0.5,
            "stem": "whitened",
            "activation": "celu",
            "norm_group_size": 32,
            "train_norm_scales": False,
            "pool_before_norm": True,
        },
        CIFAR,
    )
    assert isinstance(model.backbone[0], PatchWhitening)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(isinstance(m, GhostBatchNorm) for m in norms)
    assert all(not m.weight.requires_grad and bool((m.weight == 1).all()) for m in norms)  # fixed at 1, not 0
    transition = model.backbone[2][0]  # the first conv_pool transition: conv → pool → BN → CELU
    assert [type(m).__name__ for m in transition] == ["Conv2d", "MaxPool2d", "GhostBatchNorm", "CELU"]
    assert model.train()(torch.randn(64, 3, 32, 32)).shape == (64, 10)
    Freezing(["head"], {"head": 1}).fit_start(type("L", (), {"model": model, "state": type("S", (), {"epoch": 1})}))
    assert not any(m.weight.requires_grad for m in norms)  # unfreezing never trains what the model fixes
    options = optimizers.get("sgd").options(learning_rate=0.5, weight_decay=5e-4, bias_learning_rate_factor=64)
    groups = build_optimizer(options, model).param_groups
    assert {group["weight_decay"]: group["base_lr"] for group in groups} == {5e-4: 0.5, 0.0: 32.0}


def test_fast_resnet_recipe_learns_digits_and_resumes_its_whitening(tmp_path):
    from lamina.pipeline import train
    from lamina.run import load_run

    config = {
        "seed": 0,
        "data": "digits",
        "model": {
            "name": "resnet",
            "preset": "small",
            "stem": "whitened",
            "activation": "celu",
            "norm_group_size": 16,
            "train_norm_scales": False,
            "pool_before_norm": True,
        },
        "train": {
            "epochs": 4,
            "batch_size": 64,
            "optimizer": {"name": "sgd", "learning_rate": 0.2, "weight_decay": 5e-4, "bias_learning_rate_factor": 8},
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=tmp_path, progress="quiet")
    assert run.metrics["test"]["accuracy"] >= 0.95
    loaded = load_run(run.dir)  # the fitted whitening filters travel with the weights
    assert torch.equal(loaded.model.backbone[0].weight, run.model.backbone[0].weight.cpu())
    assert bool(loaded.model.backbone[0].ready) and run.model.backbone[0].weight.abs().sum() > 0


def test_airbench_preset_is_jordans_network():
    from lamina.models.normalization import PatchWhitening
    from lamina.models.resnet import PlainBlock

    torch.manual_seed(0)
    model = build_model({"name": "resnet", "preset": "airbench"}, CIFAR)
    whitening = model.backbone[0]
    assert isinstance(whitening, PatchWhitening) and whitening.outputs == 24  # 3·2·2 filters and their negatives
    assert [name for name, p in model.named_parameters() if p.requires_grad and "backbone.0." in name] == [
        "backbone.0.bias"
    ]  # the filters are fixed, the bias trains
    model.train()(torch.rand(64, 3, 32, 32))  # fits the whitening on this batch
    out = whitening(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 24, 31, 31)  # a 2×2 patch, no padding
    assert torch.allclose(out[:, 12:], -out[:, :12]) and out[:, :12].abs().sum() > 0  # ± filters, bias still 0
    blocks = [m for m in model.modules() if isinstance(m, PlainBlock)]
    assert len(blocks) == 3 and [type(m).__name__ for m in blocks[0].layers] == ["Conv2d", "BatchNorm2d", "GELU"]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (24, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 128),
        (128, 128),
    ]
    for conv in convs:  # output i of every convolution starts as input i (dirac), the rest stays random
        identity = torch.zeros_like(conv.weight[: conv.in_channels])
        identity[range(conv.in_channels), range(conv.in_channels), 1, 1] = 1
        assert torch.equal(conv.weight[: conv.in_channels], identity)
        if conv.out_channels > conv.in_channels:
            assert conv.weight[conv.in_channels :].abs().sum() > 0
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.momentum == 0.4 and not m.weight.requires_grad for m in norms)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 568_738


def test_test_time_shift_averages_the_image_and_its_shifted_copies():
    torch.manual_seed(0)
    options = {"name": "resnet", "preset": "small", "channels_last": False}
    plain = build_model(options, CIFAR).eval()
    shifted = build_model({**options, "test_time_shift": 2}, CIFAR).eval()
    shifted.load_state_dict(plain.state_dict())
    images = torch.randn(3, 3, 32, 32)
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")  # (3, 3, 36, 36)
    expected = plain(images) / 2 + (plain(padded[:, :, :32, :32]) + plain(padded[:, :, 4:, 4:])) / 4
    assert torch.allclose(shifted(images), expected, atol=1e-6)
    assert not torch.allclose(shifted(images), plain(images), atol=1e-3)
    with pytest.raises(ModelError, match="test_time_shift 32 is not smaller than the 32×32 images"):
        build_model({**options, "test_time_shift": 32}, CIFAR)


def test_airbench_blocks_learn_digits(tmp_path):
    from lamina.pipeline import train

    config = {
        "seed": 0,
        "data": "digits",
        "model": {
            "name": "resnet",
            "preset": "airbench",
            "test_time_flip": False,
            "test_time_shift": 1,
            "stages": [
                {"channels": 32, "stride": 2, "transition": "conv_pool"},
                {"channels": 64, "stride": 2, "transition": "conv_pool"},
            ],
        },
        "train": {
            "epochs": 4,
            "batch_size": 64,
            "optimizer": {
                "name": "sgd",
                "learning_rate": 0.1,
                "momentum": 0.85,
                "nesterov": True,
                "weight_decay": 0.00133,
                "bias_learning_rate_factor": 16,
            },
            "loss": {"name": "cross_entropy", "label_smoothing": 0.2},
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=tmp_path, progress="quiet")
    assert run.metrics["test"]["accuracy"] >= 0.95


def test_reconstructing_unlabelled_images_leaves_the_classifiers_batch_norm_statistics():
    spec = DataSpec("image", "classification", (1, 8, 8), output_size=3)
    model = build_model(
        {
            "name": "autoencoder",
            "channels": [4],
            "latent_size": 5,
            "reconstruction_weight": 1.0,
            "noise": "masking",
            "classify_from": "code",
        },
        spec,
    )
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    before = {name: value.clone() for name, value in model.encoder.state_dict().items()}
    loss = model.reconstruction_loss(images.float() / 255, images)
    loss.backward()
    after = model.encoder.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before if "running" in name)
    assert model.encoder[0].weight.grad.abs().sum() > 0 and model.encoder[1].momentum == 0.1
    model(images.float() / 255)  # the classifier's own batches do move them
    assert not torch.equal(before["1.running_mean"], model.encoder.state_dict()["1.running_mean"])
