"""`lamina generate` for language models: sample text from a trained transformer, moe or rnn run.

The transformer keeps a key/value cache, so each new token costs one step instead of a pass over the whole
context; when the cache reaches the model's context it restarts from the last half of the text. The rnn
carries its hidden state, so its context is unbounded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from torch import Tensor

from lamina.config.base import Options
from lamina.errors import RunError
from lamina.generate import generators
from lamina.models.output import split_output

__all__ = ["TextGenerationOptions", "sample_next", "transformer_tokens", "rnn_tokens"]


class TextGenerationOptions(Options):
    """Sampling text from a language model."""

    prompt: str = "\n"
    """Text to continue."""
    max_tokens: int = Field(300, ge=1)
    """Tokens to generate."""
    temperature: float = Field(1.0, gt=0)
    """Divides the logits: below 1 is more conservative, above 1 more adventurous."""
    top_k: int | None = Field(None, ge=1)
    """Sample only among the k most likely tokens."""
    seed: int | None = None
    """Random seed, for repeatable samples; default: a different sample every time."""
    output: str | None = None
    """Also write the text to this file."""


def sample_next(logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> int:
    """One token id from (V,) logits, after temperature and top-k."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        threshold = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return int(torch.multinomial(logits.softmax(dim=-1), 1, generator=generator))


@torch.no_grad()
def transformer_tokens(model, prompt: list[int], count: int, temperature: float, top_k: int | None,
                       generator: torch.Generator, use_cache: bool = True) -> list[int]:  # fmt: skip
    """`count` new token ids after `prompt`. Without the cache, every step runs the whole (cropped) context."""
    from lamina.models.attention import KeyValueCache

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
def rnn_tokens(model, prompt: list[int], count: int, temperature: float, top_k: int | None,
               generator: torch.Generator) -> list[int]:  # fmt: skip
    """`count` new token ids after `prompt`, carrying the recurrent state from token to token."""
    outputs, state = model.step(torch.tensor([prompt]))
    tokens: list[int] = []
    for _ in range(count):
        tokens.append(sample_next(outputs[0, -1], temperature, top_k, generator))
        outputs, state = model.step(torch.tensor([tokens[-1:]]), state)
    return tokens


def generate_text(run, options: TextGenerationOptions) -> dict:
    """Continue `options.prompt` with the run's language model; {"text"} (and {"path"} with output)."""
    from lamina.data.tokenizers import tokenizer_from_dict

    if run.spec.task != "language_modeling":
        raise RunError(f"run {run.dir} is a {run.spec.task} model, not a language model",
                       "generate text from a run trained on data: {name: text}")  # fmt: skip
    tokenizer = tokenizer_from_dict(run.data_record["preprocessing"]["tokenizer"])
    prompt = tokenizer.encode(options.prompt)
    if not prompt:
        raise RunError("the prompt is empty after tokenizing", "pass --prompt with some text")
    generator = torch.Generator()
    if options.seed is not None:
        generator.manual_seed(options.seed)
    else:
        generator.seed()
    model = run.model.eval()
    produce = rnn_tokens if run.config.model.name == "rnn" else transformer_tokens
    new = produce(model, prompt, options.max_tokens, options.temperature, options.top_k, generator)
    text = tokenizer.decode(prompt + new)
    result: dict = {"text": text}
    if options.output:
        Path(options.output).write_text(text, encoding="utf-8")
        result["path"] = options.output
    return result


for family in ("transformer", "moe", "rnn"):
    generators.register(family, config=TextGenerationOptions, help="sample text from a language model")(generate_text)
