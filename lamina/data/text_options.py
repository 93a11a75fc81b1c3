"""Options of the text data sets: `text` (a corpus for language modeling) and `labelled_text` (texts with classes,
or their texts alone for a language model that pretrains a classifier). They are registered in
lamina/data/options.py, the list of built-in data sets; importing this module does not import PyTorch.
"""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lamina.core.options import Each, Names, Options
from lamina.data.base_options import DataOptions, SplitOptions

__all__ = [
    "TokenizerKind",
    "NgramOptions",
    "LanguageModelWindows",
    "LanguageModelOptions",
    "TextOptions",
    "LabelledTextOptions",
]

TokenizerKind = Literal["character", "bpe", "ngrams"]
Files = str | Names  # a file, a glob pattern, or a list of them


class NgramOptions(Options):
    """fastText's features: each text becomes its words, its word n-grams and the character n-grams of its words;
    words seen in training keep their own token, n-grams share `buckets` tokens by hashing."""

    word_ngrams: int = Field(2, ge=1, le=6)
    """Word n-grams up to this length (1: words alone; fastText's wordNgrams)."""
    char_ngrams: Annotated[tuple[int, int], Each(ge=1, le=12)] | None = (2, 5)
    """[shortest, longest] character n-grams of each word, marked with < and > at its start and end (fastText's
    minn, maxn); null: none."""
    buckets: int = Field(100_000, ge=1, le=16_777_216)
    """Hash buckets the word and character n-grams share (fastText's bucket); more buckets, fewer collisions."""
    min_count: int = Field(1, ge=1)
    """Words seen fewer times in the training split get no token of their own (their n-grams still count)."""

    @model_validator(mode="after")
    def _shortest_first(self):
        if self.char_ngrams is not None and self.char_ngrams[0] > self.char_ngrams[1]:
            raise ValueError(f"char_ngrams {list(self.char_ngrams)} must be [shortest, longest]")
        return self


class LanguageModelWindows(Options):
    """How a language model reads its text: windows of `context` tokens."""

    context: int = Field(64, ge=2)
    """Tokens per training window: the model's context length (nanoGPT's block_size)."""
    windows_per_epoch: int = Field(3000, ge=1)
    """Random training windows per epoch; validation runs after each epoch (3000 windows = 250 steps of 12)."""
    eval_windows: int | None = Field(None, ge=1)
    """Evaluate on at most this many windows per split (faster); default: every window of the split."""


class LanguageModelOptions(LanguageModelWindows):
    """A language model on the texts of a labelled data set (ULMFiT's pretraining)."""

    unlabelled_text: Files = []
    """More text for training (and for the tokenizer): plain-text files or glob patterns — more of your own
    texts, or any corpus."""


class TextOptions(DataOptions, LanguageModelWindows):
    """A plain-text corpus for next-token language modeling, split into contiguous train/val/test stretches."""

    name: Literal["text"] = "text"
    path: str
    """The text file (UTF-8)."""
    tokenizer: Literal["character", "bpe"] = "character"
    """character (one token per character) or bpe (byte-level BPE trained on the train split)."""
    vocab_size: int = Field(1024, ge=260)
    """Vocabulary size of the bpe tokenizer (ignored by character)."""
    val_fraction: float = Field(0.1, ge=0, lt=1)
    """Fraction of the text (after train) for validation."""
    test_fraction: float = Field(0.0, ge=0, lt=1)
    """Fraction of the text (at the end) for the final test; 0 = no test split, as nanoGPT."""

    @model_validator(mode="after")
    def _leaves_training_text(self):
        if self.val_fraction <= 0 or self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError("val_fraction must be above 0 and val_fraction + test_fraction below 0.95")
        return self


class LabelledTextOptions(SplitOptions):
    """Labelled texts, one per line: TSV/CSV files with a text and a label column, or JSONL objects."""

    name: Literal["labelled_text"] = "labelled_text"
    path: Files
    """A file, a glob pattern (data/*.tsv) or a list of them, read in order: TSV, CSV or JSONL."""
    format: Literal["auto", "delimited", "jsonl"] = "auto"
    """auto: JSONL (one JSON object per line) for .jsonl and .ndjson files, delimited (separator) otherwise."""
    text_column: str | int = "text"
    """Column holding the text: a header name or a 0-based index; in JSONL, the field name."""
    label_column: str | int = "label"
    """Column holding the class label: a header name or a 0-based index; in JSONL, the field name."""
    header: bool | Literal["auto"] = "auto"
    """Whether the first line of a delimited file names its columns. auto decides per file, with a note: a header
    if the columns are given by name and the first line holds them, or if its label occurs on no other line."""
    separator: str | None = None
    """Field separator; default: tab for .tsv/.txt files and files without a suffix, comma for .csv."""
    class_names: Names | None = Field(None, min_length=2)
    """The classes in order (of two, the second is the positive class that f1 scores); default: the labels,
    sorted. A label not among them is an error naming its line; whole-number labels 0, 1, … index this list."""
    tokenizer: TokenizerKind = "character"
    """character, bpe (byte-level BPE trained on the train split) or ngrams (words and n-grams, for fasttext)."""
    vocab_size: int = Field(2000, ge=260)
    """Vocabulary size of the bpe tokenizer (ignored by the others)."""
    ngrams: NgramOptions = NgramOptions()
    """The features of tokenizer: ngrams."""
    tokenizer_from: str | None = None
    """A run folder whose tokenizer to use instead of training one (tokenizer, vocab_size, ngrams are then
    ignored): the language model pretrained for this classifier, whose weights model.init_from loads."""
    max_length: int = Field(256, ge=1)
    """Longer texts are truncated to this many tokens."""
    lowercase: bool = False
    """Lower-case every text before tokenizing."""
    language_model: LanguageModelOptions | None = None
    """Train a language model on the texts instead of classifying them (ULMFiT's pretraining; labels unused): the
    train split's texts (and unlabelled_text) for training, the val split's for validation; the test split is
    never read. Splits are those of the classifier with the same seed and fractions."""

    @model_validator(mode="after")
    def _language_models_read_subwords(self):
        if self.language_model is not None and self.tokenizer == "ngrams" and self.tokenizer_from is None:
            raise ValueError("a language model predicts the next token, not n-grams; use tokenizer: bpe or character")
        return self
