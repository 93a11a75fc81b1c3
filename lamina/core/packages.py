"""Optional packages: whether one is installed (found without importing it), and the exact command that installs
it where lamina runs.

The command calls pip through the Python that runs lamina (`.venv/bin/python -m pip install …`), so the package
lands in the same environment whatever `pip` on the PATH is, and it names the requirement lamina declares
(`tokenizers>=0.20`, read from lamina's installed metadata) rather than `lamina[extra]`: for a clone installed
with `pip install -e .`, `pip install 'lamina[text]'` would look for lamina in the package index.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import sys
from typing import Any

from pydantic import BaseModel

from lamina.core.errors import Problem

__all__ = ["installed", "requirement", "install_command", "missing_packages"]


def installed(name: str) -> bool:
    """Whether the top-level module `name` can be imported (without importing it).

    Example:
        >>> installed("json"), installed("no_such_module_here")
        (True, False)
    """
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or one without a spec
        return False


def requirement(name: str) -> str:
    """lamina's own requirement for the distribution `name` ('tokenizers>=0.20'), or `name` when lamina does not
    declare it (or runs from a source tree without installed metadata).

    Example:
        >>> requirement("no_such_distribution")
        'no_such_distribution'
    """
    import importlib.metadata  # ~20 ms (zipfile, email): only when a package is missing

    try:
        declared = importlib.metadata.requires("lamina") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    for line in declared:
        text = line.split(";", 1)[0].strip()  # 'tokenizers>=0.20; extra == "text"' → 'tokenizers>=0.20'
        match = re.match(r"[A-Za-z0-9._-]+", text)
        if match and _normalized(match.group(0)) == _normalized(name):
            return text.replace(" ", "")
    return name


def install_command(name: str) -> str:
    """The command that installs the distribution `name` into the Python running lamina: that Python's path
    (relative to the current folder when it lies below it) with `-m pip install` and lamina's requirement.

    Example:
        >>> install_command("no_such_distribution").endswith(" -m pip install no_such_distribution")
        True
    """
    python = sys.executable or "python3"
    relative = os.path.relpath(python)
    if not relative.startswith(os.pardir):
        python = relative if os.sep in relative else os.path.join(os.curdir, relative)
    return f"{shlex.quote(python)} -m pip install {shlex.quote(requirement(name))}"


def missing_packages(options: Any, path: str = "") -> list[Problem]:
    """A problem for each package that `options` (a config, or any section of it) needs and that is not installed,
    at the dotted path of the option that needs it. Sections declare what they need in `optional_packages()`.

    Example:
        >>> from lamina.core.options import Options
        >>> class Speech(Options):
        ...     name: str = "speech"
        ...     def optional_packages(self):
        ...         return {"": "no_such_module_here"}
        >>> print(missing_packages(Speech(), "data")[0])  # doctest: +ELLIPSIS
        data: speech needs the package 'no_such_module_here', which is not installed; install it: ... -m pip install no_such_module_here
    """
    problems = []
    declared = options.optional_packages() if hasattr(options, "optional_packages") else {}
    for option, package in declared.items():
        if installed(package):
            continue
        what = getattr(options, option) if option else getattr(options, "name", type(options).__name__)
        problems.append(
            Problem(
                _join(path, option),
                f"{what} needs the package {package!r}, which is not installed",
                f"install it: {install_command(package)}",
            )
        )
    for name in type(options).model_fields:
        value = getattr(options, name)
        if isinstance(value, BaseModel):
            problems += missing_packages(value, _join(path, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    problems += missing_packages(item, f"{_join(path, name)}[{index}]")
    return problems


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path and name else path or name


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: vega_datasets and vega-datasets are one name
