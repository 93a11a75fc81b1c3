"""fastText (Joulin et al., 2017): a text is the mean of its tokens' embeddings — words, word n-grams and
character n-grams with data.tokenizer: ngrams — followed by a linear classifier, or one hidden layer first.

`nn.EmbeddingBag` averages each row's embeddings in one fused operation without building the (B, L, E) tensor
of every token's vector; padding (id 0) is left out of the mean. Embeddings start uniform in ±1/E, as fastText's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.options import FastTextOptions
from lamina.models.sequence import sequence_layout

__all__ = ["FastText", "build_fasttext"]


class FastText(nn.Module):
    """Token ids (B, L), padded with `pad_id` → logits (B, outputs)."""

    def __init__(self, config: FastTextOptions, vocabulary: int, pad_id: int | None, outputs: int):
        super().__init__()
        size = config.embedding_size
        self.embedding = nn.EmbeddingBag(vocabulary, size, mode="mean", padding_idx=pad_id)
        nn.init.uniform_(self.embedding.weight, -1 / size, 1 / size)
        if pad_id is not None:
            self.embedding.weight.data[pad_id].zero_()
        self.dropout = nn.Dropout(config.dropout)
        self.token_dropout, self.pad_id = config.token_dropout, pad_id
        width = config.hidden_size
        self.hidden = (
            nn.Sequential(nn.Linear(size, width), nn.ReLU(), nn.Dropout(config.dropout)) if width else nn.Identity()
        )
        self.head = nn.Linear(width or size, outputs)

    def forward(self, tokens: Tensor) -> Tensor:
        if self.training and self.token_dropout > 0 and self.pad_id is not None:
            dropped = torch.rand(tokens.shape, device=tokens.device) < self.token_dropout  # (B, L)
            tokens = tokens.masked_fill(dropped, self.pad_id)
        mean = self.embedding(tokens)  # (B, L) → (B, E): the mean over each row's real tokens
        return self.head(self.hidden(self.dropout(mean)))


def build_fasttext(config: FastTextOptions, spec: DataSpec) -> nn.Module:
    """A fastText classifier (or regressor) sized for the data's vocabulary."""
    layout = sequence_layout(spec, "fasttext")
    if not layout.tokens:
        raise ModelError(
            f"model 'fasttext' reads token ids, but the data gives {spec.kind} inputs",
            "use it on text (data: labelled_text, ideally with tokenizer: ngrams)",
        )
    return FastText(config, layout.features, layout.pad_id, spec.output_size)
