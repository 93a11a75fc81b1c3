"""Where data comes from: a data.path (a file, a folder, or a file shipped inside an installed package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lamina.core.errors import DataError

__all__ = ["data_path", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def data_path(text: str) -> Path:
    """A data.path: a file or folder (`~` expanded), or `package:NAME/inside/it` for data shipped inside an
    installed Python package (e.g. package:vega_datasets/_data/seattle-temps.csv), found without importing it.

    Example:
        >>> data_path("package:lamina/data/paths.py").name
        'paths.py'
    """
    if not text.startswith("package:"):
        return Path(text).expanduser()
    name, _, inside = text.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(name) if name.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"data.path {text!r} names the package {name!r}, which is not installed",
            f"pip install {name}, or point data.path at the file itself",
        )
    return Path(list(spec.submodule_search_locations)[0]) / inside
