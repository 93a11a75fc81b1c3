"""Augmentations: each equals a per-sample oracle, is reproducible from the generator, and trains."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lamina.config.loading import load_config
from lamina.core.errors import ConfigError
from lamina.data.build import build_data


def augmenter(*steps, section: dict | None = None):
    data = build_data(
        load_config({"data": {"name": "digits", "augment": list(steps), **(section or {})}, "model": "mlp"}).data
    )
    inputs = data.transform(data.splits["train"].inputs[:32])
    return data, inputs, data.splits["train"].targets[:32]


def run(data, inputs, targets, seed=0):
    return data.augment(inputs, targets, torch.Generator().manual_seed(seed))


def test_random_crop_is_a_per_sample_shift_of_the_padded_image():
    data, inputs, targets = augmenter({"name": "random_crop", "padding": 2, "mode": "zeros"})
    out, same = run(data, inputs, targets)
    padded = F.pad(inputs, (2, 2, 2, 2))
    for image, original in zip(out, padded, strict=True):  # oracle: some window of the padded image
        windows = [original[:, y : y + 8, x : x + 8] for y in range(5) for x in range(5)]
        assert any(torch.equal(image, window) for window in windows)
    assert same is targets
    assert torch.equal(out, run(data, inputs, targets)[0])  # same generator seed, same batch
    assert not torch.equal(out, run(data, inputs, targets, seed=1)[0])


def test_flip_mirrors_about_half_and_cutout_erases_squares():
    data, inputs, targets = augmenter("horizontal_flip")
    out, _ = run(data, inputs, targets)
    flipped = [torch.equal(a, b.flip(2)) and not torch.equal(a, b) for a, b in zip(out, inputs, strict=True)]
    kept = [torch.equal(a, b) for a, b in zip(out, inputs, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 6 <= sum(flipped) <= 26
    data, inputs, targets = augmenter({"name": "cutout", "size": 4})
    out, _ = run(data, inputs, targets)
    erased = (out != inputs).flatten(1).sum(1)
    assert (erased <= 16).all() and (out[out != inputs] == 0).all()


def test_identity_settings_of_affine_and_colour_change_nothing():
    data, inputs, targets = augmenter(
        {"name": "affine", "degrees": 0}, {"name": "color_jitter", "brightness": 0, "contrast": 0, "saturation": 0}
    )
    out, _ = run(data, inputs, targets)
    assert torch.allclose(out, inputs.clamp(min=(0 - data.transform.mean[0]) / data.transform.std[0]), atol=1e-4)
    data, inputs, targets = augmenter({"name": "affine", "degrees": 90})
    assert (run(data, inputs, targets)[0] - inputs).abs().mean() > 0.3


def test_mixup_and_cutmix_mix_labels_by_the_same_weights_as_pixels():
    data, inputs, targets = augmenter({"name": "mixup", "alpha": 0.4})
    out, soft = run(data, inputs, targets)
    assert soft.shape == (32, 10) and torch.allclose(soft.sum(1), torch.ones(32))
    own = soft[torch.arange(32), targets]
    weight = own[own < 1 - 1e-6][0]  # one λ for the batch (a partner of the same class gives 1)
    assert torch.allclose(own[own < 1 - 1e-6], weight)
    for index in range(32):  # oracle: λ·x_i + (1-λ)·x_j for some partner j of the batch
        assert any(
            torch.allclose(out[index], weight * inputs[index] + (1 - weight) * inputs[j], atol=1e-5) for j in range(32)
        ), index
    data, inputs, targets = augmenter({"name": "cutmix", "alpha": 1.0})
    out, soft = run(data, inputs, targets)
    pasted = (out != inputs).any(dim=1).flatten(1).float().sum(1)  # pixels taken from another image (≤ box)
    own = soft[torch.arange(32), targets]
    weight = own[own < 1 - 1e-6][0]  # the kept area's fraction, one box for the batch
    assert torch.allclose(own[own < 1 - 1e-6], weight) and (pasted <= (1 - weight) * 64 + 1e-4).all()
    assert pasted.max() > 0


def test_mixing_needs_classes_and_names_are_checked():
    with pytest.raises(ConfigError, match=r"data.augment\[0\]: mixup mixes class labels, but the data is a "):
        augmenter("mixup", section={"task": "reconstruction"})
    with pytest.raises(ConfigError, match=r"unknown augmentation 'horizontal_flp'; did you mean 'horizontal_flip'"):
        augmenter("horizontal_flp")


def test_augmented_training_resumes_exactly(runs_dir):
    from test_resume import InterruptAt

    from conftest import tiny_config
    from lamina.core.errors import RunInterrupted
    from lamina.pipeline import resume, train

    config = tiny_config(epochs=2)
    config["data"]["augment"] = [
        {"name": "random_crop", "padding": 1},
        "horizontal_flip",
        "mixup",
        {"name": "affine", "degrees": 8},
    ]
    reference = train(config, runs_dir=runs_dir / "a", progress="quiet")
    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=runs_dir / "b", progress="quiet", callbacks=[InterruptAt(27)])
    resumed = resume(caught.value.run_dir, progress="quiet")
    from safetensors.torch import load_file

    expected, actual = (
        load_file(str(reference.dir / "model.safetensors")),
        load_file(str(resumed.dir / "model.safetensors")),
    )
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    from lamina.data.augment import alternating_flip
    from lamina.data.augment_options import AlternatingFlipOptions

    images = torch.arange(40 * 2 * 3 * 4, dtype=torch.uint8).view(40, 2, 3, 4)  # (N, C, H, W), no symmetry
    flips = alternating_flip(AlternatingFlipOptions(), None)

    def epoch_split(seed: int, epoch: int):
        return type("Split", (), {"inputs": flips(images, seed, epoch, torch.Generator())})

    first, second, third = (epoch_split(seed=5, epoch=epoch).inputs for epoch in (0, 1, 2))
    mirrored = (first != images).flatten(1).any(1)
    assert 10 < int(mirrored.sum()) < 30  # about half in epoch 0
    assert torch.equal(first[mirrored], images[mirrored].flip(-1))
    assert torch.equal(second, first.flip(-1)) and torch.equal(third, first)  # every image alternates
    assert not torch.equal(epoch_split(seed=6, epoch=0).inputs, first)  # another seed, another half
    data, _, _ = augmenter("alternating_flip")  # from a config: the bundle's training split alternates
    even, odd = data.training_split(0, 0).inputs, data.training_split(0, 1).inputs
    assert torch.equal(odd, even.flip(-1)) and not torch.equal(even, data.splits["train"].inputs)
