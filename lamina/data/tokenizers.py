"""Tokenizers: text ↔ token ids. Character-level, byte-level BPE trained on the train split (HF `tokenizers`), or
fastText's words and n-grams (lamina/data/ngrams.py).

A tokenizer is saved with its run as plain JSON (in data.json under preprocessing.tokenizer), never pickled:

    >>> tokenizer = CharacterTokenizer.train(["hello"], padding=False)
    >>> tokenizer.encode("hello"), tokenizer.decode([1, 0])
    ([1, 0, 2, 2, 3], 'he')
"""

from __future__ import annotations

import json
from typing import Any

from lamina.core.errors import DataError
from lamina.core.packages import install_command
from lamina.data.ngrams import NgramTokenizer

__all__ = ["CharacterTokenizer", "BPETokenizer", "train_tokenizer", "tokenizer_from_dict", "PAD"]

PAD, UNKNOWN = "<pad>", "<unk>"


class CharacterTokenizer:
    """One token per character. Ids follow the sorted characters of the training text, after the special tokens
    (padding for batches of unequal length, unknown for characters never seen in training)."""

    def __init__(self, vocabulary: list[str], padding: bool, unknown: bool):
        self.vocabulary, self.padding, self.unknown = vocabulary, padding, unknown
        self.index = {token: i for i, token in enumerate(vocabulary)}

    @classmethod
    def train(cls, texts: list[str], padding: bool = True, unknown: bool | None = None) -> CharacterTokenizer:
        """Vocabulary from `texts`. `unknown` (default: with padding) adds a token for unseen characters;
        without it, encoding an unseen character is an error (a language model's vocabulary stays exact)."""
        unknown = padding if unknown is None else unknown
        specials = ([PAD] if padding else []) + ([UNKNOWN] if unknown else [])
        return cls(specials + sorted(set("".join(texts))), padding, unknown)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    @property
    def pad_id(self) -> int | None:
        return 0 if self.padding else None

    def encode(self, text: str) -> list[int]:
        index = self.index
        if self.unknown:
            fallback = index[UNKNOWN]
            return [index.get(character, fallback) for character in text]
        try:
            return [index[character] for character in text]
        except KeyError as error:
            raise DataError(
                f"character {error.args[0]!r} is not in the tokenizer's vocabulary (it never occurs in "
                "the training text)",
                "remove it from the text or prompt",
            ) from None

    def decode(self, ids: list[int]) -> str:
        specials = {PAD, UNKNOWN}
        return "".join(self.vocabulary[i] for i in ids if self.vocabulary[i] not in specials)

    def byte_lengths(self) -> list[int]:
        """UTF-8 bytes each token stands for (0 for special tokens), for bits-per-character metrics."""
        return [0 if token in (PAD, UNKNOWN) else len(token.encode()) for token in self.vocabulary]

    def to_dict(self) -> dict:
        return {"type": "character", "vocabulary": self.vocabulary, "padding": self.padding, "unknown": self.unknown}


class BPETokenizer:
    """Byte-level BPE (GPT-2 style) from HF `tokenizers`: every text encodes, nothing is unknown."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: list[str], vocab_size: int, padding: bool = True) -> BPETokenizer:
        tokenizers = _require_tokenizers()
        model = tokenizers.Tokenizer(tokenizers.models.BPE())
        model.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        model.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[PAD] if padding else [],
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        model.train_from_iterator(texts, trainer=trainer)
        return cls(model)

    @property
    def size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int | None:
        return self.tokenizer.token_to_id(PAD)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def byte_lengths(self) -> list[int]:
        # byte-level tokens are strings over a 256-symbol alphabet: one symbol per byte
        vocabulary = self.tokenizer.get_vocab()
        lengths = [0] * self.size
        for token, index in vocabulary.items():
            lengths[index] = 0 if token == PAD else len(token)
        return lengths

    def to_dict(self) -> dict:
        return {"type": "bpe", "padding": self.pad_id is not None, "tokenizer": json.loads(self.tokenizer.to_str())}


def train_tokenizer(kind: str, texts: list[str], vocab_size: int, padding: bool, ngrams: Any = None):
    """A tokenizer of `kind` ('character', 'bpe' or 'ngrams') trained on `texts` (the train split only); `ngrams`
    holds the n-gram tokenizer's options (lamina.data.text_options.NgramOptions)."""
    if kind == "character":
        return CharacterTokenizer.train(texts, padding=padding)
    if kind == "ngrams":
        return NgramTokenizer.train(texts, ngrams.word_ngrams, ngrams.char_ngrams, ngrams.buckets, ngrams.min_count)
    return BPETokenizer.train(texts, vocab_size, padding=padding)


def tokenizer_from_dict(record: dict):
    """The tokenizer saved in a run's data.json."""
    if record["type"] == "character":
        return CharacterTokenizer(record["vocabulary"], record["padding"], record["unknown"])
    if record["type"] == "ngrams":
        return NgramTokenizer.from_dict(record)
    tokenizers = _require_tokenizers()
    return BPETokenizer(tokenizers.Tokenizer.from_str(json.dumps(record["tokenizer"])))


def encode_texts(tokenizer, texts: list[str]) -> list[list[int]]:
    if hasattr(tokenizer, "encode_batch"):
        return tokenizer.encode_batch(texts)
    return [tokenizer.encode(text) for text in texts]


def _require_tokenizers():
    try:
        import tokenizers
        import tokenizers.decoders
        import tokenizers.models
        import tokenizers.pre_tokenizers
        import tokenizers.trainers
    except ImportError:
        raise DataError(
            "the bpe tokenizer needs the package 'tokenizers', which is not installed",
            f"install it: {install_command('tokenizers')}; or use tokenizer: character",
        ) from None
    return tokenizers
