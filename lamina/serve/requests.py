"""A prediction request's body → the files `lamina predict` reads, so a served prediction reads its inputs exactly as
`lamina predict` does (same resizing, resampling, tokenizing, column checks and error messages).

JSON bodies hold {"instances": [...]}: numbers for tables (rows as lists in the order of the run's columns, or
objects by column name) and arrays, strings for text, base64 strings for images and WAV files. Multipart bodies hold
files (PNG/JPEG, WAV, CSV, text), each checked against the run's kind of input by its content type and name.
No PyTorch here: the checks run before the model is asked.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

__all__ = ["ServeError", "Upload", "json_files", "upload_files", "ALLOWED_UPLOADS"]

# the content types accepted for an upload, per kind of input; application/octet-stream is judged by the file name
ALLOWED_UPLOADS = {
    "image": ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/tiff", "image/webp"),
    "audio": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "table": ("text/csv", "application/csv", "text/plain", "application/vnd.apache.parquet"),
    "text": ("text/plain", "text/csv", "text/tab-separated-values", "application/jsonl", "application/x-ndjson"),
    "arrays": ("application/x-npy", "application/octet-stream"),
}
SUFFIXES = {
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"),
    "audio": (".wav",),
    "table": (".csv", ".parquet", ".pq"),
    "text": (".txt", ".csv", ".tsv", ".jsonl"),
    "arrays": (".npy", ".npz"),
}
DEFAULT_SUFFIX = {"image": ".png", "audio": ".wav", "table": ".csv", "text": ".txt", "arrays": ".npy"}
JSON_FORMS = {
    "image": "base64 strings of PNG/JPEG files",
    "audio": "base64 strings of WAV files",
    "table": "rows: lists of numbers in the order of the run's columns, or objects by column name",
    "text": "non-empty strings",
    "arrays": "nested lists of numbers, each shaped as one training input",
}


class ServeError(Exception):
    """A client's mistake: the HTTP status, what was wrong, and what is allowed."""

    def __init__(self, status: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Upload:
    """One file of a multipart body."""

    name: str
    content_type: str | None
    data: bytes


def json_files(body: bytes, kind: str, columns: list[str] | None, folder: Path, max_instances: int) -> dict[Path, str]:
    """The instances of a JSON body written as files in `folder` (one file per image or WAV, one CSV for table rows,
    one text file for texts, one .npy for arrays), each with the name answers and errors call it by. ServeError
    (422) for a body of the wrong shape."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ServeError(422, f"the body is not valid JSON: {error}", 'send {"instances": [...]}') from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        received = type(document).__name__ if not isinstance(document, dict) else f"keys {sorted(document)}"
        raise ServeError(
            422,
            f'the JSON body needs a list "instances"; received {received}',
            f'send {{"instances": [...]}} with {JSON_FORMS[kind]}',
        )
    instances = document["instances"]
    if not instances:
        raise ServeError(422, '"instances" is empty', f"send at least one instance: {JSON_FORMS[kind]}")
    if len(instances) > max_instances:
        raise ServeError(
            413,
            f"{len(instances)} instances in one request, more than the limit of {max_instances}",
            "split them over several requests",
        )
    if kind in ("image", "audio"):
        return {
            _write(folder / f"{index}{DEFAULT_SUFFIX[kind]}", _decoded(item, index, kind)): f"instance {index}"
            for index, item in enumerate(instances)
        }
    if kind == "text":
        texts = "\n".join(_text(item, index) for index, item in enumerate(instances))
        return {_write(folder / "texts.txt", texts): "instances"}
    if kind == "table":
        return {_write(folder / "rows.csv", _table(instances, columns or [])): "instances"}
    if kind == "arrays":
        try:
            array = numpy.asarray(instances, dtype=numpy.float32)
        except (ValueError, TypeError) as error:
            raise ServeError(
                422, f"the instances are not a regular array of numbers: {error}", JSON_FORMS[kind]
            ) from None
        path = folder / "instances.npy"
        numpy.save(path, array)
        return {path: "instances"}
    raise ServeError(422, f"this run's inputs ({kind}) cannot be sent as JSON", "send them as files (multipart)")


def upload_files(uploads: list[Upload], kind: str, folder: Path, max_instances: int) -> dict[Path, str]:
    """The files of a multipart body written in `folder` (their suffix decides how `lamina predict` reads them),
    each with the name it was sent as. ServeError 415 for a file of another kind than the run's inputs."""
    if not uploads:
        raise ServeError(422, "the multipart body holds no files", f"send files in a field 'files': {_kinds(kind)}")
    if len(uploads) > max_instances:
        raise ServeError(
            413,
            f"{len(uploads)} files in one request, more than the limit of {max_instances}",
            "split them over several requests",
        )
    paths = {}
    for index, upload in enumerate(uploads):
        suffix = _suffix(upload, kind)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.name or "upload").stem)[:60] or "upload"
        paths[_write(folder / f"{index}" / f"{stem}{suffix}", upload.data)] = upload.name or f"file {index}"
    return paths


def _suffix(upload: Upload, kind: str) -> str:
    """The suffix the file is read by: its own when it fits the run's kind, else the kind's default when the content
    type is one of the kind's; otherwise ServeError 415."""
    suffix = Path(upload.name or "").suffix.lower()
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if suffix in SUFFIXES[kind] and content_type in (*ALLOWED_UPLOADS[kind], "application/octet-stream", ""):
        return suffix
    if content_type in ALLOWED_UPLOADS[kind]:
        return DEFAULT_SUFFIX[kind]
    raise ServeError(
        415,
        f"file {upload.name!r} ({content_type or 'no content type'}) is not of the kind this run reads: {kind}",
        _kinds(kind),
    )


def _kinds(kind: str) -> str:
    return f"send {kind} files: content types {', '.join(ALLOWED_UPLOADS[kind])}, or names ending in " + ", ".join(
        SUFFIXES[kind]
    )


def _decoded(item: Any, index: int, kind: str) -> bytes:
    if not isinstance(item, str):
        raise ServeError(422, f"instance {index} is a {type(item).__name__}, not a base64 string", JSON_FORMS[kind])
    text = item.split(",", 1)[1] if item.startswith("data:") else item  # a data URL: data:image/png;base64,....
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ServeError(422, f"instance {index} is not valid base64: {error}", JSON_FORMS[kind]) from None


def _text(item: Any, index: int) -> str:
    if not isinstance(item, str):
        raise ServeError(422, f"instance {index} is a {type(item).__name__}, not a string", JSON_FORMS["text"])
    line = " ".join(item.split())  # one text per line: line breaks inside a text become spaces
    if not line:
        raise ServeError(422, f"instance {index} is an empty text", "send texts with at least one visible character")
    return line


def _table(rows: list[Any], columns: list[str]) -> str:
    """The rows as CSV text under a header of the run's columns."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(columns)
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            unknown = [name for name in row if name not in columns]
            missing = [name for name in columns if name not in row]
            if unknown or missing:
                problem = f"unknown columns {unknown[:5]}" if unknown else f"missing columns {missing[:5]}"
                raise ServeError(422, f"row {index} has {problem}", f"the run's columns: {', '.join(columns)}")
            row = [row[name] for name in columns]
        if not isinstance(row, list) or len(row) != len(columns):
            size = len(row) if isinstance(row, list) else type(row).__name__
            raise ServeError(
                422,
                f"row {index} has {size} values, but the run has {len(columns)} columns",
                f"send lists in the order {', '.join(columns)}, or objects by column name",
            )
        for value in row:
            if value is not None and not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ServeError(422, f"row {index} holds {value!r}", "values are numbers, strings or null (missing)")
        writer.writerow(["" if value is None else value for value in row])
    return output.getvalue()


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)  # a private temporary folder: no reader races
    return path
