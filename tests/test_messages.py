"""What the CLI says, word for word: help texts (whole sentences, every kind of input) and paths that are not found
(with the absolute path they were resolved to)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import run_cli, tiny_config
from lamina.cli.main import main
from lamina.config.schema import SECTIONS
from lamina.core.docstrings import help_text
from lamina.pipeline import train


def row(output: str, option: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{option} "))


def test_option_tables_print_whole_sentences_whatever_the_width():
    models = run_cli("models", env={"COLUMNS": "40"})
    assert row(models.stdout, "forget_bias").endswith(
        "  LSTM only: initial bias of the forget gates; 0 is PyTorch's default. 1 keeps memory from fading early in "
        "training (Jozefowicz et al., 2015; Keras's unit_forget_bias), which helps long-range dependencies."
    )
    datasets = run_cli("datasets", env={"COLUMNS": "40"})
    assert row(datasets.stdout, "seed").endswith(
        "  Seed of the split into train/val/test (and of the labelled subset); default: the run's seed. Fix it to "
        "compare or ensemble runs of several seeds on the same held-out data."
    )
    assert row(models.stdout, "blocks").endswith(  # the first line's sentences are all kept
        "  Convolution blocks, in order. Each halves the image with pool: max (default)."
    )


@pytest.mark.parametrize(
    "docstring, shown",
    [
        ("One line.", "One line."),
        ("No period at the end", "No period at the end"),
        ("Two sentences. On the first line.\n    A third.", "Two sentences. On the first line."),
        ("Cut mid-sentence, e.g. here\n    and (see docs/x.md. for more) there. Then more.",
         "Cut mid-sentence, e.g. here and (see docs/x.md. for more) there."),
        ("A summary\n    that wraps.\n\n    Example:\n        >>> 1", "A summary that wraps."),
        (None, ""),
    ],
)  # fmt: skip
def test_help_text_is_the_first_line_completed_to_its_sentence(docstring, shown):
    assert help_text(docstring) == shown


def test_no_registered_option_help_ends_mid_sentence():
    cut = []
    for registry in SECTIONS.values():
        for entry in registry.values():
            texts = {"": entry.options.__doc__} | {k: f.description for k, f in entry.options.model_fields.items()}
            for option, text in texts.items():
                shown, whole = help_text(text), " ".join((text or "").split("\n\n")[0].split())
                if shown != whole and not shown.endswith((".", "!", "?")):
                    cut.append(f"{registry.kind} {entry.name} {option}: {shown}")
    assert cut == []


def test_predict_help_names_every_kind_of_input():
    result = run_cli("predict", "--help", env={"COLUMNS": "200"})
    flowing = " ".join(result.stdout.split())  # argparse wraps the help, at 200 columns too
    assert "INPUT image files (PNG, JPEG, …), CSV or Parquet files of rows, text files (.txt: one " \
        "text per line; .csv: the training text column), audio files (WAV) or .npy/.npz arrays (FILE.npz:KEY for " \
        "one of several), as the run was trained on" in flowing  # fmt: skip
    overview = run_cli("--help", env={"COLUMNS": "200"})
    assert (
        "predict files of the kind a run was trained on: images, table rows, text, audio or arrays\n" in overview.stdout
    )


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """The current folder is an empty temporary one (its real path, as the messages show it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


def write(path: Path, document: dict) -> str:
    path.write_text(yaml.safe_dump(document))
    return path.name


@pytest.mark.parametrize(
    "arguments, config, message",
    [
        (["validate", "nope.yaml"], None,
         "config problem: config file 'nope.yaml' does not exist (resolved to {here}/nope.yaml); check the path; "
         "example configs are in configs/"),
        (["evaluate", "runs/nope"], None,
         "run folder 'runs/nope' does not exist (resolved to {here}/runs/nope)\n  hint: list runs with 'lamina runs'"),
        (["validate", "c.yaml"], {"data": {"name": "mnist", "path": "../data/mnist"}, "model": "cnn"},
         "data.path '../data/mnist' is not a folder (resolved to {parent}/data/mnist)\n  hint: point data.path at the "
         "folder with the MNIST IDX files, e.g. --set data.path=../shared/datasets/mnist"),
        (["validate", "c.yaml"], {"data": "digits", "model": {"name": "mlp", "init_from": "runs/old"}},
         "config problem: model.init_from: 'runs/old' does not exist (resolved to {here}/runs/old); give a run "
         "folder, a .safetensors file or a .pt/.pth state dict"),
        (["validate", "c.yaml"], {"data": {"name": "csv", "path": "rows.csv", "target": "y"}, "model": "mlp"},
         "CSV file 'rows.csv' does not exist (resolved to {here}/rows.csv)\n  hint: check data.path (relative to "
         "where you run lamina)"),
        (["validate", "c.yaml"], {"data": {"name": "labelled_text", "path": ["a.tsv", "b/*.tsv"]}, "model": "rnn"},
         "data.path: 'a.tsv' does not exist (resolved to {here}/a.tsv)\n  hint: give a file, a glob pattern such as "
         "data/*.tsv, or a list of them (relative to where you run lamina)"),
        (["validate", "c.yaml"], {"data": {"name": "text", "path": "corpus.txt"}, "model": "transformer"},
         "text file 'corpus.txt' does not exist (resolved to {here}/corpus.txt)\n  hint: check data.path (relative "
         "to where you run lamina)"),
        (["evaluate", "/no/such/run"], None,  # an absolute path is shown as given
         "run folder '/no/such/run' does not exist\n  hint: list runs with 'lamina runs'"),
    ],
)  # fmt: skip
def test_a_path_not_found_names_the_absolute_path_it_was_resolved_to(arguments, config, message, elsewhere, capsys):
    if config is not None:
        write(elsewhere / "c.yaml", config)
    assert main(arguments) == 2
    expected = message.format(here=elsewhere, parent=elsewhere.parent)
    assert capsys.readouterr().err == f"error: {expected}\n"


def test_predict_names_a_missing_input_with_its_absolute_path(elsewhere, capsys):
    run = train(tiny_config(epochs=1), runs_dir=elsewhere / "runs", progress="quiet")
    assert main(["predict", str(run.dir), "digit.png"]) == 2
    assert capsys.readouterr().err == (
        f"error: input file 'digit.png' does not exist (resolved to {elsewhere}/digit.png)\n"
        "  hint: pass files of the kind the run was trained on: images, CSV or Parquet files of rows, text or WAV "
        "files, .npy/.npz arrays\n"
    )
    assert main(["runs", "--runs-dir", "old-runs"]) == 0
    assert capsys.readouterr().out == f"no runs in old-runs (resolved to {elsewhere}/old-runs)\n"
