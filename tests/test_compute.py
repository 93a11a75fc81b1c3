"""FLOP counts against hand counts (MLP, convolution, attention, LSTM/GRU, mixture of experts, the baby GPT
against 6·N + attention), every family counted, and the energy meters on recorded counter readings."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from test_models import SPECS, sample_inputs
from torch import nn

from conftest import ROOT, shared_data
from lamina.artifacts import compute
from lamina.core.errors import ModelError
from lamina.models.attention import SelfAttention
from lamina.models.flops import counting, lstm_layer_flops
from lamina.models.mixture import MixtureOfExperts
from lamina.models.options import models
from lamina.models.output import split_output
from lamina.models.registry import build_model
from lamina.models.summary import forward_flops
from lamina.training import energy
from lamina.training.energy import counter_increase, energy_meter, estimated_joules, rapl_packages


def forward_and_backward(model: nn.Module, inputs, *extra) -> tuple[int, int]:
    """(forward FLOPs, forward + backward FLOPs) of `model` on `inputs`, in training mode."""
    model.train()
    with counting() as counter:
        output = model(inputs, *extra)
    forward = counter.get_total_flops()
    with counting() as counter:
        output = model(inputs, *extra)
        output = output[0] if isinstance(output, tuple) else output
        output.sum().backward()
    return forward, counter.get_total_flops()


def test_mlp_hand_count():
    # per sample: 2·in·out per linear layer; backward: the weights' gradients (2·in·out each) and the inputs'
    # gradients of every layer but the first (its inputs need none)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    forward, training = forward_and_backward(mlp, torch.randn(4, 5))
    assert forward == 4 * (2 * 5 * 7 + 2 * 7 * 3) == 448
    assert training - forward == 4 * (2 * 5 * 7 + 2 * 7 * 3) + 4 * 2 * 7 * 3 == 616
    assert forward_flops(mlp, torch.randn(4, 5)) == 448


def test_conv_layer_hand_count():
    # 2·Cin·Cout·k²·Hout·Wout per sample; a second layer's backward is twice its forward
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1))
    first, second = 2 * 3 * 8 * 9 * 10 * 10, 2 * 8 * 4 * 9 * 5 * 5
    forward, training = forward_and_backward(conv, torch.randn(2, 3, 10, 10))
    assert forward == 2 * (first + second)
    assert training == 2 * (first + second) + 2 * (first + 2 * second)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_block_hand_count(causal):
    # per sample: q, k, v projections 2·T·d·3d, output projection 2·T·d·d, scores q kᵀ 2·T²·d and the weighted sum
    # of v 2·T²·d (all heads together; a causal mask is not exploited). PyTorch's CPU kernel has no formula of its
    # own: lamina/models/flops.py adds it.
    batch, steps, width = 2, 10, 16
    attention = SelfAttention(width, heads=4, bias=False, dropout=0.0)
    projections = 2 * steps * width * 3 * width + 2 * steps * width * width
    mixing = 2 * steps * steps * width * 2
    forward, training = forward_and_backward(attention, torch.randn(batch, steps, width), causal)
    assert forward == batch * (projections + mixing)
    # backward: projections twice their forward, the inputs needing no gradient; attention 2.5 times its forward
    # (flash attention recomputes the scores: PyTorch's sdpa_backward_flop_count)
    assert training - forward == batch * (projections + 2 * steps * width * width + mixing * 5 // 2)


def test_lstm_and_gru_layers_hand_count():
    # per step and sample: 2·(I + H)·G·H with G gates: 4 for an LSTM (counted by lamina's formula for oneDNN's
    # fused layer, which PyTorch counts as 0), 3 for a GRU (PyTorch sees its matrix multiplies)
    inputs = torch.randn(2, 5, 8)
    lstm, gru = nn.LSTM(8, 16, batch_first=True), nn.GRU(8, 16, batch_first=True)
    assert lstm_layer_flops(steps=5, batch=2, inputs=8, gates=64) == 2 * 5 * 2 * (8 + 16) * 64
    forward, training = forward_and_backward(lstm, inputs)
    assert forward == 2 * 5 * 2 * (8 + 16) * 4 * 16
    assert training == 3 * forward  # gradients of the weights, and of the inputs and hidden states
    forward, training = forward_and_backward(gru, inputs)
    assert forward == 2 * 5 * 2 * (8 + 16) * 3 * 16
    # weights' gradients as many as forward; hidden states' gradients for every step but the first (h0 is zeros)
    assert training == 2 * forward + 2 * 4 * 2 * 16 * 3 * 16
    two_layers = nn.LSTM(8, 16, num_layers=2, batch_first=True)
    assert forward_flops(two_layers, inputs) == 2 * 5 * 2 * ((8 + 16) + (16 + 16)) * 64


def test_mixture_of_experts_counts_the_experts_tokens_are_routed_to():
    torch.manual_seed(0)
    tokens, width, hidden = 10, 8, 16
    for top_k in (1, 2):
        layer = MixtureOfExperts(width, hidden, experts=4, top_k=top_k, capacity_factor=None, bias=False)
        with counting() as counter:
            layer(torch.randn(tokens, width))
        # the router for every token, then each token through its top_k experts only (not all four)
        assert counter.get_total_flops() == 2 * tokens * width * 4 + tokens * top_k * (2 * width * hidden * 2)


@pytest.mark.parametrize("name", models.names())
def test_every_family_counts_forward_and_backward(name):
    for spec in SPECS:  # the first spec the family fits
        try:
            torch.manual_seed(0)
            model = build_model(name, spec)
        except ModelError:
            continue
        inputs = sample_inputs(spec)
        model.eval()
        with torch.no_grad(), counting() as counter:
            model(inputs)
        forward = counter.get_total_flops()
        model.train()
        with counting() as counter:
            prediction, auxiliary, _ = split_output(model(inputs))
            (prediction.sum() + sum(auxiliary.values(), torch.zeros(()))).backward()
        training = counter.get_total_flops()
        assert forward > 0, f"{name} on {spec.kind}: no FLOPs counted"
        # backward ≈ 2× forward (less: layers whose inputs need no gradient; more: attention recomputes scores)
        assert 2 * forward < training <= 3.5 * forward, (name, spec.kind, forward, training)
        return
    pytest.fail(f"model {name} fits none of the specs")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_recurrent_family_is_counted_with_padding(cell):
    spec = SPECS[4]  # padded text: the sequences are packed, so each stops at its length
    model = build_model({"name": "rnn", "cell": cell}, spec)
    assert forward_flops(model, sample_inputs(spec)) > 2 * 4 * 8 * model.recurrent.hidden_size


def test_baby_gpt_training_flops_per_token_match_6n_plus_attention():
    """Kaplan et al. 2020 (C ≈ 6·N per token) with attention as in PaLM's appendix B: per token and layer the
    scores q kᵀ and the weighted sum of v cost 2·T·d FLOPs each forward (T the context, d the width; a causal mask
    not exploited), 4·T·d, and the backward pass twice that, so training costs 6·N + 12·L·T·d per token.
    N is every parameter: the tied embedding is the output layer's matrix (2·d·V per token), the learned
    positions (T·d) and norms cost no matrix multiply — 1 % of N here, which the 5 % allows. The counter also
    counts flash attention's recomputed scores in the backward pass (2·L·T·d more)."""
    from lamina.config.loading import load_config
    from lamina.pipeline.prepare import prepare

    shared_data("tinyshakespeare")
    config = load_config(ROOT / "configs" / "shakespeare_char_gpt.yaml")
    session = prepare(config.model_copy(update={"data": config.data.model_copy(update={"path": str(
        ROOT.parent / "shared" / "datasets" / "tinyshakespeare" / "input.txt")})}))  # fmt: skip
    layers, width, context = config.model.layers, config.model.width, config.data.context
    parameters = sum(p.numel() for p in session.model.parameters())
    per_token = session.training_sample_flops / context  # a sample is one window of `context` tokens
    formula = 6 * parameters + 12 * layers * context * width
    assert abs(per_token / formula - 1) < 0.05, (per_token, formula)
    assert session.sample_flops * 2.9 < session.training_sample_flops < session.sample_flops * 3.1


# ---- energy ----------------------------------------------------------------------------------------------


def powercap(tmp_path: Path, packages: dict[str, tuple[int, int]]) -> Path:
    """A fake /sys/class/powercap: {name: (energy_uj, max_energy_range_uj)}, with a sub-domain under each."""
    for name, (value, maximum) in packages.items():
        for domain in (tmp_path / name, tmp_path / f"{name}:0"):
            domain.mkdir()
            (domain / "energy_uj").write_text(f"{value}\n")
            (domain / "max_energy_range_uj").write_text(f"{maximum}\n")
    return tmp_path


def test_counter_increase_across_a_wrap():
    assert counter_increase([10, 50, 90], maximum=100) == 80
    assert counter_increase([90, 99, 5, 40], maximum=100) == 9 + 6 + 35
    assert counter_increase([262_000_000_000, 1_000_000], maximum=262_143_328_850) == 143_328_850 + 1_000_000


def test_rapl_meter_reads_packages_only_and_survives_a_wrap(tmp_path):
    root = powercap(tmp_path, {"intel-rapl:0": (999_000_000, 1_000_000_000), "intel-rapl:1": (5_000_000, 10**12)})
    assert [path.name for path in rapl_packages(root)] == ["intel-rapl:0", "intel-rapl:1"]
    meter = energy_meter("auto", 3.5, True, [], root=root)
    assert (meter.label, meter.method) == ("measured", "rapl")
    # recorded readings (µJ): package 0 wraps past its 1000 J range; the sub-domains move too and must not count
    readings = [(999_500_000, 8_000_000), (2_000_000, 12_000_000), (4_000_000, 20_000_000)]
    for value0, value1 in readings:
        (root / "intel-rapl:0" / "energy_uj").write_text(str(value0))
        (root / "intel-rapl:1" / "energy_uj").write_text(str(value1))
        (root / "intel-rapl:0:0" / "energy_uj").write_text(str(value0 // 2))
        joules = meter.joules(force=True)
    package0 = (1_000_000_000 - 999_000_000 + 4_000_000) / 1e6  # 1 J up to the wrap, 4 J after it
    package1 = (20_000_000 - 5_000_000) / 1e6
    assert joules == pytest.approx(package0 + package1)


def test_rapl_readable_by_root_only_falls_back_to_the_estimate_with_the_reason(tmp_path, monkeypatch):
    root = powercap(tmp_path, {"intel-rapl:0": (0, 1000)})
    monkeypatch.setattr(energy.os, "access", lambda path, mode: False)
    meter = energy_meter("auto", 3.5, True, [], root=root)
    assert (meter.label, meter.method) == ("estimated", "cpu_estimate")
    assert meter.assumptions[0] == f"not measured: {root / 'intel-rapl:0' / 'energy_uj'} is readable by root only"


def test_nvml_meter_on_recorded_millijoules(monkeypatch):
    readings = {0: [1_000_000, 1_250_500, 1_400_000], 1: [7, 7, 7]}
    calls = {0: 0, 1: 0}

    def total_energy(handle):
        value = readings[handle][min(calls[handle], 2)]
        calls[handle] += 1
        return value

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetTotalEnergyConsumption=total_energy,
    )
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    meter = energy_meter("auto", 3.5, True, [0])
    assert (meter.label, meter.method) == ("measured", "nvml")
    meter.start()
    meter.joules(force=True)
    assert meter.joules(force=True) == pytest.approx((1_400_000 - 1_000_000) / 1e3)  # 400 J


def test_estimate_arithmetic_and_its_label_on_this_machine():
    assert estimated_joules(cpu_seconds=3600, watts_per_core=3.5) == 12600.0  # 3.5 Wh
    if rapl_packages():
        pytest.skip("this machine has RAPL counters")
    meter = energy_meter("auto", 3.5, True, [])
    assert (meter.label, meter.method) == ("estimated", "cpu_estimate")
    record = compute.energy_record(meter, joules=12600.0, grid_intensity=481.0, default_grid=True)
    assert record["kwh"] == pytest.approx(0.0035)
    assert record["co2e_grams"] == pytest.approx(0.0035 * 481)
    assert record["label"] == "estimated" and "3.5 W per core" in record["assumptions"][1]
    assert "Ember" in record["grid_source"]


def test_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
    measured = []
    monkeypatch.setattr(compute, "measure_peak_flops", lambda device: measured.append(device) or 7.5e10)
    cpu = torch.device("cpu")
    assert compute.peak_flops(cpu, 1, tmp_path) == 7.5e10
    assert compute.peak_flops(cpu, 1, tmp_path) == 7.5e10
    assert len(measured) == 1
    compute.peak_flops(cpu, 2, tmp_path)  # another thread count: measured again
    assert len(measured) == 2
    keys = list(json.loads((tmp_path / compute.PEAK_FILE).read_text()))
    assert keys[0].endswith(f"| 1 threads | torch {torch.__version__} | cpu")
