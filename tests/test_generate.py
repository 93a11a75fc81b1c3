"""`lamina generate` on a language model, driven as a user would: options it takes, its defaults, --output and
its speed in tokens per second (VAE samples: tests/test_vision_models.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from lamina.cli.main import build_parser
from lamina.generate import ImageGenerationOptions, TextGenerationOptions

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog, and the dog sleeps on.\n" for i in range(120))


@pytest.fixture(scope="module")
def language_model(tmp_path_factory) -> tuple[Path, str]:
    """A tiny character-level transformer trained through the CLI: (run folder, its progress output)."""
    folder = tmp_path_factory.mktemp("lm")
    (folder / "corpus.txt").write_text(TEXT)
    config = {
        "seed": 1,
        "data": {"name": "text", "path": str(folder / "corpus.txt"), "context": 16, "windows_per_epoch": 64},
        "model": {"name": "transformer", "layers": 1, "heads": 2, "width": 16},
        "train": {"max_steps": 8, "batch_size": 16},
        "runtime": {"threads": 1},
    }
    (folder / "lm.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", str(folder / "lm.yaml"), "--runs-dir", str(folder / "runs"), "--progress", "plain")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]), result.stdout


def test_language_model_training_reports_tokens_per_second(language_model):
    run_dir, output = language_model
    epochs = [line for line in output.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all(re.search(r"  \d+ tokens/s  \d+\.\ds", line) for line in epochs), epochs
    assert "samples/s" not in output
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch = next(row for row in rows if row["kind"] == "epoch")
    assert epoch["tokens_per_second"] == pytest.approx(epoch["samples_per_second"] * 16, rel=0.01)  # 16 per window
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["tokens_per_second"] == pytest.approx(summary["samples_per_second"] * 16, rel=0.01)


def test_samples_on_a_language_model_names_the_options_it_takes(language_model):
    result = run_cli("generate", str(language_model[0]), "--samples", "4")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "error: --samples does not apply to this run's model, 'transformer'\n"
        "  hint: transformer runs take --prompt, --max-tokens, --temperature, --top-k, --seed, --output; "
        "--samples is for autoencoder runs\n"
    )


def test_values_out_of_range_are_named_by_their_flag(language_model):
    result = run_cli("generate", str(language_model[0]), "--max-tokens", "0", "--temperature", "0")
    assert result.returncode == 2
    assert result.stderr == (
        "error: 2 options of lamina generate are wrong:\n"
        "  - --max-tokens: should be greater than or equal to 1; received 0\n"
        "  - --temperature: should be greater than 0; received 0.0\n"
    )


def test_output_writes_the_text_and_says_so_with_the_speed(language_model, tmp_path):
    output = tmp_path / "new" / "folder" / "sample.txt"  # folders that do not exist yet
    arguments = ("--prompt", "the ", "--max-tokens", "20", "--seed", "1", "--output", str(output))
    result = run_cli("generate", str(language_model[0]), *arguments)
    assert result.returncode == 0, result.stderr
    assert output.read_text() + "\n" == result.stdout and result.stdout.startswith("the ")
    assert re.fullmatch(rf"20 tokens in \d+\.\d\ds, \d+ tokens/s\nwrote {re.escape(str(output))}\n", result.stderr)


def test_output_that_cannot_be_written_is_a_user_error(language_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("generate", str(language_model[0]), "--max-tokens", "3", "--output", str(blocker / "x.txt"))
    assert result.returncode == 2 and result.stderr == (
        f"error: cannot write {blocker / 'x.txt'}: File exists\n  hint: pass --output with a file you can write\n"
    )


def test_generate_help_shows_the_defaults_of_the_generation_options():
    """The defaults --help states (without importing PyTorch) are those the options declare."""
    commands = next(action for action in build_parser()._actions if action.dest == "command")
    helps = {action.dest: action.help for action in commands.choices["generate"]._actions}
    shown = {
        name: re.search(r"\(default: (.+)\)$", text).group(1) for name, text in helps.items() if "(default" in text
    }
    text, images = TextGenerationOptions(), ImageGenerationOptions()
    assert shown == {
        "samples": str(images.samples),
        "prompt": "a newline" if text.prompt == "\n" else text.prompt,
        "max_tokens": str(text.max_tokens),
        "temperature": f"{text.temperature}" if text.temperature == images.temperature else "differs",
        "top_k": "all tokens" if text.top_k is None else str(text.top_k),
        "seed": f"{images.seed} for images; text: a new sample each time" if text.seed is None else "differs",
        "output": "images go to plots/samples-SEED.png in the run folder; text is printed, and also written to "
        "FILE when given",
    }
    assert set(helps) - {"help", "run_dir"} == set(TextGenerationOptions.model_fields) | {"samples"}
