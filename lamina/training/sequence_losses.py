"""Losses for sequence outputs: next-token cross-entropy (language models) and CTC (transcription).

Both are token-weighted: every real token counts once and padding never counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lamina.data.spec import DataSpec
from lamina.training.losses import Objective
from lamina.training.options import CTCOptions, TokenCrossEntropyOptions

__all__ = ["token_cross_entropy", "ctc"]

IGNORE = -100  # target id that never counts (padding)


def token_cross_entropy(config: TokenCrossEntropyOptions, spec: DataSpec, train_targets: Tensor) -> Objective:
    """Next-token cross-entropy over (B, T, V) logits, token-weighted; val loss is in nats per token."""
    pad_id = spec.extra.get("pad_id")
    token_bytes = torch.tensor(spec.extra.get("token_bytes") or [1] * spec.num_classes, dtype=torch.float64)

    def ignoring_padding(targets: Tensor) -> Tensor:
        return targets if pad_id is None else targets.masked_fill(targets == pad_id, IGNORE)

    def loss(outputs: Tensor, targets: Tensor) -> Tensor:
        logits = outputs.reshape(-1, outputs.shape[-1])  # (B, T, V) → (B*T, V)
        return F.cross_entropy(
            logits, ignoring_padding(targets).reshape(-1), ignore_index=IGNORE, label_smoothing=config.label_smoothing
        )

    def summarize(outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        targets = ignoring_padding(targets).reshape(-1)
        token_losses = F.cross_entropy(
            outputs.reshape(-1, outputs.shape[-1]).float(), targets, ignore_index=IGNORE, reduction="none"
        )
        real = targets != IGNORE
        # per real token: its loss (nats) and the bytes of text it stands for (bits per character)
        return token_losses[real], token_bytes.to(targets.device)[targets[real]]

    return Objective(loss, lambda outputs: outputs.float().softmax(dim=-1), spec.num_classes, summarize=summarize)


def ctc(config: CTCOptions, spec: DataSpec, train_targets: Tensor) -> Objective:
    """CTC over (B, T, C + 1) per-step logits; the last class is the blank. Targets (B, S), padded with -1."""
    blank = spec.num_classes

    def loss(outputs: Tensor, targets: Tensor) -> Tensor:
        log_probs = outputs.float().log_softmax(dim=-1).transpose(0, 1)  # (B, T, C+1) → (T, B, C+1)
        steps, batch = log_probs.shape[:2]
        lengths = (targets >= 0).sum(dim=1)
        input_lengths = torch.full((batch,), steps, dtype=torch.long, device=outputs.device)
        return F.ctc_loss(
            log_probs,
            targets.clamp(min=0),
            input_lengths,
            lengths,
            blank=blank,
            reduction="mean",
            zero_infinity=config.zero_infinity,
        )

    return Objective(loss, lambda outputs: outputs.float().softmax(dim=-1), spec.num_classes + 1)
