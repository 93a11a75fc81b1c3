"""Losses, optimizers and schedules as pure parts, without a trainer."""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

from lamina.config.loading import load_config
from lamina.core.errors import ConfigError
from lamina.data.spec import DataSpec
from lamina.models.registry import build_model
from lamina.training.losses import build_objective
from lamina.training.optimizers import OptimizerSet, build_optimizer, decayed_parameters
from lamina.training.options import losses
from lamina.training.schedules import factor, schedules

CLASSES = DataSpec("tabular", "classification", (6,), num_classes=3, class_names=["a", "b", "c"])
BINARY = DataSpec("tabular", "classification", (6,), num_classes=2)
REGRESSION = DataSpec("tabular", "regression", (6,), num_targets=1, target_mean=[10.0], target_std=[2.0])


def loss_config(name: str, **options):
    return losses.get(name).options(**options)


def test_cross_entropy_with_smoothing_and_balanced_weights_matches_torch():
    targets = torch.tensor([0, 0, 0, 1, 2, 2])
    outputs = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    objective = build_objective(
        loss_config("cross_entropy", label_smoothing=0.1, class_weights="balanced"), CLASSES, targets
    )
    weights = torch.tensor([6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2)])
    expected = nn.functional.cross_entropy(outputs, targets, weight=weights, label_smoothing=0.1)
    assert torch.allclose(objective.loss(outputs, targets), expected)
    assert torch.allclose(objective.scores(outputs).sum(1), torch.ones(6))


def test_class_weights_must_match_the_classes():
    with pytest.raises(ConfigError, match="has 2 weights but the data has 3 classes"):
        build_objective(loss_config("cross_entropy", class_weights=[1.0, 2.0]), CLASSES, torch.tensor([0, 1, 2]))


def test_binary_cross_entropy_uses_one_logit_and_gives_two_class_scores():
    objective = build_objective(loss_config("bce"), BINARY, torch.tensor([0, 1]))
    assert objective.output_size == 1
    outputs = torch.tensor([[0.0], [2.0]])
    assert torch.allclose(
        objective.scores(outputs)[1],
        torch.tensor([1 - torch.sigmoid(torch.tensor(2.0)), torch.sigmoid(torch.tensor(2.0))]),
    )
    expected = nn.functional.binary_cross_entropy_with_logits(outputs, torch.tensor([[0.0], [1.0]]))
    assert torch.allclose(objective.loss(outputs, torch.tensor([0, 1])), expected)


def test_regression_losses_learn_standardized_targets_and_score_in_target_units():
    objective = build_objective(loss_config("mse"), REGRESSION, torch.tensor([[10.0]]))
    outputs = torch.tensor([[1.0]])  # one standard deviation above the mean
    assert objective.scores(outputs).item() == pytest.approx(12.0)
    assert objective.loss(outputs, torch.tensor([[12.0]])).item() == pytest.approx(0.0)


def test_a_classification_loss_on_regression_data_is_a_config_error():
    with pytest.raises(ConfigError, match="loss 'cross_entropy' is for classification, but the data is a regression"):
        build_objective(loss_config("cross_entropy"), REGRESSION, torch.zeros(2, 1))


def test_weight_decay_skips_biases_and_norms():
    model = build_model({"name": "mlp", "hidden_sizes": [8], "norm": "layer"}, CLASSES)
    decayed = {id(p) for p in decayed_parameters(model)}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in decayed) == (parameter.ndim >= 2), name
    optimizer = build_optimizer(load_config({"data": "digits", "model": "mlp"}).train.optimizer, model)
    by_decay = {group["weight_decay"]: sum(p.numel() for p in group["params"]) for group in optimizer.param_groups}
    assert by_decay[0.0] == 8 + 8 + 8 + 3  # bias, norm weight, norm bias, head bias


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "muon"])
def test_every_optimizer_reduces_a_loss(name):
    torch.manual_seed(0)
    model = build_model({"name": "mlp", "hidden_sizes": [16]}, CLASSES)
    config = load_config(
        {"data": "digits", "model": "mlp", "train": {"optimizer": {"name": name, "learning_rate": 0.02}}}
    ).train.optimizer
    optimizer = build_optimizer(config, model)
    inputs, targets = torch.randn(64, 6), torch.randint(0, 3, (64,))
    first = None
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(inputs), targets)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.8 * first


def test_muon_takes_hidden_matrices_and_adamw_the_rest():
    model = build_model({"name": "mlp", "hidden_sizes": [16, 16]}, CLASSES)
    config = load_config({"data": "digits", "model": "mlp", "train": {"optimizer": "muon"}}).train.optimizer
    optimizer = build_optimizer(config, model)
    assert isinstance(optimizer, OptimizerSet)
    muon, adamw = optimizer.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert [p.shape for g in muon.param_groups for p in g["params"]] == [(16, 6), (16, 16)]


def schedule(name: str, **options):
    return schedules.get(name).options(**options)


def test_schedules_follow_their_formulas():
    assert factor(schedule("constant"), 50, 100, 10) == 1.0
    assert factor(schedule("step", every_epochs=2, gamma=0.5), 45, 100, 10) == 0.25
    milestones = schedule("step", milestones=[5, 8], gamma=0.5)  # 10 steps per epoch
    assert [factor(milestones, s, 100, 10) for s in (49, 50, 79, 80, 99)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert factor(schedule("cosine", min_factor=0.1), 50, 100, 10) == pytest.approx(0.55)
    assert factor(schedule("cosine", min_factor=0.1), 100, 100, 10) == pytest.approx(0.1)
    assert factor(schedule("linear", final_factor=0.0), 75, 100, 10) == pytest.approx(0.25)
    cycle = schedule("one_cycle", peak_fraction=0.25, start_factor=0.04, final_factor=1e-4)
    assert factor(cycle, 0, 100, 10) == pytest.approx(0.04)
    assert factor(cycle, 25, 100, 10) == pytest.approx(1.0)
    assert factor(cycle, 100, 100, 10) == pytest.approx(1e-4)


def test_warmup_ramps_linearly_then_hands_over():
    config = schedule("cosine", warmup_steps=9, min_factor=0.0)
    assert [factor(config, s, 109, 10) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(config, 59, 109, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


MAPPED_BYTES_OF_A_LARGE_TENSOR = """
import ctypes, sys, torch
from lamina.training.runtime import keep_freed_memory

class MallocInfo(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallocInfo
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
block = torch.empty(16 << 20)  # 64 MiB
print(kept, mallinfo2().hblkhd >> 20)
"""


LIBC, LIBC_VERSION = platform.libc_ver()


@pytest.mark.skipif(
    LIBC != "glibc" or tuple(map(int, LIBC_VERSION.split(".")[:2])) < (2, 33), reason="needs glibc ≥ 2.33 (mallinfo2)"
)
def test_kept_memory_serves_large_tensors_from_the_reusable_heap():
    def mapped(mode: str) -> tuple[str, int]:
        command = [sys.executable, "-c", MAPPED_BYTES_OF_A_LARGE_TENSOR, mode]
        kept, mebibytes = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        return kept, int(mebibytes)

    # by default glibc maps the 64 MiB block on its own and unmaps it on free (faulted in again next step)
    default, keep = mapped("default"), mapped("keep")
    assert default[0] == "False" and default[1] >= 64
    assert keep[0] == "True" and keep[1] < 64
