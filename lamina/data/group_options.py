"""Options of `data.groups`: where each sample's group (speaker, accent, sex, site, …) comes from, for per-group
metrics and group-balanced training. Importing this module does not import PyTorch; the groups are read in
lamina/data/groups.py."""

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from lamina.core.options import Options

__all__ = ["GroupOptions", "GroupList", "GROUP_SOURCES", "FILE_DATASETS", "COLUMN_DATASETS"]

GROUP_SOURCES = ("column", "pattern", "metadata")
COLUMN_DATASETS = ("csv", "parquet", "dataframe", "labelled_text")  # rows with columns: `column`
FILE_DATASETS = ("image_folder", "audio")  # one file per sample: `pattern`, `metadata` with match: file


class GroupOptions(Options):
    """One attribute whose groups a sample belongs to, read from exactly one source: a column of the table or
    text file, a regular expression on the file's path, or a field of a metadata CSV joined by a key."""

    name: str = Field(min_length=1)
    """The attribute's name, e.g. speaker, accent, sex."""
    column: str | Annotated[int, Field(ge=0)] | None = None
    """A column of the table (csv, parquet, dataframe) or of the labelled text files (a header name or a 0-based
    index; the field in JSONL). The column is not a model feature."""
    pattern: str | None = None
    """A regular expression searched in each file's path relative to data.path (image folders, audio); the group
    is the named group `group`, else the first capture group, else the whole match."""
    metadata: str | None = None
    """A CSV file with one row per key (e.g. ../shared/datasets/fsdd/speakers.csv); the group is the `field` of
    the row whose `key` equals the value `match` names."""
    key: str | None = None
    """metadata: the column to look the value up in."""
    field: str | None = None
    """metadata: the column holding the group."""
    match: str = "file"
    """metadata: the value looked up, `file` (the file's name, with or without its extension) or the name of an
    attribute listed before this one (e.g. speaker)."""

    @model_validator(mode="after")
    def _one_source(self):
        given = [source for source in GROUP_SOURCES if getattr(self, source) is not None]
        if len(given) != 1:
            received = f"both {' and '.join(given)}" if given else "none"
            raise ValueError(
                f"group {self.name!r} needs exactly one source, but {received} given; "
                "set one of column: NAME, pattern: REGEX, or metadata: FILE.csv with key, field (and match)"
            )
        if self.metadata is not None and (self.key is None or self.field is None):
            raise ValueError(
                f"group {self.name!r} reads metadata {self.metadata!r} but lacks "
                f"{' and '.join(name for name in ('key', 'field') if getattr(self, name) is None)}; "
                "key is the column matched, field the column holding the group"
            )
        if self.metadata is None and (self.key, self.field, self.match) != (None, None, "file"):
            raise ValueError(f"group {self.name!r}: key, field and match go with metadata only; remove them")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(
                    f"group {self.name!r}: pattern {self.pattern!r} is not a regular expression ({error})"
                ) from None
        return self

    def described(self) -> str:
        """One line saying where the groups come from."""
        if self.column is not None:
            return f"column {self.column!r}"
        if self.pattern is not None:
            return f"pattern '{self.pattern}' on each file's path"
        joined = "the file name" if self.match == "file" else f"the {self.match}"
        return f"field {self.field!r} of {self.metadata}, the row whose {self.key!r} is {joined}"


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


GroupList = Annotated[list[GroupOptions], BeforeValidator(_listed)]
