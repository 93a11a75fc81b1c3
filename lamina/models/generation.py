"""Sampling tokens from a language model (a transformer, moe or rnn), for `lamina generate`.

The transformer keeps a key/value cache, so each new token costs one step instead of a pass over the whole
context; when the cache reaches the model's context it restarts from the last half of the text. The rnn
carries its hidden state, so its context is unbounded.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lamina.models.attention import KeyValueCache
from lamina.models.output import split_output

__all__ = ["sample_next", "transformer_tokens", "rnn_tokens"]


def sample_next(logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> int:
    """One token id from (V,) logits, after temperature and top-k."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        threshold = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return int(torch.multinomial(logits.softmax(dim=-1), 1, generator=generator))


@torch.no_grad()
def transformer_tokens(
    model,
    prompt: list[int],
    count: int,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator,
    use_cache: bool = True,
) -> list[int]:
    """`count` new token ids after `prompt`. Without the cache, every step runs the whole (cropped) context."""
    context = model.context
    tokens = list(prompt)

    def last_logits(window: list[int], cache) -> Tensor:
        prediction, _, _ = split_output(model(torch.tensor([window]), cache))
        return prediction[0, -1]  # (V,)

    cache = KeyValueCache() if use_cache else None
    logits = last_logits(tokens[-context:], cache)
    for _ in range(count):
        tokens.append(sample_next(logits, temperature, top_k, generator))
        if not use_cache:
            logits = last_logits(tokens[-context:], None)
        elif cache.length >= context:  # full: restart from the last half of the context
            cache = KeyValueCache()
            logits = last_logits(tokens[-(context // 2) :], cache)
        else:
            logits = last_logits(tokens[-1:], cache)
    return tokens[len(prompt) :]


@torch.no_grad()
def rnn_tokens(
    model, prompt: list[int], count: int, temperature: float, top_k: int | None, generator: torch.Generator
) -> list[int]:
    """`count` new token ids after `prompt`, carrying the recurrent state from token to token."""
    outputs, state = model.step(torch.tensor([prompt]))
    tokens: list[int] = []
    for _ in range(count):
        tokens.append(sample_next(outputs[0, -1], temperature, top_k, generator))
        outputs, state = model.step(torch.tensor([tokens[-1:]]), state)
    return tokens
