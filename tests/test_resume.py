"""Exact resume: a run interrupted at any step and resumed ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from lamina.artifacts.checkpoint import read_checkpoint
from lamina.core.errors import RunError, RunInterrupted
from lamina.pipeline import resume, train
from lamina.training.callbacks import Callback


class InterruptAt(Callback):
    """Asks the loop to stop after global step `step`, as Ctrl-C does."""

    def __init__(self, step: int):
        self.step = step

    def step_end(self, loop, loss):
        if loop.state.step == self.step:
            loop.interrupt_requested = True


def epoch_rows(run_dir) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    drop = {"seconds", "samples_per_second"}
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(tiny_config(), runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")


# digits: 1,259 training samples / 64 per batch = 20 steps per epoch
@pytest.mark.parametrize("step", [7, 20, 33], ids=["mid-epoch-1", "epoch-boundary", "mid-epoch-2"])
def test_interrupted_and_resumed_run_matches_bitwise(step, uninterrupted, runs_dir):
    with pytest.raises(RunInterrupted) as caught:
        train(tiny_config(), runs_dir=runs_dir, progress="quiet", callbacks=[InterruptAt(step)])
    run_dir = caught.value.run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == step
    assert read_checkpoint(run_dir / "checkpoints" / "last")["train_state"]["step"] == step
    resumed = resume(run_dir, progress="quiet")
    expected = load_file(str(uninterrupted.dir / "model.safetensors"))
    actual = load_file(str(resumed.dir / "model.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert epoch_rows(resumed.dir) == epoch_rows(uninterrupted.dir)  # the log has no gaps and no repeats
    assert resumed.metrics["test"] == uninterrupted.metrics["test"]


def test_checkpoints_every_n_steps_and_a_completed_run_cannot_resume(uninterrupted, runs_dir):
    run = train(tiny_config(checkpoint_every_steps=5, epochs=1), runs_dir=runs_dir, progress="quiet")
    state = read_checkpoint(run.dir / "checkpoints" / "last")
    assert state["train_state"]["step"] == 20 and (run.dir / "checkpoints" / "best" / "model.safetensors").is_file()
    with pytest.raises(RunError, match="already completed"):
        resume(run.dir)
    last = run.dir / "checkpoints" / "last"
    (last / "state.safetensors").write_bytes((last / "state.safetensors").read_bytes()[:50])
    with pytest.raises(RunError, match=r"cannot read .*state.safetensors: .*\n.*damaged or incomplete"):
        read_checkpoint(last)
    (last / "state.json").write_text('{"format": 1, "train_st')
    with pytest.raises(RunError, match=r"cannot read .*state.json: Unterminated string"):
        read_checkpoint(last)


def test_early_stopping_restores_the_best_weights(runs_dir):
    config = tiny_config(
        epochs=30,
        early_stopping={"patience": 2},
        monitor="val.loss",
        optimizer={"name": "adamw", "learning_rate": 0.05},
    )
    run = train(config, runs_dir=runs_dir, progress="quiet")
    summary = run.summary
    assert summary["epochs"] < 30 and summary["stopped_early"].startswith("early stopping: val.loss")
    assert summary["restored_best"] is True
    best = load_file(str(run.dir / "checkpoints" / "best" / "model.safetensors"))
    final = load_file(str(run.dir / "model.safetensors"))
    assert all(torch.equal(best[name], final[name]) for name in best)
    history = run.history
    assert summary["best"]["value"] == min(row["val.loss"] for row in history)


class NoiseAugmentation(Callback):
    """Installs a random training-batch augmentation, as data.augment does, to prove it resumes exactly."""

    def fit_start(self, loop):
        def augment(inputs, targets, generator):
            noise = torch.randn(inputs.shape, generator=generator, device=inputs.device)
            return inputs + 0.3 * noise, targets

        loop.data.augment = augment


def test_max_steps_and_augmentation_resume_exactly(runs_dir):
    config = tiny_config(max_steps=47)  # 20 steps per epoch: stops 7 steps into epoch 3
    reference = train(config, runs_dir=runs_dir / "a", progress="quiet", callbacks=[NoiseAugmentation()])
    assert reference.summary["steps"] == 47 and reference.summary["epochs"] == 3
    plain_run = train(config, runs_dir=runs_dir / "b", progress="quiet")
    weights = load_file(str(reference.dir / "model.safetensors"))
    plain_weights = load_file(str(plain_run.dir / "model.safetensors"))
    assert not all(torch.equal(weights[k], plain_weights[k]) for k in weights)  # the augmentation did act
    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=runs_dir / "c", progress="quiet", callbacks=[NoiseAugmentation(), InterruptAt(29)])
    resumed = resume(caught.value.run_dir, progress="quiet", callbacks=[NoiseAugmentation()])
    resumed_weights = load_file(str(resumed.dir / "model.safetensors"))
    assert all(torch.equal(weights[k], resumed_weights[k]) for k in weights)


def test_weight_average_follows_its_formula_and_resumes_exactly(runs_dir):
    from lamina.training.averaging import average_rate

    assert average_rate(0.99, 5, 0) == 0.0 and average_rate(0.99, 5, 1) == pytest.approx(2 / 11)
    assert average_rate(0.99, 5, 10_000) == pytest.approx(0.99**5)
    config = tiny_config(weight_average={"decay": 0.9, "every_steps": 2}, epochs=2)
    plain = train(tiny_config(epochs=2), runs_dir=runs_dir, progress="quiet")
    averaged = train(config, runs_dir=runs_dir, progress="quiet")
    raw = read_checkpoint(averaged.dir / "checkpoints" / "last")
    kept = raw["callbacks"]["WeightAverage"]
    assert kept["updates"] == 20  # 40 steps, every second one
    final = load_file(str(averaged.dir / "model.safetensors"))
    raw_weights = load_file(str(raw["path"] / "model.safetensors"))
    plain_weights = load_file(str(plain.dir / "model.safetensors"))
    for name, value in final.items():  # the model is the average; training itself is unchanged by averaging
        assert torch.equal(value, kept["weights"][name]), name
        assert torch.equal(raw_weights[name], plain_weights[name]), name
    assert any(not torch.equal(final[name], raw_weights[name]) for name in final if final[name].is_floating_point())
    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=runs_dir, progress="quiet", callbacks=[InterruptAt(27)])
    resumed = resume(caught.value.run_dir, progress="quiet")
    again = load_file(str(resumed.dir / "model.safetensors"))
    assert all(torch.equal(again[name], final[name]) for name in final)
    assert epoch_rows(resumed.dir) == epoch_rows(averaged.dir)


def test_lookahead_pulls_the_weights_to_the_ramped_average_and_resumes_exactly(runs_dir):
    from types import SimpleNamespace

    from lamina.training.averaging import WeightAverage

    model = torch.nn.Linear(2, 1, bias=False)
    loop = SimpleNamespace(model=model, total_steps=10, state=SimpleNamespace(step=0))
    average = WeightAverage(0.9, every_steps=2, lookahead=True)
    average.fit_start(loop)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)  # what the optimizer did since
    loop.state.step = 6
    average.step_end(loop, None)
    keep = 0.9**2 * (6 / 10) ** 3
    expected = keep * start + (1 - keep) * (start + 1)
    assert torch.allclose(model.weight, expected) and torch.allclose(loop.evaluation_model.weight, expected)
    config = tiny_config(weight_average={"decay": 0.9, "every_steps": 2, "lookahead": True}, epochs=2)
    whole = train(config, runs_dir=runs_dir, progress="quiet")
    raw = load_file(str(read_checkpoint(whole.dir / "checkpoints" / "last")["path"] / "model.safetensors"))
    final = load_file(str(whole.dir / "model.safetensors"))
    assert all(torch.equal(raw[name], final[name]) for name in final)  # the last step copied the average back
    plain = load_file(str(train(tiny_config(epochs=2), runs_dir=runs_dir, progress="quiet").dir / "model.safetensors"))
    assert any(not torch.equal(final[name], plain[name]) for name in final)  # lookahead changed training
    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=runs_dir, progress="quiet", callbacks=[InterruptAt(27)])
    again = load_file(str(resume(caught.value.run_dir, progress="quiet").dir / "model.safetensors"))
    assert all(torch.equal(again[name], final[name]) for name in final)


def test_deterministic_kernels_are_switched_per_run_and_cpu_bits_do_not_change(uninterrupted, runs_dir):
    seen = []

    class Watch(Callback):
        def fit_start(self, loop):
            seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic))

    config = tiny_config()
    config["runtime"]["deterministic"] = True
    strict = train(config, runs_dir=runs_dir, progress="quiet", callbacks=[Watch()])
    relaxed = tiny_config(epochs=1)
    relaxed["runtime"]["deterministic"] = False
    train(relaxed, runs_dir=runs_dir, progress="quiet", callbacks=[Watch()])
    assert seen == [(True, True), (False, False)]
    expected, actual = (load_file(str(run.dir / "model.safetensors")) for run in (uninterrupted, strict))
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_weights_packed_in_one_buffer_and_tied_weights_save_and_load(tmp_path):
    """cuDNN packs an LSTM's weights on CUDA into one flat buffer, which safetensors' save_model refuses; tied
    weights are stored once under the name save_model keeps, so files stay interchangeable both ways."""
    from safetensors.torch import save_model

    from lamina.artifacts.checkpoint import load_weights, save_weights

    class Packed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            flat = torch.arange(10.0)
            self.first = torch.nn.Parameter(flat[:6].view(2, 3))  # views into one buffer, as cuDNN leaves them
            self.second = torch.nn.Parameter(flat[6:])
            self.embedding = torch.nn.Embedding(4, 3)
            self.head = torch.nn.Linear(3, 4, bias=False)
            self.head.weight = self.embedding.weight  # tied

    model = Packed()
    assert model.first.untyped_storage().data_ptr() == model.second.untyped_storage().data_ptr()
    save_weights(model, tmp_path / "model.safetensors")
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert sorted(stored) == ["embedding.weight", "first", "second"]
    fresh = Packed()
    with torch.no_grad():
        for parameter in fresh.parameters():
            parameter.zero_()
    load_weights(fresh, tmp_path / "model.safetensors")
    assert torch.equal(fresh.first, model.first) and torch.equal(fresh.second, torch.arange(6.0, 10.0))
    assert torch.equal(fresh.head.weight, model.embedding.weight) and fresh.head.weight is fresh.embedding.weight

    plain = torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.Linear(3, 4, bias=False))
    plain[1].weight = plain[0].weight
    save_model(plain, str(tmp_path / "theirs.safetensors"))  # a file from safetensors' own writer loads too
    save_weights(plain, tmp_path / "ours.safetensors")
    theirs, ours = (load_file(str(tmp_path / name)) for name in ("theirs.safetensors", "ours.safetensors"))
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[name], ours[name]) for name in theirs)
    other = torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.Linear(3, 4, bias=False))
    other[1].weight = other[0].weight
    load_weights(other, tmp_path / "theirs.safetensors")
    assert torch.equal(other[1].weight, plain[0].weight)
    from safetensors.torch import save_file

    del stored["second"]
    save_file(stored, str(tmp_path / "short.safetensors"))
    with pytest.raises(RunError, match=r"do not fit the model: missing second; unexpected none"):
        load_weights(Packed(), tmp_path / "short.safetensors")
    (tmp_path / "damaged.safetensors").write_bytes((tmp_path / "model.safetensors").read_bytes()[:100])
    with pytest.raises(RunError, match=r"cannot read the weights in .*damaged.safetensors: .*invalid header length"):
        load_weights(Packed(), tmp_path / "damaged.safetensors")
