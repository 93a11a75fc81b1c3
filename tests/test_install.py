"""What a user has after the README's install (`make demo`: torch and `pip install -e .`, no extras): every shipped
config runs, or stops before reading data with the option that needs a package and the command that installs it."""

from __future__ import annotations

import re
import sys
import tomllib
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT
from lamina.cli.main import main
from lamina.config.loading import load_config
from lamina.core import packages
from lamina.core.errors import DataError
from lamina.core.packages import install_command, missing_packages, requirement
from lamina.pipeline.prepare import prepare

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def base_distributions() -> set[str]:
    names = (re.match(r"[A-Za-z0-9._-]+", line).group(0) for line in PYPROJECT["project"]["dependencies"])
    return {re.sub(r"[-_.]+", "-", name).lower() for name in names}


@pytest.fixture
def in_a_venv_here(monkeypatch) -> str:
    """lamina run as `.venv/bin/python` from the repository root, as after `make demo`: the command it prints."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "executable", str(ROOT / ".venv" / "bin" / "python"))
    return ".venv/bin/python -m pip install"


def test_install_command_runs_pip_of_this_python_with_laminas_requirement(monkeypatch, tmp_path, in_a_venv_here):
    assert requirement("tokenizers") == "tokenizers>=0.20" and requirement("vega-datasets") == "vega_datasets>=0.9"
    assert install_command("tokenizers") == ".venv/bin/python -m pip install 'tokenizers>=0.20'"
    monkeypatch.setattr(sys, "executable", "/opt/my tools/bin/python3")  # outside the current folder: as it is
    assert install_command("vega_datasets") == "'/opt/my tools/bin/python3' -m pip install 'vega_datasets>=0.9'"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # a bare name would be looked up on PATH
    assert install_command("kornia") == "./python -m pip install 'kornia>=0.8'"


def test_only_the_bpe_configs_and_one_csv_need_a_package_beyond_the_base_install(monkeypatch):
    """kornia (affine: 5 configs) and soundfile (fsdd) are base dependencies; HF tokenizers (three SMS spam
    configs' bpe, with the hub client it brings) and vega_datasets (a CSV inside a package that brings pandas) are
    not."""
    base = base_distributions()
    assert {"kornia", "soundfile"} <= base and not {"tokenizers", "vega-datasets"} & base
    monkeypatch.setattr(packages, "installed", lambda name: name.replace("_", "-") in base)
    needs = {path.name: [p.path for p in missing_packages(load_config(path))] for path in CONFIGS}
    assert {name: paths for name, paths in needs.items() if paths} == {
        "seattle_temps_gru.yaml": ["data.path"],
        "sms_spam_lm.yaml": ["data.tokenizer"],
        "sms_spam_rnn.yaml": ["data.tokenizer"],
        "sms_spam_ulmfit.yaml": ["data.tokenizer"],
    }


@pytest.mark.parametrize(
    "config, module, message",
    [
        ("sms_spam_rnn.yaml", "tokenizers", "data.tokenizer: bpe needs the package 'tokenizers', which is not "
         "installed; install it: .venv/bin/python -m pip install 'tokenizers>=0.20'"),
        ("seattle_temps_gru.yaml", "vega_datasets", "data.path: package:vega_datasets/_data/seattle-temps.csv needs "
         "the package 'vega_datasets', which is not installed; install it: .venv/bin/python -m pip install "
         "'vega_datasets>=0.9'"),
        ("mnist_resnet.yaml", "kornia", "data.augment[1]: affine needs the package 'kornia', which is not "
         "installed; install it: .venv/bin/python -m pip install 'kornia>=0.8'"),
        ("fsdd_crnn.yaml", "soundfile", "data: audio needs the package 'soundfile', which is not installed; "
         "install it: .venv/bin/python -m pip install 'soundfile>=0.12'"),
    ],
)  # fmt: skip
def test_validate_names_the_option_and_the_command_when_a_package_is_missing(
    config, module, message, monkeypatch, capsys, in_a_venv_here
):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it fails, find_spec finds None
    assert main(["validate", f"configs/{config}"]) == 2
    assert capsys.readouterr().err == f"error: config problem: {message}\n"


def test_validate_checks_packages_before_data(monkeypatch, capsys, in_a_venv_here):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    assert main(["validate", "configs/sms_spam_rnn.yaml", "--set", "data.path=nowhere.tsv"]) == 2
    assert "data.tokenizer: bpe needs the package 'tokenizers'" in capsys.readouterr().err  # not "nowhere.tsv"


def test_reading_a_bpe_run_without_tokenizers_names_the_command(monkeypatch, in_a_venv_here):
    from lamina.data.tokenizers import tokenizer_from_dict

    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(DataError) as caught:
        tokenizer_from_dict({"type": "bpe", "tokenizer": {}})
    assert str(caught.value) == (
        "the bpe tokenizer needs the package 'tokenizers', which is not installed\n"
        "  hint: install it: .venv/bin/python -m pip install 'tokenizers>=0.20'; or use tokenizer: character"
    )


def data_paths(config: Path) -> list[Path]:
    data = yaml.safe_load(config.read_text())["data"]
    return [ROOT / data[key] for key in ("path", "test_path") if key in data and ":" not in data[key]]


@pytest.mark.parametrize("config", CONFIGS, ids=[path.name for path in CONFIGS])
def test_every_shipped_config_validates_where_its_data_exists(config, monkeypatch):
    """What `lamina validate CONFIG` does: data, defaults, model, checks and one batch through the model."""
    absent = [str(path) for path in data_paths(config) if not path.exists()]
    if absent:
        pytest.skip(f"data not found: {', '.join(absent)}")
    monkeypatch.chdir(ROOT)
    parsed = load_config(config)
    if missing_packages(parsed):
        pytest.skip(f"needs a package not installed here: {missing_packages(parsed)[0]}")
    threads = torch.get_num_threads()
    try:
        session = prepare(parsed)
    finally:
        torch.set_num_threads(threads)  # prepare sets the run's threads; the tests keep one
    assert sum(p.numel() for p in session.model.parameters()) > 0 and len(session.data.splits["train"]) > 0


def test_the_install_prints_no_deprecation_warning_about_pyproject():
    pytest.importorskip("setuptools", minversion="77")  # what the build asks for (build-system.requires)
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # setuptools' SetuptoolsDeprecationWarning about project.license included
        distribution = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert distribution.metadata.license_expression == "MIT"
