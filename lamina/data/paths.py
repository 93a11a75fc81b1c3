"""Where data comes from: a data.path (a file, a folder, or a file shipped inside an installed package), or the
files a list of paths and glob patterns names."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

from lamina.core.errors import DataError

__all__ = ["data_path", "data_files", "IMAGE_SUFFIXES"]

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


def data_files(spec: str | list[str], option: str) -> list[Path]:
    """The files a path option names: a file, a glob pattern (`*`, `?`, `[…]`, `**`) or a list of them, in the order
    given (a pattern's matches sorted); each file once. DataError for a name that is missing or matches nothing.

    Example:
        >>> [path.name for path in data_files(["package:lamina/data/path*.py"], "data.path")]
        ['paths.py']
    """
    found: dict[Path, None] = {}
    for text in [spec] if isinstance(spec, str) else spec:
        path = data_path(text)
        if any(character in str(path) for character in "*?["):
            matches = sorted(Path(match) for match in glob.glob(str(path), recursive=True) if Path(match).is_file())
            if not matches:
                raise DataError(f"{option}: the pattern {text!r} matches no files", "check the pattern and the folder")
            found.update(dict.fromkeys(matches))
        elif path.is_file():
            found[path] = None
        else:
            raise DataError(
                f"{option}: {text!r} does not exist" if not path.exists() else f"{option}: {text!r} is a folder",
                "give a file, a glob pattern such as data/*.tsv, or a list of them (relative to where you run lamina)",
            )
    return list(found)
