"""Text: a plain-text corpus for language modeling, and labelled text (TSV/CSV) for classification.

Tokenizers are trained on the train split only and saved with the run (data.json). Language-model splits are
contiguous stretches of the text (train first, then val, then test, as nanoGPT's 90/10 split); an epoch is
`windows_per_epoch` windows at random offsets drawn from (seed, epoch), so resuming replays them exactly.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import Tensor

from lamina.core.errors import DataError, did_you_mean
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.checks import read_utf8
from lamina.data.options import LabelledTextOptions, TextOptions
from lamina.data.paths import data_path
from lamina.data.spec import DataSpec
from lamina.data.tokenizers import CharacterTokenizer, encode_texts, tokenizer_from_dict, train_tokenizer

__all__ = ["TrimPadding", "pad_sequences", "read_texts", "text_windows", "random_windows", "text", "labelled_text"]


class TrimPadding:
    """(B, L) token ids padded on the right → (B, L') with the columns that are padding in every row removed,
    so a batch of short messages costs what short messages cost."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, tokens: Tensor) -> Tensor:
        used = (tokens != self.pad_id).any(dim=0)  # (L,)
        length = int(used.nonzero().max()) + 1 if bool(used.any()) else 1
        return tokens[:, :length]


def pad_sequences(sequences: list[list[int]], max_length: int, pad_id: int) -> Tensor:
    """Token lists → (N, L) int64, truncated to `max_length` and right-padded with `pad_id` to the longest."""
    length = max(1, min(max_length, max((len(s) for s in sequences), default=1)))
    padded = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        sequence = sequence[:length]
        padded[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return padded


def _read_file(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"text file {str(path)!r} does not exist", "check data.path (relative to where you run lamina)")
    # newlines translated as Path.read_text does (\r\n and \r become \n)
    return read_utf8(path).replace("\r\n", "\n").replace("\r", "\n")


# ---- language modeling -----------------------------------------------------------------------------------


def text_windows(tokens: Tensor, context: int, limit: int | None = None) -> Split:
    """Non-overlapping windows of `context` tokens → Split(inputs (N, T), targets (N, T) = inputs shifted by one),
    so every token of an evaluation split is predicted exactly once."""
    starts = torch.arange(0, len(tokens) - context, context)[:limit]
    index = starts[:, None] + torch.arange(context)  # (N, T)
    return Split(tokens[index], tokens[index + 1])


def random_windows(tokens: Tensor, context: int, count: int, seed: int, epoch: int) -> Split:
    """`count` windows at uniformly random offsets, drawn from (seed, epoch) alone (nanoGPT's get_batch)."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7919 + 17)
    starts = torch.randint(len(tokens) - context, (count,), generator=generator)
    index = starts[:, None] + torch.arange(context)  # (N, T)
    return Split(tokens[index], tokens[index + 1])


def text(config: TextOptions, seed: int) -> DataBundle:
    """Plain text for language modeling (tiny shakespeare, your corpus): next-token prediction."""
    path = data_path(config.path)
    corpus = _read_file(path)
    train_end = int(len(corpus) * (1 - config.val_fraction - config.test_fraction))
    val_end = int(len(corpus) * (1 - config.test_fraction))
    parts = {"train": corpus[:train_end], "val": corpus[train_end:val_end], "test": corpus[val_end:]}
    if config.test_fraction == 0:
        del parts["test"]
    if config.tokenizer == "character":  # an unknown token only when val/test hold characters train lacks
        unseen = set("".join(parts.values())) - set(parts["train"])
        tokenizer = CharacterTokenizer.train([parts["train"]], padding=False, unknown=bool(unseen))
    else:
        tokenizer = train_tokenizer(config.tokenizer, [parts["train"]], config.vocab_size, padding=False)
    streams = {name: torch.tensor(tokenizer.encode(part), dtype=torch.long) for name, part in parts.items()}
    for name, stream in streams.items():
        if len(stream) <= config.context + 1:
            raise DataError(
                f"the {name} part of {path} has {len(stream)} tokens, fewer than a window of {config.context + 1}",
                "use a longer text or a smaller data.context",
            )
    context, count, train_stream = config.context, config.windows_per_epoch, streams["train"]

    def epoch_split(run_seed: int, epoch: int) -> Split:
        return random_windows(train_stream, context, count, run_seed, epoch)

    splits = {"train": epoch_split(seed, 0)}
    for name in [name for name in streams if name != "train"]:
        splits[name] = text_windows(streams[name], context, config.eval_windows)
    spec = DataSpec(
        kind="text",
        task="language_modeling",
        input_shape=(context,),
        num_classes=tokenizer.size,
        output_size=tokenizer.size,
        extra={
            "vocab_size": tokenizer.size,
            "pad_id": None,
            "context": context,
            "token_bytes": tokenizer.byte_lengths(),
        },
    )
    preprocessing = {
        "type": "text",
        "tokenizer": tokenizer.to_dict(),
        "max_length": context,
        "source": {"dataset": "text", "path": str(path)},
    }
    sizes = ", ".join(f"{name} {len(stream):,}" for name, stream in streams.items())
    notes = [f"{config.tokenizer} tokenizer, {tokenizer.size} tokens; tokens per split: {sizes}"]
    return DataBundle(spec, splits, preprocessing, _identity, notes, epoch_split=epoch_split)


def _identity(inputs: Tensor) -> Tensor:
    return inputs


# ---- labelled text (classification) ------------------------------------------------------------------------


def read_labelled(path: Path, config: LabelledTextOptions) -> tuple[list[str], list[str]]:
    """(texts, labels) of a TSV/CSV file; tab-separated files are split on tabs only (quotes are text)."""
    content = _read_file(path)
    separator = config.separator or ("," if path.suffix.lower() == ".csv" else "\t")
    rows, lines = [], []  # the rows that are not blank, and their line numbers
    if separator == "\t":
        for line, text in enumerate(content.splitlines(), start=1):
            if text.strip():
                rows.append(text.split("\t"))
                lines.append(line)
    else:
        reader, previous = csv.reader(content.splitlines(), delimiter=separator), 0
        try:
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(previous + 1)
                previous = reader.line_num
        except csv.Error as error:
            raise DataError(f"{path}, line {reader.line_num}: {error}", "check the quoting on that line") from None
    if not rows:
        raise DataError(f"{path} is empty", "one labelled text per line, after a header line (data.header)")
    header = rows.pop(0) if config.header else []
    lines = lines[1:] if config.header else lines
    columns = []
    for option in ("text_column", "label_column"):
        column = getattr(config, option)
        if isinstance(column, str):
            if column not in header:
                guess = did_you_mean(column, header)
                hint = (f"did you mean {guess!r}? " if guess else "") + (
                    f"columns: {', '.join(header)}"
                    if header
                    else "the file has no header (header: false): give a 0-based column number"
                )
                raise DataError(f"data.{option}: {path} has no column {column!r}", hint)
            column = header.index(column)
        columns.append(column)
    text_index, label_index = columns
    width = len(header) if header else max(columns) + 1
    texts, labels = [], []
    for line, row in zip(lines, rows, strict=True):
        if len(row) <= max(text_index, label_index):
            raise DataError(
                f"{path}, line {line}: {len(row)} fields, expected at least {max(columns) + 1}",
                f"check data.separator ({separator!r})",
            )
        text = row[text_index]
        if len(row) > width and text_index == width - 1:  # the separator also occurs inside the last column
            text = separator.join(row[text_index:])
        texts.append(text.lower() if config.lowercase else text)
        labels.append(row[label_index].strip())
    if len(texts) < 4:
        raise DataError(f"{path} has {len(texts)} labelled texts", "a classifier needs at least a few per class")
    return texts, labels


def labelled_text(config: LabelledTextOptions, seed: int) -> DataBundle:
    """Text classification from a TSV/CSV file (SMS spam, reviews, ...)."""
    path = data_path(config.path)
    texts, labels = read_labelled(path, config)
    class_names = sorted(set(labels))
    if len(class_names) < 2:
        raise DataError(f"{path} has a single label {class_names[0]!r}", "classification needs at least two classes")
    lookup = {name: i for i, name in enumerate(class_names)}
    targets = torch.tensor([lookup[label] for label in labels])
    fractions = {"test": config.test_fraction, "val": config.val_fraction}
    index = split_indices(targets, len(targets), fractions, seed, config.stratify)
    tokenizer = train_tokenizer(
        config.tokenizer, [texts[i] for i in index["train"].tolist()], config.vocab_size, padding=True
    )
    encoded = pad_sequences(encode_texts(tokenizer, texts), config.max_length, tokenizer.pad_id)
    splits = {name: Split(encoded[rows], targets[rows]) for name, rows in index.items()}
    truncated = sum(len(ids) > config.max_length for ids in encode_texts(tokenizer, texts))
    spec = DataSpec(
        kind="text",
        task="classification",
        input_shape=(encoded.shape[1],),
        num_classes=len(class_names),
        class_names=class_names,
        extra={"vocab_size": tokenizer.size, "pad_id": tokenizer.pad_id},
    )
    preprocessing = {
        "type": "text",
        "tokenizer": tokenizer.to_dict(),
        "max_length": encoded.shape[1],
        "lowercase": config.lowercase,
        "text_column": config.text_column,
        "source": {"dataset": "labelled_text", "path": str(path)},
    }
    notes = [
        f"{config.tokenizer} tokenizer, {tokenizer.size} tokens; {truncated} texts truncated to "
        f"{config.max_length} tokens"
    ]
    return DataBundle(
        spec, {k: splits[k] for k in ("train", "val", "test")}, preprocessing, TrimPadding(tokenizer.pad_id), notes
    )


def read_texts(paths: list[Path], preprocessing: dict) -> tuple[Tensor, list[str]]:
    """Texts for `lamina predict`: a CSV (its text column) or a plain file of one text per line."""
    tokenizer = tokenizer_from_dict(preprocessing["tokenizer"])
    texts: list[str] = []
    for path in paths:
        if path.suffix.lower() == ".csv":
            rows = [row for row in csv.reader(_read_file(path).splitlines()) if row]
            column = preprocessing.get("text_column", "text")
            if isinstance(column, int):  # trained on a file without a header: the same column, no header here
                texts += [row[column] for row in rows if len(row) > column]
                continue
            if column not in rows[0]:
                raise DataError(
                    f"{path} has no column {column!r}",
                    f"columns: {', '.join(rows[0])}; or pass a .txt file, one text per line",
                )
            texts += [row[rows[0].index(column)] for row in rows[1:]]
        else:
            texts += [line for line in _read_file(path).splitlines() if line.strip()]
    if preprocessing.get("lowercase"):
        texts = [text.lower() for text in texts]
    if tokenizer.pad_id is None:
        raise DataError("this run is a language model", "use 'lamina generate RUN_DIR --prompt ...' instead")
    encoded = pad_sequences(encode_texts(tokenizer, texts), preprocessing["max_length"], tokenizer.pad_id)
    return encoded, [text if len(text) <= 40 else text[:37] + "..." for text in texts]
