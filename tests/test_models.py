"""Every registered model: build → forward → backward → save → load → identical output."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from lamina.data.spec import DataSpec
from lamina.errors import ConfigError, ModelError
from lamina.models import build_model, models

# Specs a family may be asked to fit; each family must accept at least one.
SPECS = [
    DataSpec("image", "classification", (1, 28, 28), num_classes=10),
    DataSpec("image", "classification", (3, 32, 32), num_classes=4),
    DataSpec("tabular", "classification", (30,), num_classes=2),
    DataSpec("tabular", "regression", (8,), num_targets=3),
]


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
        inputs = torch.randn(4, *spec.input_shape)
        output = model(inputs)
        assert output.shape == (4, spec.output_size)
        output.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        model.eval()
        expected = model(inputs)
        save_model(model, str(tmp_path / "weights.safetensors"))
        torch.manual_seed(1)
        fresh = build_model(name, spec).eval()
        load_model(fresh, str(tmp_path / "weights.safetensors"))
        assert torch.equal(fresh(inputs), expected)
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
    model = build_model({"name": "mlp", "hidden_sizes": [5], "activation": activation, "norm": norm,
                         "init": "xavier_uniform"}, SPECS[2])  # fmt: skip
    kinds = [type(layer).__name__.lower() for layer in model.body]
    assert any(activation.replace("_", "") in kind for kind in kinds)
    assert ("batchnorm1d" in kinds) == (norm == "batch") and ("layernorm" in kinds) == (norm == "layer")


def test_models_are_usable_without_lamina_and_count_parameters():
    model = build_model({"name": "mlp", "hidden_sizes": [16]}, SPECS[2])
    assert sum(p.numel() for p in model.parameters()) == 30 * 16 + 16 + 16 * 2 + 2
    assert type(model).__module__ == "lamina.models.mlp" and type(model).__mro__[1] is nn.Module
