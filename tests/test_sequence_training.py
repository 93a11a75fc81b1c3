"""Sequence runs end to end on real data, with small budgets (full results: docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_resume import InterruptAt

from conftest import EXACT_RUNTIME, ROOT, run_cli, shared_data
from lamina.core.errors import DataError, RunInterrupted
from lamina.pipeline import resume, train


def shakespeare_lm(model: dict, **train_options) -> dict:
    return {
        "seed": 1,
        "data": {
            "name": "text",
            "path": str(shared_data("tinyshakespeare") / "input.txt"),
            "context": 32,
            "windows_per_epoch": 16 * 40,
            "eval_windows": 300,
        },
        "model": model,
        "train": {
            "max_steps": 120,
            "batch_size": 16,
            "eval_batch_size": 100,
            "log_every_steps": 10,
            "optimizer": {"name": "adamw", "learning_rate": 0.005},
            "schedule": {"name": "cosine", "warmup_steps": 10},
            **train_options,
        },
        "runtime": dict(EXACT_RUNTIME),
    }


def unigram_loss(path: Path) -> float:
    """Cross-entropy (nats per character) of predicting val characters from train character frequencies."""
    text = path.read_text()
    split = int(len(text) * 0.9)
    counts = torch.bincount(torch.tensor(list(text[:split].encode())), minlength=256).double()
    probabilities = counts / counts.sum()
    return float(-probabilities[torch.tensor(list(text[split:].encode()))].log().mean())


def test_transformer_language_model_learns_shakespeare_and_generates(runs_dir):
    config = shakespeare_lm({"name": "transformer", "layers": 2, "heads": 2, "width": 32, "positions": "rotary"})
    run = train(config, runs_dir=runs_dir, progress="quiet")
    val = run.metrics["val"]
    baseline = unigram_loss(shared_data("tinyshakespeare") / "input.txt")  # ≈ 3.3 nats
    assert val["loss"] < baseline - 0.6  # uses context, not just character frequencies
    assert val["perplexity"] == pytest.approx(math.exp(val["loss"]), rel=1e-6)
    assert val["bits_per_character"] == pytest.approx(val["loss"] / math.log(2), rel=1e-6)
    assert "test" not in run.metrics  # nanoGPT's train/val split
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    gradients = [row for row in rows if row["kind"] == "gradients"]
    assert len(gradients) == 12 and "blocks.0.attention.qkv" in gradients[0]["layers"]
    assert (run.dir / "plots" / "gradient_norms.png").is_file()
    arguments = ("--prompt", "ROMEO:", "--max-tokens", "40", "--seed", "3", "--temperature", "0.8", "--top-k", "10")
    result = run_cli("generate", str(run.dir), *arguments)
    again = run_cli("generate", str(run.dir), *arguments)
    assert result.returncode == 0, result.stderr
    assert result.stdout == again.stdout and result.stdout.startswith("ROMEO:") and len(result.stdout) > 40


def test_recurrent_language_model_clips_by_default_and_resumes_exactly(runs_dir):
    config = shakespeare_lm({"name": "rnn", "cell": "gru", "hidden_size": 48, "embedding_size": 16}, max_steps=60)
    reference = train(config, runs_dir=runs_dir / "a", progress="quiet")
    saved = yaml.safe_load((reference.dir / "config.yaml").read_text())
    assert saved["train"]["gradient_clip"] == 1.0  # the rnn family's default, written out
    with pytest.raises(RunInterrupted) as caught:  # mid-epoch of fresh random windows (40 steps per epoch)
        train(config, runs_dir=runs_dir / "b", progress="quiet", callbacks=[InterruptAt(47)])
    resumed = resume(caught.value.run_dir, progress="quiet")
    expected = load_file(str(reference.dir / "model.safetensors"))
    actual = load_file(str(resumed.dir / "model.safetensors"))
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    unclipped = train(
        {**config, "train": {**config["train"], "gradient_clip": None}}, runs_dir=runs_dir / "c", progress="quiet"
    )
    assert yaml.safe_load((unclipped.dir / "config.yaml").read_text())["train"]["gradient_clip"] is None


def test_moe_language_model_logs_expert_load_every_epoch(runs_dir):
    model = {"name": "moe", "layers": 1, "heads": 2, "width": 32, "experts": 4, "top_k": 2}
    run = train(shakespeare_lm(model, max_steps=80), runs_dir=runs_dir, progress="quiet")
    history = run.history
    assert len(history) == 2
    for row in history:
        assert len(row["train.expert_share_0"]) == 4 and len(row["val.expert_share_0"]) == 4
        assert 0 < row["val.router_entropy_0"] <= math.log(4) + 1e-6
        assert row["train.load_balance"] >= 0.01 * 0.99  # weight × a loss that is ≥ 1
    assert sum(history[-1]["val.expert_share_0"]) == pytest.approx(1.0)  # shares of the token assignments


def test_sms_spam_classifier_and_predict_on_text(tmp_path, runs_dir):
    config = {
        "seed": 0,
        "data": {
            "name": "labelled_text",
            "path": str(shared_data("sms_spam") / "SMSSpamCollection"),
            "header": False,
            "label_column": 0,
            "text_column": 1,
            "tokenizer": "bpe",
            "vocab_size": 500,
            "max_length": 64,
        },
        "model": {
            "name": "rnn",
            "cell": "gru",
            "hidden_size": 32,
            "embedding_size": 32,
            "bidirectional": True,
            "pooling": "max",
        },
        "train": {
            "epochs": 2,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "learning_rate": 0.005},
            "metrics": ["accuracy", "f1"],
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    test = run.metrics["test"]
    assert test["accuracy"] > 0.95 and test["f1"] > 0.75  # all-ham scores 0.866 and F1 0
    (tmp_path / "messages.txt").write_text(
        "URGENT! You have WON a £1000 prize. Call 09061701461 to claim now\nok see you at home later\n"
    )
    result = run_cli("predict", str(run.dir), str(tmp_path / "messages.txt"), "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == ["spam", "ham"]


def test_crnn_on_spoken_digits(runs_dir):
    config = {
        "data": {
            "name": "audio",
            "path": str(shared_data("fsdd")),
            "augment": [
                {"name": "time_shift", "seconds": 0.05},
                {"name": "noise", "snr": 20},
                {"name": "spec_augment", "time_masks": 1, "frequency_masks": 1},
            ],
        },
        "model": {"name": "hybrid", "channels": [8, 16, 16], "cell": "gru", "hidden_size": 32},
        "train": {
            "epochs": 4,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "learning_rate": 0.005},
            "schedule": "one_cycle",
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    assert run.metrics["test"]["accuracy"] > 0.8  # chance is 0.1
    recording = shared_data("fsdd") / "recordings" / "7_jackson_0.wav"
    assert run.predict([recording])[0]["label"] in {str(d) for d in range(10)}


def test_crnn_with_ctc_reads_digit_strings(runs_dir):
    config = {
        "data": {
            "name": "digit_strings",
            "path": str(shared_data("mnist")),
            "digits": 3,
            "train_strings": 4000,
            "val_strings": 200,
            "test_strings": 500,
        },
        "model": {"name": "hybrid", "channels": [8, 16, 32], "hidden_size": 48},
        "train": {
            "epochs": 3,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "learning_rate": 0.004},
            "schedule": "one_cycle",
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    test = run.metrics["test"]
    assert test["sequence_accuracy"] > 0.5 and test["token_error_rate"] < 0.25  # whole 3-digit strings


def test_forecasting_beats_the_naive_last_value(runs_dir):
    location = importlib.util.find_spec("vega_datasets")
    if location is None:
        pytest.skip("vega_datasets (a test dependency holding the Seattle temperatures) is not installed")
    path = "package:vega_datasets/_data/seattle-temps.csv"  # inside the installed package, wherever it is
    config = {
        "data": {"name": "timeseries", "path": path, "target": "temp", "lookback": 48, "horizon": 12, "stride": 4},
        "model": {"name": "rnn", "cell": "gru", "hidden_size": 32},
        "train": {
            "epochs": 6,
            "batch_size": 64,
            "optimizer": {"name": "adamw", "learning_rate": 0.005},
            "metrics": ["mae", "rmse"],
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    test = run.metrics["test"]  # hourly temperature, 12 hours ahead, in °F
    assert test["mae"] < test["naive_mae"] and test["rmse"] < test["naive_rmse"]
    assert test["naive_mae"] == pytest.approx(run.spec.extra["baselines"]["test"]["mae"])


def test_a_package_path_names_a_missing_package():
    from lamina.data.paths import data_path

    with pytest.raises(DataError, match=r"names the package 'no_such_package', which is not installed\n.*pip install"):
        data_path("package:no_such_package/data.csv")
    assert data_path("~/x.csv") == Path.home() / "x.csv"


def test_text_config_mistakes_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"name": "text", "path": "nowhere.txt"}, "model": "transformer"}))
    result = run_cli("validate", str(bad))
    assert result.returncode == 2 and result.stderr.startswith("error: text file 'nowhere.txt' does not exist")
    bad.write_text(
        yaml.safe_dump({"data": {"name": "text", "path": str(ROOT / "README.md"), "tokenizer": "bpee"}, "model": "mlp"})
    )
    result = run_cli("validate", str(bad))
    assert result.returncode == 2 and "data.tokenizer: received 'bpee'; did you mean 'bpe'?" in result.stderr
    bad.write_text(
        yaml.safe_dump({"data": {"name": "text", "path": str(ROOT / "README.md"), "context": 16}, "model": "mlp"})
    )
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("error: model 'mlp' gives one output per sample, but language_modeling needs")


def test_audio_class_folders_with_augmentation_resume_exactly(tmp_path, runs_dir):
    import shutil

    recordings = shared_data("fsdd") / "recordings"
    for digit, name in ((0, "zero"), (1, "one"), (2, "two")):
        (tmp_path / "clips" / name).mkdir(parents=True)
        for index in range(16):
            shutil.copy(recordings / f"{digit}_jackson_{index}.wav", tmp_path / "clips" / name / f"{index}.wav")
    config = {
        "seed": 2,
        "data": {
            "name": "audio",
            "path": str(tmp_path / "clips"),
            "layout": "folders",
            "test_fraction": 0.25,
            "augment": [
                {"name": "time_shift", "seconds": 0.1},
                {"name": "noise", "snr": 15},
                {"name": "spec_augment", "time_masks": 2, "frequency_masks": 1},
            ],
        },
        "model": {"name": "hybrid", "channels": [4, 8], "hidden_size": 8},
        "train": {"epochs": 3, "batch_size": 8},
        "runtime": dict(EXACT_RUNTIME),
    }
    reference = train(config, runs_dir=runs_dir / "a", progress="quiet")
    assert reference.spec.class_names == ["one", "two", "zero"]
    with pytest.raises(RunInterrupted) as caught:  # 30 training clips: 4 steps per epoch; stop inside epoch 2
        train(config, runs_dir=runs_dir / "b", progress="quiet", callbacks=[InterruptAt(6)])
    resumed = resume(caught.value.run_dir, progress="quiet")
    expected = load_file(str(reference.dir / "model.safetensors"))
    actual = load_file(str(resumed.dir / "model.safetensors"))
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
