"""Explanations of text classifiers (rnn, transformer, fasttext on labelled_text): one score per token position.

Baseline: the padding token at every position. Attributions move each token's embedding from the padding
token's to its own while the model keeps reading the text's real length and padding mask (lamina/insight/tokens.py),
so a token's score is what its embedding, instead of "nothing written", adds to the log-probability of the class.

Deleting a token removes it: the tokens after it close up and the row ends in one more padding token, as if it had
never been written. (In place, a padding token would be read as a word by the rnn family, which packs the first
`length` positions.) Padding positions score 0 and are never deleted.

fastText's hashed n-grams cannot be read back from their ids; when the texts are known (ExplainContext.texts),
each n-gram's score is shared among the words it came from (a word's own id and character n-grams count whole,
a word n-gram's score is split evenly among its words), so the page and the terminal show words. Without the
texts they show one piece per id: the known words, and the n-gram ids as '#n-gram BUCKET'.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from lamina.core.errors import DataError
from lamina.data.ngrams import NgramTokenizer, words_of
from lamina.data.tokenizers import tokenizer_from_dict
from lamina.insight.attention import attention_maps, attention_rollout, has_attention, write_attention
from lamina.insight.modality import ExplainContext, Explained
from lamina.insight.token_pages import TokenRow, terminal_lines, write_page
from lamina.insight.tokens import TOKEN_METHODS, token_attributions, token_texts

__all__ = [
    "TextModality",
    "ngram_owners",
    "remove_tokens",
    "file_name",
    "item_heading",
    "token_strings",
    "tokenizer_of",
]

ATTENTION_PICTURES = 16  # attention maps are drawn for the first inputs only (a PNG each)


def file_name(name: str) -> str:
    """An input's name (a file path, 'test:12') as a safe file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "input"


def remove_tokens(ids: Tensor, mask: Tensor, pad_id: int) -> Tensor:
    """(N, T) ids without the positions where `mask` is True: the kept tokens close up in their order and each row
    is padded on the right again. Padding is never removed.

    Example:
        >>> remove_tokens(torch.tensor([[5, 6, 7, 0]]), torch.tensor([[False, True, False, True]]), 0)
        tensor([[5, 7, 0, 0]])
    """
    keep = (ids != pad_id) & ~mask.to(ids.device)
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept positions first, in order
    return torch.where(keep, ids, torch.full_like(ids, pad_id)).gather(1, order)


def ngram_owners(tokenizer: NgramTokenizer, text: str, length: int) -> tuple[list[str], list[list[tuple[int, float]]]]:
    """The words of `text` and, for each of the first `length` ids `tokenizer.encode(text)` gives, the words it
    came from with their shares: (word index, 1) for a word's own id and its character n-grams, (index, 1/n) for
    each word of a word n-gram. The order follows NgramTokenizer.encode.

    Example:
        >>> tokenizer = NgramTokenizer.train(["win cash now"], 2, None, 100, 1)
        >>> ngram_owners(tokenizer, "win now", 10)
        (['win', 'now'], [[(0, 1.0)], [(1, 1.0)], [(0, 0.5), (1, 0.5)]])
    """
    words = words_of(text)
    owners: list[list[tuple[int, float]]] = [[(i, 1.0)] for i, word in enumerate(words) if word in tokenizer.index]
    for size in range(2, tokenizer.word_ngrams + 1):
        owners += [[(i + j, 1 / size) for j in range(size)] for i in range(len(words) - size + 1)]
    if tokenizer.char_ngrams:
        for i, word in enumerate(words):
            owners += [[(i, 1.0)] for _ in tokenizer._character_ids(word)]
    return words, owners[:length]


class TextModality:
    """Text classifiers: token attributions through the embedding, an HTML page, attention maps (transformers)."""

    kind = "text"
    methods = TOKEN_METHODS
    baseline_description = (
        "the padding token at every position (the model still reads the text's real length and padding mask); "
        "a deleted token is removed and the rest close up"
    )

    def _pad(self, context: ExplainContext) -> int:
        pad = context.pad_id if context.pad_id is not None else context.spec.extra.get("pad_id")
        if pad is None:
            raise DataError(
                "this text data has no padding token, the baseline of text explanations",
                "explain a classifier trained on labelled_text (its tokenizers pad)",
            )
        return int(pad)

    def baseline(self, context: ExplainContext) -> Tensor:
        return torch.full_like(context.inputs, self._pad(context))

    def attribute(
        self, model: nn.Module, inputs: Tensor, targets: Tensor, method: str, context: ExplainContext
    ) -> Tensor:
        pad = self._pad(context)
        baseline = torch.full_like(inputs, pad)
        return token_attributions(
            model, inputs, baseline, targets, method, False, context.layer, pad, context.extra.get("embedding_noise")
        )

    def delete(self, inputs: Tensor, mask: Tensor, context: ExplainContext) -> Tensor:
        return remove_tokens(inputs, mask, self._pad(context))

    # ---- what people see --------------------------------------------------------------------------------

    def _rows(self, items: list[Explained], context: ExplainContext) -> list[TokenRow]:
        pad, names = self._pad(context), context.spec.class_names
        texts = token_strings(context)
        tokenizer = tokenizer_of(context)
        rows = []
        for index, item in enumerate(items):
            ids = context.inputs[index].tolist()
            scores = item.attribution.flatten().tolist()
            real = [(position, i) for position, i in enumerate(ids) if i != pad]
            pieces = [(texts[i] if i < len(texts) else str(i), scores[position]) for position, i in real]
            if isinstance(tokenizer, NgramTokenizer) and context.texts is not None:
                pieces = _words(tokenizer, context, index, [scores[position] for position, _ in real]) or pieces
            elif isinstance(tokenizer, NgramTokenizer):
                pieces = [(f"{text} ", score) for text, score in pieces]
            rows.append(TokenRow(item.name, item_heading(item, names), pieces))
        return rows

    def write(self, folder: Path, items: list[Explained], method: str, context: ExplainContext) -> list[Path]:
        """tokens.html (one row per input) and, for transformers, attention/<input>.png for the first 16 inputs.
        `items[i]` explains `context.inputs[i]`."""
        notes = [f"method: {method}; baseline: {self.baseline_description}"]
        if isinstance(tokenizer_of(context), NgramTokenizer):
            notes.append(
                "fastText: n-gram scores summed into their words"
                if context.texts is not None
                else "fastText: one piece per input id (the texts were not given, so n-grams are not read back)"
            )
        paths = [write_page(folder / "tokens.html", self._rows(items, context), "Token attributions", notes)]
        return paths + write_attention_pictures(folder, items, context)

    def show(self, items: list[Explained], context: ExplainContext) -> str:
        names = context.spec.class_names
        return terminal_lines(self._rows(items, context), [_class(item.target, names) for item in items])


def _class(index: int | None, names: list[str] | None) -> str:
    if index is None:
        return "?"
    return names[index] if names and index < len(names) else str(index)


def item_heading(item: Explained, names: list[str] | None) -> str:
    true = f"true {_class(item.true_label, names)}, " if item.true_label is not None else ""
    return (
        f"{true}predicted {_class(item.predicted, names)} ({item.probability:.3f}); "
        f"explained: {_class(item.target, names)}"
    )


def _words(
    tokenizer: NgramTokenizer, context: ExplainContext, index: int, scores: list[float]
) -> list[tuple[str, float]]:
    """Each word of the input's text with the scores of its ids summed (shares as ngram_owners gives them); empty
    when the text does not encode to the input's ids (then the caller shows ids)."""
    text = context.texts[index]  # type: ignore[index]
    if (context.preprocessing or {}).get("lowercase"):
        text = text.lower()
    expected = tokenizer.encode(text)[: len(scores)]
    real = [i for i in context.inputs[index].tolist() if i != tokenizer.pad_id]
    if expected != real:
        return []
    words, owners = ngram_owners(tokenizer, text, len(scores))
    totals = [0.0] * len(words)
    for shares, score in zip(owners, scores, strict=True):
        for word, share in shares:
            totals[word] += share * score
    return [(f"{word} ", total) for word, total in zip(words, totals, strict=True)]


def tokenizer_of(context: ExplainContext):
    """The run's tokenizer (from context.preprocessing, built once per context), or None when it is not given."""
    if "tokenizer" not in context.extra:
        record = (context.preprocessing or {}).get("tokenizer")
        context.extra["tokenizer"] = tokenizer_from_dict(record) if record is not None else None
    return context.extra["tokenizer"]


def token_strings(context: ExplainContext) -> list[str]:
    """The text of each token id: context.tokens, else read from the run's tokenizer, else the ids as numbers."""
    if context.tokens is not None:
        return context.tokens
    if "token_texts" not in context.extra:
        tokenizer = tokenizer_of(context)
        vocabulary = int(context.spec.extra.get("vocab_size", 0))
        context.extra["token_texts"] = token_texts(tokenizer) if tokenizer is not None else []
        context.extra["token_texts"] += [str(i) for i in range(len(context.extra["token_texts"]), vocabulary)]
    return context.extra["token_texts"]


def write_attention_pictures(folder: Path, items: list[Explained], context: ExplainContext) -> list[Path]:
    """attention/<input>.png for the first inputs of a transformer (nothing for other families)."""
    model = context.model
    if not has_attention(model):
        return []
    count = min(len(items), ATTENTION_PICTURES)
    inputs = context.inputs[:count]
    maps = attention_maps(model, inputs)
    rollout = attention_rollout(maps)
    texts, pad = token_strings(context), context.pad_id if context.pad_id is not None else -1
    prefix = ["[CLS]"] if rollout.shape[-1] == inputs.shape[1] + 1 else []
    paths = []
    for index, item in enumerate(items[:count]):
        ids = inputs[index].tolist()
        steps = len(prefix) + sum(i != pad for i in ids)  # padding is cut from the picture
        tokens = prefix + [texts[i] if i < len(texts) else str(i) for i in ids if i != pad]
        path = folder / "attention" / f"{file_name(item.name)}.png"
        layers = [layer[index, :, :steps, :steps] for layer in maps]
        paths.append(write_attention(path, layers, rollout[index, :steps, :steps], tokens, f"attention: {item.name}"))
    return paths
