"""Metrics for language models (from per-token losses) and transcriptions (from per-step class scores)."""

from __future__ import annotations

import math

from lamina.tasks.decisions import greedy_ctc_decode
from lamina.training.metrics import Predictions

__all__ = ["edit_distance", "perplexity", "bits_per_character", "sequence_accuracy", "token_error_rate"]


def perplexity(predictions: Predictions) -> float:
    """exp(mean loss per token): the number of equally likely tokens the model is as unsure as."""
    return math.exp(float(predictions.scores.double().mean()))


def bits_per_character(predictions: Predictions) -> float:
    """Total loss in bits divided by the characters (UTF-8 bytes) of the text predicted; tokenizer-independent."""
    return float(predictions.scores.double().sum() / math.log(2) / predictions.targets.double().sum().clamp(min=1))


def edit_distance(first: list[int], second: list[int]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning `first` into `second`."""
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, start=1):
        current = [i]
        for j, b in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def _transcripts(predictions: Predictions) -> tuple[list[list[int]], list[list[int]]]:
    decoded = greedy_ctc_decode(predictions.scores, blank=predictions.scores.shape[-1] - 1)
    truth = [[int(t) for t in row if t >= 0] for row in predictions.targets]
    return decoded, truth


def sequence_accuracy(predictions: Predictions) -> float:
    """Fraction of samples whose whole decoded sequence is exactly right (e.g. every digit of a string)."""
    decoded, truth = _transcripts(predictions)
    return sum(a == b for a, b in zip(decoded, truth, strict=True)) / max(1, len(truth))


def token_error_rate(predictions: Predictions) -> float:
    """Edit distance between decoded and true sequences over the true tokens (character/word error rate)."""
    decoded, truth = _transcripts(predictions)
    errors = sum(edit_distance(a, b) for a, b in zip(decoded, truth, strict=True))
    return errors / max(1, sum(len(row) for row in truth))
