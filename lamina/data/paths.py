"""Where data comes from: a data.path (a file, a folder, or a file shipped inside an installed package), or the
files a list of paths and glob patterns names."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path
from typing import Any

from lamina.core.errors import DataError, resolved
from lamina.core.packages import install_command

__all__ = ["data_path", "data_files", "package_name", "absolute_paths", "IMAGE_SUFFIXES"]

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


ARRAY_FILES = (".npz", ".npy")


def absolute_paths(options: Any) -> Any:
    """`options` (a data section) with each file it names made absolute, so a run can be resumed or evaluated
    from any folder: data.path and test_path, the arrays' x/y files (FILE or FILE:KEY; not keys of data.path) and
    the metadata files of data.groups.

    Example:
        >>> from lamina.data.table_options import ArraysOptions
        >>> options = absolute_paths(ArraysOptions(path="a.npz", x="images", y="labels.npy"))
        >>> options.path == str(Path("a.npz").resolve()), options.x, Path(options.y).is_absolute()
        (True, 'images', True)
    """
    update = {}
    for name in ("path", "test_path"):
        if isinstance(getattr(options, name, None), str):
            update[name] = _absolute(getattr(options, name))
    for name in ("x", "y", "val_x", "val_y", "test_x", "test_y"):
        value = getattr(options, name, None)
        if not isinstance(value, str):
            continue
        file, _, key = value.rpartition(":")
        if file.lower().endswith(ARRAY_FILES):
            update[name] = f"{_absolute(file)}:{key}"
        elif value.lower().endswith(ARRAY_FILES):
            update[name] = _absolute(value)
    groups = getattr(options, "groups", [])
    if any(group.metadata for group in groups):  # data.groups' metadata files
        update["groups"] = [
            group.model_copy(update={"metadata": _absolute(group.metadata)}) if group.metadata else group
            for group in groups
        ]
    return options.model_copy(update=update) if update else options


def _absolute(text: str) -> str:
    return text if text.startswith("package:") else str(Path(text).expanduser().resolve())


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
                raise DataError(
                    f"{option}: the pattern {text!r}{resolved(path)} matches no files",
                    "check the pattern and the folder",
                )
            found.update(dict.fromkeys(matches))
        elif path.is_file():
            found[path] = None
        else:
            raise DataError(
                f"{option}: {text!r} does not exist{resolved(path)}"
                if not path.exists()
                else f"{option}: {text!r} is a folder",
                "give a file, a glob pattern such as data/*.tsv, or a list of them (relative to where you run lamina)",
            )
    return list(found)
