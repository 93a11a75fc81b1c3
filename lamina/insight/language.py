"""Explanations of language models (transformer and rnn families on text or labelled_text with language_model):
which earlier tokens drove the prediction of the next one. The prediction explained is the one at the last
position of each window or prompt; the target is a token id (the one predicted, or the true next token), and
each position of the window gets one score for its log-odds (lamina/insight/tokens.py).

Baseline: one "empty" token at every position — the padding token when the tokenizer has one (bpe and character
tokenizers of labelled_text), else the space character (a character model of plain text), else token 0. Deleting
a position puts that token in its place; positions stay where they are, since the explained prediction is
the one after the last position. Transformers also get their attention maps and rollout (lamina/insight/attention.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from lamina.insight.modality import ExplainContext, Explained
from lamina.insight.text import token_strings, tokenizer_of, write_attention_pictures
from lamina.insight.token_pages import TokenRow, terminal_lines, visible, write_page
from lamina.insight.tokens import TOKEN_METHODS, token_attributions
from lamina.models.output import split_output

__all__ = ["LanguageModality"]


class LanguageModality:
    """Next-token predictions: scores of the window's tokens, an HTML page, attention maps (transformers)."""

    kind = "language_model"
    methods = TOKEN_METHODS
    baseline_description = (
        "the padding token at every position, or a space where the vocabulary has no padding token (character "
        "models of plain text); a deleted position holds that token"
    )

    def empty_token(self, context: ExplainContext) -> int:
        """The baseline token id (see the module's docstring), found once per context."""
        if "empty_token" not in context.extra:
            tokenizer = tokenizer_of(context)
            pad = context.pad_id if context.pad_id is not None else getattr(tokenizer, "pad_id", None)
            if pad is None:
                texts = token_strings(context)
                pad = texts.index(" ") if " " in texts else 0
            context.extra["empty_token"] = int(pad)
        return context.extra["empty_token"]

    def baseline(self, context: ExplainContext) -> Tensor:
        return torch.full_like(context.inputs, self.empty_token(context))

    def probabilities(self, model: nn.Module, inputs: Tensor, context: ExplainContext) -> Tensor:
        """(N, vocabulary) probabilities of the token after the last position of each window."""
        model = getattr(model, "model", model)  # the run's model, also when wrapped for attribution
        parts = []
        for start in range(0, len(inputs), 64):
            outputs = split_output(model(inputs[start : start + 64]))[0]  # (n, T, V)
            parts.append(outputs[:, -1].float().softmax(dim=-1))
        return torch.cat(parts)

    def attribute(
        self, model: nn.Module, inputs: Tensor, targets: Tensor, method: str, context: ExplainContext
    ) -> Tensor:
        baseline = torch.full_like(inputs, self.empty_token(context))
        return token_attributions(
            model, inputs, baseline, targets, method, True, context.layer, None, context.extra.get("embedding_noise")
        )

    def delete(self, inputs: Tensor, mask: Tensor, context: ExplainContext) -> Tensor:
        return inputs.masked_fill(mask.to(inputs.device), self.empty_token(context))

    def _rows(self, items: list[Explained], context: ExplainContext) -> list[TokenRow]:
        texts = token_strings(context)

        def text(index: int | None) -> str:
            return "?" if index is None else texts[index] if index < len(texts) else str(index)

        rows = []
        for index, item in enumerate(items):
            ids, scores = context.inputs[index].tolist(), item.attribution.flatten().tolist()
            true = f", true {visible(text(item.true_label))}" if item.true_label is not None else ""
            heading = (
                f"next token: predicted {visible(text(item.predicted))} ({item.probability:.3f}){true}; "
                f"explained: {visible(text(item.target))}"
            )
            pieces = [(text(i), score) for i, score in zip(ids, scores, strict=True)]
            rows.append(TokenRow(item.name, heading, pieces, after=text(item.target)))
        return rows

    def write(self, folder: Path, items: list[Explained], method: str, context: ExplainContext) -> list[Path]:
        """tokens.html (each window, its explained next token boxed after it) and, for transformers,
        attention/<input>.png for the first 16 windows. `items[i]` explains `context.inputs[i]`."""
        notes = [
            f"method: {method}; baseline: {self.baseline_description}",
            "the scores explain the prediction of the boxed token after the last position",
        ]
        rows = self._rows(items, context)
        paths = [write_page(folder / "tokens.html", rows, "Which tokens drove the next-token prediction", notes)]
        return paths + write_attention_pictures(folder, items, context)

    def show(self, items: list[Explained], context: ExplainContext) -> str:
        texts = token_strings(context)
        explained = [visible(texts[item.target]) if item.target < len(texts) else str(item.target) for item in items]
        return terminal_lines(self._rows(items, context), explained)
