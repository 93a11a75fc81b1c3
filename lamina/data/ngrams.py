"""fastText's features as tokens: a text becomes the ids of its words, of its word n-grams and of the character
n-grams of its words (Joulin et al., 2017, "Bag of Tricks for Efficient Text Classification"; Bojanowski et al.,
2017, for the character n-grams). The `fasttext` model family averages their embeddings.

Ids: 0 is padding; words seen in training (at least `min_count` times) get ids 1…W; every word n-gram and
character n-gram is hashed (CRC-32, the same in every process) into one of `buckets` ids after them, so a word
never seen in training still counts through its character n-grams. Words are runs of letters and digits, and
every other visible character stands alone (`win £1000!` → `win`, `£`, `1000`, `!`).

    >>> tokenizer = NgramTokenizer.train(["win cash now", "see you now"], word_ngrams=2, char_ngrams=(3, 3),
    ...                                  buckets=100, min_count=1)
    >>> tokenizer.words, tokenizer.size
    (['now', 'cash', 'see', 'win', 'you'], 106)
    >>> ids = tokenizer.encode("win now")
    >>> ids[:2], len(ids)  # two words, one bigram, three + three character trigrams (<wi win in>, <no now ow>)
    ([4, 1], 9)
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

__all__ = ["NgramTokenizer", "words_of"]

WORD = re.compile(r"\w+|[^\w\s]")


def words_of(text: str) -> list[str]:
    """The words of `text`: runs of letters and digits, and each other visible character alone."""
    return WORD.findall(text)


class NgramTokenizer:
    """Words, word n-grams and character n-grams → ids, as described in the module's docstring."""

    def __init__(self, words: list[str], word_ngrams: int, char_ngrams: tuple[int, int] | None, buckets: int):
        self.words, self.word_ngrams, self.buckets = words, word_ngrams, buckets
        self.char_ngrams = tuple(char_ngrams) if char_ngrams else None
        self.index = {word: i + 1 for i, word in enumerate(words)}
        self.first_bucket = len(words) + 1
        self._characters: dict[str, list[int]] = {}  # each word's character n-gram ids, computed once

    @classmethod
    def train(
        cls, texts: list[str], word_ngrams: int, char_ngrams: tuple[int, int] | None, buckets: int, min_count: int
    ) -> NgramTokenizer:
        """Words of the training texts seen at least `min_count` times, most frequent first (ties alphabetical)."""
        counts = Counter(word for text in texts for word in words_of(text))
        kept = sorted((word for word, count in counts.items() if count >= min_count), key=lambda w: (-counts[w], w))
        return cls(kept, word_ngrams, char_ngrams, buckets)

    @property
    def size(self) -> int:
        return self.first_bucket + self.buckets

    @property
    def pad_id(self) -> int:
        return 0

    def _bucket(self, kind: str, gram: str) -> int:
        return self.first_bucket + zlib.crc32(f"{kind}{gram}".encode()) % self.buckets

    def _character_ids(self, word: str) -> list[int]:
        found = self._characters.get(word)
        if found is None:
            shortest, longest = self.char_ngrams  # type: ignore[misc]
            marked = f"<{word}>"
            found = [
                self._bucket("c", marked[start : start + size])
                for size in range(shortest, longest + 1)
                for start in range(len(marked) - size + 1)
                if marked[start : start + size] != marked  # the whole word has its own id (when seen in training)
            ]
            self._characters[word] = found
        return found

    def encode(self, text: str) -> list[int]:
        """Word ids (known words), then word n-gram ids, then each word's character n-gram ids."""
        words = words_of(text)
        ids = [self.index[word] for word in words if word in self.index]
        for size in range(2, self.word_ngrams + 1):
            ids += [self._bucket("w", " ".join(words[i : i + size])) for i in range(len(words) - size + 1)]
        if self.char_ngrams:
            for word in words:
                ids += self._character_ids(word)
        return ids

    def decode(self, ids: list[int]) -> str:
        """The known words among `ids` (n-grams cannot be read back)."""
        return " ".join(self.words[i - 1] for i in ids if 0 < i < self.first_bucket)

    def to_dict(self) -> dict:
        return {
            "type": "ngrams",
            "padding": True,
            "words": self.words,
            "word_ngrams": self.word_ngrams,
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "buckets": self.buckets,
        }

    @classmethod
    def from_dict(cls, record: dict) -> NgramTokenizer:
        return cls(record["words"], record["word_ngrams"], record["char_ngrams"], record["buckets"])
