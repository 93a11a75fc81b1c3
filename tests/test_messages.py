"""What the CLI says, word for word: help texts (whole sentences, every kind of input) and paths that are not found
(with the absolute path they were resolved to)."""

from __future__ import annotations

import pytest

from conftest import run_cli
from lamina.config.schema import SECTIONS
from lamina.core.docstrings import help_text


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
    assert "  INPUT               image files (PNG, JPEG, …), CSV files of rows, text files (.txt: one text per line; " \
        ".csv: the training text column) or audio files (WAV), as the run was trained on\n" in result.stdout  # fmt: skip
    overview = run_cli("--help", env={"COLUMNS": "200"})
    assert "predict files of the kind a run was trained on: images, CSV rows, text or audio\n" in overview.stdout
