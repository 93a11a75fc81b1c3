"""The docs say what the code does: the README's error example is what `lamina validate` prints for its config,
the README names every built-in entry, and the formatting rules hold (ruff, few `fmt: skip`, short modules)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli


def readme_block(after: str, language: str = "") -> str:
    """The first fenced block after the line containing `after` in the README."""
    text = (ROOT / "README.md").read_text()
    start = text.index(after)
    match = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    return match.group(1)


def test_the_readme_error_example_is_what_validate_prints(tmp_path):
    config = readme_block("Mistakes are reported all at once", "yaml")
    (tmp_path / "bad.yaml").write_text(config)
    result = run_cli("validate", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    expected = readme_block("and the command exits with status 2").strip().splitlines()
    printed = result.stderr.strip().splitlines()
    assert len(printed) == len(expected), result.stderr
    for shown, actual in zip(expected, printed, strict=True):  # a line ending in "..." is shortened in the README
        assert actual.startswith(shown[:-3]) if shown.endswith("...") else actual == shown, (shown, actual)


def test_the_readme_names_every_built_in_entry():
    from lamina.config.schema import SECTIONS

    text = (ROOT / "README.md").read_text()
    missing = sorted(
        {
            f"{registry.kind} {name}"
            for registry in SECTIONS.values()
            for name in registry.names()
            if f"`{name}`" not in text
        }
    )
    assert missing == []


def test_the_code_is_formatted_and_skips_formatting_rarely():
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    if not (shutil.which("ruff") or (ROOT / ".venv" / "bin" / "ruff").exists()):
        pytest.skip("ruff is not installed")
    folders = ["lamina", "tests", "bench"]
    checked = subprocess.run([ruff, "format", "--check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    linted = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout
    skips = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "lamina").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "fmt: skip" in line
    ]
    assert len(skips) <= 20, skips
    long = [
        f"{path.relative_to(ROOT)}: {lines}"
        for path in sorted((ROOT / "lamina").rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > 400
    ]
    assert long == []


def test_lamina_help_schema_models_and_datasets_do_not_import_torch():
    for command in (["--help"], ["schema"], ["models"], ["datasets"]):
        code = (
            "import runpy, sys; sys.argv = ['lamina', *sys.argv[1:]]; runpy.run_module('lamina', run_name='__main__')"
        )
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code, *command], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert "torch" not in imported and "numpy" not in imported, command
