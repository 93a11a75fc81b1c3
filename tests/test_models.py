"""Every registered model: build → forward → backward → save → load → identical output."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from lamina.core.errors import ConfigError, ModelError
from lamina.data.spec import DataSpec
from lamina.models.options import models
from lamina.models.output import split_output
from lamina.models.registry import build_model

# Specs a family may be asked to fit; each family must accept at least one.
SPECS = [
    DataSpec("image", "classification", (1, 28, 28), num_classes=10),
    DataSpec("image", "classification", (3, 32, 32), num_classes=4),
    DataSpec("tabular", "classification", (30,), num_classes=2),
    DataSpec("tabular", "regression", (8,), num_targets=3),
    # sequences: padded text, a language model, a time series, spectrograms, image → digit string (CTC)
    DataSpec("text", "classification", (12,), num_classes=3, extra={"vocab_size": 20, "pad_id": 0}),
    DataSpec(
        "text", "language_modeling", (16,), num_classes=20, output_size=20, extra={"vocab_size": 20, "pad_id": None}
    ),
    DataSpec("sequence", "regression", (24, 2), num_targets=6),
    DataSpec("audio", "classification", (1, 16, 20), num_classes=10),
    DataSpec("image", "transcription", (1, 28, 56), num_classes=10, output_size=11),
]


def sample_inputs(spec: DataSpec) -> torch.Tensor:
    if spec.kind == "text":  # token ids; the classification batch is padded on the right
        tokens = torch.randint(1, spec.extra["vocab_size"], (4, *spec.input_shape))
        if spec.extra["pad_id"] is not None:
            tokens[1, 5:] = tokens[3, 9:] = spec.extra["pad_id"]
        return tokens
    return torch.randn(4, *spec.input_shape)


def prediction_of(output) -> torch.Tensor:
    return split_output(output)[0]


@pytest.mark.parametrize("name", models.names())
def test_every_registered_model_trains_saves_and_reloads(name, tmp_path):
    fitted = 0
    for spec in SPECS:
        try:
            torch.manual_seed(0)
            model = build_model(name, spec)
        except ModelError:
            continue
        fitted += 1
        assert isinstance(model, nn.Module)
        inputs = sample_inputs(spec)
        prediction, auxiliary, _ = split_output(model(inputs))
        per_step = spec.task in ("language_modeling", "transcription")
        assert prediction.shape[0] == 4 and prediction.shape[-1] == spec.output_size
        assert prediction.ndim == (3 if per_step else 2)
        (prediction.sum() + sum(auxiliary.values(), torch.zeros(()))).backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        model.eval()
        expected = prediction_of(model(inputs))
        save_model(model, str(tmp_path / "weights.safetensors"))
        torch.manual_seed(1)
        fresh = build_model(name, spec).eval()
        load_model(fresh, str(tmp_path / "weights.safetensors"))
        assert torch.equal(prediction_of(fresh(inputs)), expected)
    assert fitted, f"model {name} fits none of the test specs"


def test_cnn_on_tabular_data_is_a_clear_model_error():
    with pytest.raises(ModelError) as caught:
        build_model("cnn", SPECS[2])
    assert str(caught.value) == (
        "model 'cnn' needs images (channels, height, width), but the data gives tabular inputs of shape (30)\n"
        "  hint: use model.name: mlp for tabular data, or an image data set (digits, mnist)"
    )


def test_cnn_that_pools_small_images_away_is_a_clear_model_error():
    with pytest.raises(ModelError, match=r"model.blocks\[3\] shrinks the 8×8 input to nothing"):
        build_model({"name": "cnn", "blocks": [8, 8, 8, 8]}, DataSpec("image", "classification", (1, 8, 8), 10))


def test_build_model_validates_options():
    with pytest.raises(ConfigError, match="model.hidden_size: unknown option of model 'mlp'"):
        build_model("mlp", SPECS[2], hidden_size=[3])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "silu"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_mlp_activations_and_norms(activation, norm):
    model = build_model(
        {"name": "mlp", "hidden_sizes": [5], "activation": activation, "norm": norm, "init": "xavier_uniform"}, SPECS[2]
    )
    kinds = [type(layer).__name__.lower() for layer in model.body]
    assert any(activation.replace("_", "") in kind for kind in kinds)
    assert ("batchnorm1d" in kinds) == (norm == "batch") and ("layernorm" in kinds) == (norm == "layer")


def test_models_are_usable_without_lamina_and_count_parameters():
    model = build_model({"name": "mlp", "hidden_sizes": [16]}, SPECS[2])
    assert sum(p.numel() for p in model.parameters()) == 30 * 16 + 16 + 16 * 2 + 2
    assert type(model).__module__ == "lamina.models.mlp" and type(model).__mro__[1] is nn.Module
