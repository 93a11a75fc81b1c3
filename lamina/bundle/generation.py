"""Text from a language model's bundle, in numpy: the prompt tokenized by the run's tokenizer, then one token at
a time sampled from the next-token logits of the last `max_length` tokens (temperature, then top-k), as
lamina/models/generation.py samples. Each step runs the whole window (a bundle keeps no cache or recurrent state),
so long texts cost more than `lamina generate`; with top_k=1 the choice is the most likely token (greedy).
"""

from __future__ import annotations

import json

import numpy

from lamina.bundle.rows import PAD, UNKNOWN, encode_texts
from lamina.core.errors import RunError

__all__ = ["generate_text", "sample_next", "decode_ids"]


def sample_next(logits: numpy.ndarray, temperature: float, top_k: int | None, random: numpy.random.Generator) -> int:
    """One token id from (V,) logits after temperature and top-k (the logits below the k-th largest dropped)."""
    logits = logits.astype(numpy.float64) / temperature
    if top_k is not None and top_k < logits.size:
        threshold = numpy.sort(logits)[-top_k]
        logits = numpy.where(logits < threshold, -numpy.inf, logits)
    probabilities = numpy.exp(logits - logits.max())
    return int(random.choice(logits.size, p=probabilities / probabilities.sum()))


def generate_text(bundle, prompt: str, max_tokens: int, temperature: float, top_k: int | None, seed: int | None):
    """{"text": prompt and continuation, "tokens": how many were generated} from a language model's `bundle`."""
    if bundle.output_name != "logits":  # a language model's bundle gives next-token logits (N, T, V)
        raise RunError(f"this bundle's task is {bundle.task}, not a language model", "use Bundle.predict instead")
    if temperature <= 0 or max_tokens < 1 or (top_k is not None and top_k < 1):
        raise RunError(
            f"temperature {temperature}, max_tokens {max_tokens}, top_k {top_k}",
            "temperature must be above 0, max_tokens and top_k at least 1 (top_k=1: the most likely token)",
        )
    record = bundle.preprocessing["tokenizer"]
    tokens = encode_texts(record, [prompt])[0]
    if not tokens:
        raise RunError("the prompt is empty after tokenizing", "pass a prompt with some text")
    context, random = bundle.preprocessing["max_length"], numpy.random.default_rng(seed)
    for _ in range(max_tokens):
        window = numpy.asarray([tokens[-context:]], dtype=numpy.int64)  # (1, T)
        tokens.append(sample_next(bundle.run(window)[0, -1], temperature, top_k, random))
    return {"text": decode_ids(record, tokens), "tokens": max_tokens}


def decode_ids(record: dict, ids: list[int]) -> str:
    """Text of token ids, by a run's tokenizer record (character or bpe; special tokens left out)."""
    if record["type"] == "character":
        return "".join(record["vocabulary"][i] for i in ids if record["vocabulary"][i] not in (PAD, UNKNOWN))
    if record["type"] == "bpe":
        import tokenizers

        return tokenizers.Tokenizer.from_str(json.dumps(record["tokenizer"])).decode(ids)
    raise RunError(f"a {record['type']} tokenizer does not decode to text", "generate with a character or bpe model")
