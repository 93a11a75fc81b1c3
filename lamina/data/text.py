"""Text: a plain-text corpus for language modeling, and labelled texts (TSV/CSV/JSONL, lamina/data/labelled_files.py)
for classification — or, to pretrain a classifier (ULMFiT), a language model of those texts.

Tokenizers are trained on the train split only and saved with the run (data.json); a classifier can take the
tokenizer of the language model it starts from (data.tokenizer_from). Language-model splits are contiguous
stretches of the text (train first, then val, then test, as nanoGPT's 90/10 split); an epoch is
`windows_per_epoch` windows at random offsets drawn from (seed, epoch), so resuming replays them exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lamina.core.errors import DataError, resolved
from lamina.data.bundle import DataBundle, Split, split_indices
from lamina.data.file_checks import read_utf8
from lamina.data.groups import read_groups, split_groups
from lamina.data.labelled_files import LabelledTexts, class_targets, is_jsonl, read_labelled
from lamina.data.lines import delimited_rows, split_lines
from lamina.data.ngrams import NgramTokenizer
from lamina.data.paths import data_files, data_path
from lamina.data.spec import DataSpec
from lamina.data.text_options import LabelledTextOptions, LanguageModelWindows, TextOptions
from lamina.data.tokenizers import CharacterTokenizer, encode_texts, tokenizer_from_dict, train_tokenizer

__all__ = [
    "TrimPadding",
    "pad_sequences",
    "read_texts",
    "read_text_file",
    "text_windows",
    "random_windows",
    "language_model_bundle",
    "text",
    "labelled_text",
    "labelled_splits",
    "tokenizer_of_run",
]


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


def read_text_file(path: Path) -> str:
    """A text file's content, its line breaks `\n` (a `\r\n` becomes `\n`; lamina/data/lines.py)."""
    if not path.is_file():
        raise DataError(
            f"text file {str(path)!r} does not exist{resolved(path)}",
            "check data.path (relative to where you run lamina)",
        )
    return read_utf8(path).replace("\r\n", "\n")


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


def language_model_bundle(
    parts: dict[str, str], tokenizer, windows: LanguageModelWindows, seed: int, source: dict, described: str
) -> DataBundle:
    """Text split into parts ('train', 'val' and maybe 'test') → token streams → windows: random training windows
    drawn afresh each epoch, every non-overlapping window of the other parts."""
    streams = {name: torch.tensor(tokenizer.encode(part), dtype=torch.long) for name, part in parts.items()}
    for name, stream in streams.items():
        if len(stream) <= windows.context + 1:
            raise DataError(
                f"the {name} part of the text has {len(stream)} tokens, fewer than a window of {windows.context + 1}",
                "use a longer text or a smaller context",
            )
    context, count, train_stream = windows.context, windows.windows_per_epoch, streams["train"]

    def epoch_split(run_seed: int, epoch: int) -> Split:
        return random_windows(train_stream, context, count, run_seed, epoch)

    splits = {"train": epoch_split(seed, 0)}
    for name in [name for name in streams if name != "train"]:
        splits[name] = text_windows(streams[name], context, windows.eval_windows)
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
        "language_model": True,
        "source": source,
    }
    sizes = ", ".join(f"{name} {len(stream):,}" for name, stream in streams.items())
    notes = [f"{described}, {tokenizer.size} tokens; tokens per split: {sizes}"]
    return DataBundle(spec, splits, preprocessing, _identity, notes, epoch_split=epoch_split)


def text(config: TextOptions, seed: int) -> DataBundle:
    """Plain text for language modeling (tiny shakespeare, your corpus): next-token prediction."""
    path = data_path(config.path)
    corpus = read_text_file(path)
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
    source = {"dataset": "text", "path": str(path)}
    return language_model_bundle(parts, tokenizer, config, seed, source, f"{config.tokenizer} tokenizer")


def _identity(inputs: Tensor) -> Tensor:
    return inputs


# ---- labelled text (classification, or a language model of its texts) --------------------------------------


def labelled_splits(config: LabelledTextOptions, seed: int) -> tuple[LabelledTexts, Tensor, list[str], dict]:
    """The texts as read, their class indices (N,), the class names, and the row indices of each split (train,
    val, test) — the split every run of this data with this seed has (bench/ uses it for other learners)."""
    read = read_labelled(config)
    targets, class_names = class_targets(read, config.class_names)
    if len(set(targets)) < 2:
        raise DataError(
            f"every text of data.path is labelled {class_names[targets[0]]!r}", "classification needs two classes"
        )
    targets = torch.tensor(targets)
    fractions = {"test": config.test_fraction, "val": config.val_fraction}
    return read, targets, class_names, split_indices(targets, len(targets), fractions, seed, config.stratify)


def labelled_text(config: LabelledTextOptions, seed: int) -> DataBundle:
    """Text classification from TSV/CSV/JSONL files (SMS spam, reviews, ...)."""
    read, targets, class_names, index = labelled_splits(config, seed)
    source = {"dataset": "labelled_text", "path": [str(path) for path in data_files(config.path, "data.path")]}
    train_texts = [read.texts[i] for i in index["train"].tolist()]
    if config.language_model is not None:
        return _language_model_of_texts(config, read, index, seed, source)
    tokenizer = _tokenizer(config, train_texts, padding=True)
    ids = encode_texts(tokenizer, read.texts)
    encoded = pad_sequences(ids, config.max_length, tokenizer.pad_id)
    splits = {name: Split(encoded[rows], targets[rows]) for name, rows in index.items()}
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
        "source": source,
    }
    truncated = sum(len(sequence) > config.max_length for sequence in ids)
    notes = [
        *read.notes,
        f"{_kind(config)} tokenizer, {tokenizer.size} tokens; {truncated} texts truncated to {config.max_length} tokens",
    ]
    texts = {name: [read.texts[i] for i in rows.tolist()] for name, rows in index.items()}
    return DataBundle(
        spec,
        {k: splits[k] for k in ("train", "val", "test")},
        preprocessing,
        TrimPadding(tokenizer.pad_id),
        notes,
        texts=texts,
        groups=split_groups(read_groups(config.groups, columns=read.groups, described="the text files"), index),
    )


def _language_model_of_texts(
    config: LabelledTextOptions, read: LabelledTexts, index: dict, seed: int, source: dict
) -> DataBundle:
    """The train split's texts (one per line) and unlabelled_text for training, the val split's for validation."""
    options = config.language_model
    extra = [
        read_text_file(path) for path in data_files(options.unlabelled_text, "data.language_model.unlabelled_text")
    ]
    if config.lowercase:
        extra = [text.lower() for text in extra]
    parts = {name: "\n".join(read.texts[i] for i in index[name].tolist()) + "\n" for name in ("train", "val")}
    parts["train"] = "".join([parts["train"], *(text if text.endswith("\n") else text + "\n" for text in extra)])
    # with a padding token, so that classifiers of the same texts can use this tokenizer (data.tokenizer_from)
    tokenizer = _tokenizer(config, [read.texts[i] for i in index["train"].tolist()] + extra, padding=True)
    if isinstance(tokenizer, NgramTokenizer):
        raise DataError(
            f"data.tokenizer_from: {config.tokenizer_from!r} tokenizes into n-grams, which a language model cannot "
            "predict one after another",
            "pretrain with tokenizer: bpe or character",
        )
    files = f" and {len(extra)} unlabelled files" if extra else ""
    bundle = language_model_bundle(parts, tokenizer, options, seed, source, f"{_kind(config)} tokenizer")
    bundle.notes[:0] = [*read.notes, f"a language model of the train split's texts{files}; labels unused"]
    return bundle


def _kind(config: LabelledTextOptions) -> str:
    return f"{config.tokenizer_from}'s" if config.tokenizer_from else config.tokenizer


def _tokenizer(config: LabelledTextOptions, texts: list[str], padding: bool):
    if config.tokenizer_from is not None:
        return tokenizer_of_run(config.tokenizer_from)
    return train_tokenizer(config.tokenizer, texts, config.vocab_size, padding=padding, ngrams=config.ngrams)


def tokenizer_of_run(source: str):
    """The tokenizer a run folder's data was tokenized with (its data.json), for data.tokenizer_from."""
    record_path = data_path(source) / "data.json"
    try:
        record = json.loads(record_path.read_text())
        saved = record["preprocessing"]["tokenizer"]
    except FileNotFoundError:
        raise DataError(
            f"data.tokenizer_from: {source!r} is not a run folder (it has no data.json)",
            "give the folder of a finished run trained on text, e.g. runs/<language model run>",
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"data.tokenizer_from: the run {source!r} has no tokenizer in its data.json", None) from None
    if not saved.get("padding", False):
        raise DataError(
            f"data.tokenizer_from: the tokenizer of {source!r} has no padding token (a language model of data: text)",
            "pretrain on data: {name: labelled_text, language_model: {unlabelled_text: [your corpus]}} instead; "
            "its tokenizer pads",
        )
    return tokenizer_from_dict(saved)


# ---- texts to classify (lamina predict) ---------------------------------------------------------------------


def read_texts(paths: list[Path], preprocessing: dict, tokenizer: Any = None) -> tuple[Tensor, list[str]]:
    """Texts for `lamina predict`, each line one text: plain files, the text column of CSV/TSV files (the training
    column: by name from a header, or by number in files without one), or the text field of JSONL files.
    `tokenizer`: the run's, already built (a server reads many requests: building a BPE tokenizer for each costs
    5 ms and leaks about 3 KB in the tokenizers library)."""
    tokenizer = tokenizer or tokenizer_from_dict(preprocessing["tokenizer"])
    if tokenizer.pad_id is None or preprocessing.get("language_model"):
        raise DataError("this run is a language model", "use 'lamina generate RUN_DIR --prompt ...' instead")
    column = preprocessing.get("text_column", "text")
    texts: list[str] = []
    for path in paths:
        lines, suffix = split_lines(read_text_file(path)), path.suffix.lower()
        if is_jsonl(path, "auto"):
            texts += _jsonl_texts(path, lines, column if isinstance(column, str) else "text")
        elif suffix in (".csv", ".tsv"):
            if suffix == ".csv":
                rows = delimited_rows(lines, ",", path)[0]
            else:  # tabs only: quotes are text, as in training
                rows = [line.split("\t") for line in lines if line.strip()]
            if isinstance(column, int):  # trained on files without a header: the same column, no header here
                texts += [row[column] for row in rows if len(row) > column]
                continue
            if not rows or column not in rows[0]:
                raise DataError(
                    f"{path} has no column {column!r}",
                    f"columns: {', '.join(rows[0]) if rows else 'none'}; or pass a .txt file, one text per line",
                )
            texts += [row[rows[0].index(column)] for row in rows[1:] if len(row) > rows[0].index(column)]
        else:
            texts += [line for line in lines if line.strip()]
    if preprocessing.get("lowercase"):
        texts = [text.lower() for text in texts]
    encoded = pad_sequences(encode_texts(tokenizer, texts), preprocessing["max_length"], tokenizer.pad_id)
    return encoded, [text if len(text) <= 40 else text[:37] + "..." for text in texts]


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
