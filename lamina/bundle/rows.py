"""Texts and table rows → the stored form a bundle's model takes, in numpy and without PyTorch: token ids padded
as lamina/data/text.py read_texts pads them, and CSV rows encoded as lamina/data/tabular.py TableEncoder encodes
them (from the encoder's JSON record in data.json). Deliberate copies, checked against lamina's own readers in
tests/test_bundle.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy

from lamina.core.errors import DataError, resolved
from lamina.data.file_checks import read_utf8
from lamina.data.lines import delimited_rows, separator_hint, split_lines
from lamina.data.ngrams import NgramTokenizer

__all__ = ["read_texts", "encode_texts", "pad_sequences", "trim_padding", "read_rows", "encode_rows"]

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}  # lamina/data/columns.py
PAD, UNKNOWN = "<pad>", "<unk>"  # lamina/data/tokenizers.py
JSONL_SUFFIXES = (".jsonl", ".ndjson")


# ---- texts ---------------------------------------------------------------------------------------------


def read_texts(paths: list[Path], preprocessing: dict) -> tuple[numpy.ndarray, list[str]]:
    """int64 (N, L) token ids of the texts in `paths` (each line one text: plain files, the text column of CSV/TSV
    files, the text field of JSONL files), padded with the pad id, and a short label per text."""
    record = preprocessing["tokenizer"]
    if preprocessing.get("language_model") or not record.get("padding", True):
        raise DataError("this bundle holds a language model", "run it on token ids with Bundle.run(ids) instead")
    column = preprocessing.get("text_column", "text")
    texts: list[str] = []
    for path in paths:
        lines, suffix = split_lines(read_utf8(path).replace("\r\n", "\n")), path.suffix.lower()
        if suffix in JSONL_SUFFIXES:
            texts += _jsonl_texts(path, lines, column if isinstance(column, str) else "text")
        elif suffix in (".csv", ".tsv"):
            rows = (
                delimited_rows(lines, ",", path)[0]
                if suffix == ".csv"
                else [line.split("\t") for line in lines if line.strip()]
            )  # tabs only: quotes are text, as in training
            if isinstance(column, int):
                texts += [row[column] for row in rows if len(row) > column]
                continue
            if not rows or column not in rows[0]:
                raise DataError(
                    f"{path} has no column {column!r}",
                    f"columns: {', '.join(rows[0]) if rows else 'none'}; or pass a .txt file, one text per line",
                )
            position = rows[0].index(column)
            texts += [row[position] for row in rows[1:] if len(row) > position]
        else:
            texts += [line for line in lines if line.strip()]
    if preprocessing.get("lowercase"):
        texts = [text.lower() for text in texts]
    padded = pad_sequences(encode_texts(record, texts), preprocessing["max_length"], pad_id(record))
    return padded, [text if len(text) <= 40 else text[:37] + "..." for text in texts]


def pad_id(record: dict) -> int:
    """The padding id of a tokenizer record: 0 for character and n-gram tokenizers, the id of <pad> for BPE."""
    if record["type"] != "bpe":
        return 0
    return next(token["id"] for token in record["tokenizer"]["added_tokens"] if token["content"] == PAD)


def encode_texts(record: dict, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, by the tokenizer saved in a run's data.json (character, n-grams or bpe)."""
    if record["type"] == "character":
        index = {token: i for i, token in enumerate(record["vocabulary"])}
        if record["unknown"]:
            fallback = index[UNKNOWN]
            return [[index.get(character, fallback) for character in text] for text in texts]
        for text in texts:
            unknown = [character for character in text if character not in index]
            if unknown:
                raise DataError(
                    f"character {unknown[0]!r} is not in the tokenizer's vocabulary (it never occurs in the "
                    "training text)",
                    "remove it from the text or prompt",
                )
        return [[index[character] for character in text] for text in texts]
    tokenizer = _built(record)
    if record["type"] == "ngrams":
        return [tokenizer.encode(text) for text in texts]
    return [encoding.ids for encoding in tokenizer.encode_batch(texts)]


_BUILT: dict[int, tuple[dict, Any]] = {}  # id(record) → (record, its tokenizer): a server encodes texts per request


def _built(record: dict) -> Any:
    """The n-gram or bpe tokenizer of `record`, built once per record: building a BPE tokenizer for every request
    costs milliseconds and memory the tokenizers library does not give back (a serving process grew 13 % over
    10,000 requests)."""
    kept = _BUILT.get(id(record))
    if kept is not None and kept[0] is record:
        return kept[1]
    if record["type"] == "ngrams":
        tokenizer = NgramTokenizer.from_dict(record)
    else:
        try:
            import tokenizers
        except ImportError:
            raise DataError(
                "this bundle's bpe tokenizer needs the package 'tokenizers', which is not installed",
                "install it: pip install tokenizers",
            ) from None
        tokenizer = tokenizers.Tokenizer.from_str(json.dumps(record["tokenizer"]))
    if len(_BUILT) >= 8:  # a few bundles per process at most; forget the oldest
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[id(record)] = (record, tokenizer)
    return tokenizer


def pad_sequences(sequences: list[list[int]], max_length: int, pad: int) -> numpy.ndarray:
    """Token lists → (N, L) int64, truncated to `max_length` and right-padded with `pad` to the longest."""
    length = max(1, min(max_length, max((len(s) for s in sequences), default=1)))
    padded = numpy.full((len(sequences), length), pad, dtype=numpy.int64)
    for row, sequence in enumerate(sequences):
        sequence = sequence[:length]
        padded[row, : len(sequence)] = sequence
    return padded


def trim_padding(tokens: numpy.ndarray, pad: int) -> numpy.ndarray:
    """(B, L) ids → (B, L') without the columns that are padding in every row (lamina/data/text.py TrimPadding,
    which a run applies to each batch before its model)."""
    used = (tokens != pad).any(axis=0)  # (L,)
    length = int(numpy.nonzero(used)[0].max()) + 1 if used.any() else 1
    return tokens[:, :length]


def _jsonl_texts(path: Path, lines: list[str], field: str) -> list[str]:
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, strict=False)
        except ValueError as error:
            raise DataError(f"{path}, line {number} is not JSON: {error}", "one JSON object per line") from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise DataError(f"{path}, line {number} has no text field {field!r}", "one JSON object per line")
        texts.append(record[field])
    return texts


def read_rows(paths: list[Path], preprocessing: dict) -> tuple[numpy.ndarray, list[str]]:
    """float32 (N, F) encoded rows of CSV files, labelled FILE:LINE; DataError for a file lacking feature columns."""
    encoder = preprocessing["encoder"]
    needed = [*encoder["numeric"], *encoder["categorical"]]
    batches, labels = [], []
    for path in paths:
        if path.suffix.lower() in (".parquet", ".pq"):
            raise DataError(f"{path} is a Parquet file", "a bundle reads CSV files: save the rows as CSV")
        header, columns, lines = read_table_lines(path)
        missing = [name for name in needed if name not in header]
        if missing:
            raise DataError(
                f"{path} lacks the feature columns {', '.join(missing[:5])}"
                + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""),
                "the CSV needs the same feature columns as the training data",
            )
        batches.append(encode_rows(encoder, columns))
        labels += [f"{path.name}:{line}" for line in lines]
    return numpy.concatenate(batches), labels


def encode_rows(encoder: dict, columns: dict[str, list]) -> numpy.ndarray:
    """(N, F) float32 features from raw columns, by a TableEncoder's record {"numeric": {name: {mean, std,
    median}}, "categorical": {name: [categories]}}: (x − mean) / std with missing values at the train median,
    then a one-hot block per categorical column (all zeros for a category not seen in training)."""
    parts = []
    for name, stats in encoder["numeric"].items():
        values = numpy.asarray([_as_float(value, name) for value in columns[name]], dtype=numpy.float64)
        values = numpy.where(numpy.isnan(values), stats["median"], values)
        parts.append(((values - stats["mean"]) / stats["std"])[:, None])
    for name, categories in encoder["categorical"].items():
        lookup = {category: i for i, category in enumerate(categories)}
        one_hot = numpy.zeros((len(columns[name]), len(categories)))
        for row, value in enumerate(columns[name]):
            if value in lookup:
                one_hot[row, lookup[value]] = 1.0
        parts.append(one_hot)
    return numpy.concatenate(parts, axis=1).astype(numpy.float32)


def read_table_lines(path: Path, separator: str = ",") -> tuple[list[str], dict[str, list[str]], list[int]]:
    """Header, columns (as strings) and each row's line number (lamina/data/tabular.py read_table_lines)."""
    if not path.is_file():
        raise DataError(
            f"CSV file {str(path)!r} does not exist{resolved(path)}",
            "check data.path (relative to where you run lamina)",
        )
    file_lines = split_lines(read_utf8(path, "CSV file ", strip_bom=True))
    rows, lines = delimited_rows(file_lines, separator, path, "CSV file ")
    if len(rows) < 2:
        raise DataError(f"CSV file {path} has no data rows", "the first line must be a header, then one row per sample")
    header = [name.strip() for name in rows[0]]
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise DataError(
                f"CSV file {path} has two columns named {name!r}: columns {seen[name]} and {position}",
                "rename one of them; column names must be unique",
            )
        seen[name] = position
    for line, row in zip(lines[1:], rows[1:], strict=True):
        if len(row) != len(header):
            raise DataError(
                f"CSV file {path}, line {line}: {len(row)} fields, but the header has {len(header)}",
                separator_hint(file_lines[line - 1], separator, len(header))
                or (
                    "a field holds the separator without quotes around it: quote that field"
                    if len(row) > len(header)
                    else "a value is missing on that line: add it (an empty field keeps its separator)"
                ),
            )
    return header, {name: [row[i].strip() for row in rows[1:]] for i, name in enumerate(header)}, lines[1:]


def _as_float(value, column: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if text.strip().lower() in MISSING:
        return math.nan
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is None or math.isinf(number):
        raise DataError(
            f"column {column!r} holds {value!r}, which is not a finite number", "fix the value or leave it empty"
        )
    return number
