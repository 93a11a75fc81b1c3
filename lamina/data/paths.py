"""Where data comes from: a data.path (a file, a folder, or a file shipped inside an installed package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lamina.core.errors import DataError
from lamina.core.packages import install_command

__all__ = ["data_path", "package_name", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def data_path(text: str) -> Path:
    """A data.path: a file or folder (`~` expanded), or `package:NAME/inside/it` for data shipped inside an
    installed Python package (e.g. package:vega_datasets/_data/seattle-temps.csv), found without importing it.

    Example:
        >>> data_path("package:lamina/data/paths.py").name
        'paths.py'
    """
    name = package_name(text)
    if name is None:
        return Path(text).expanduser()
    spec = importlib.util.find_spec(name) if name.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"data.path {text!r} names the package {name!r}, which is not installed",
            f"install it: {install_command(name)}; or point data.path at the file itself",
        )
    inside = text.removeprefix("package:").partition("/")[2]
    return Path(list(spec.submodule_search_locations)[0]) / inside


def package_name(text: str | None) -> str | None:
    """The package a `package:NAME/inside/it` data.path names; None for any other value.

    Example:
        >>> package_name("package:vega_datasets/_data/seattle-temps.csv"), package_name("data/x.csv")
        ('vega_datasets', None)
    """
    if not isinstance(text, str) or not text.startswith("package:"):
        return None
    return text.removeprefix("package:").partition("/")[0]
