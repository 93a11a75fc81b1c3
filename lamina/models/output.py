"""The small record a model may return when it has more than a prediction to say."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["ModelOutput", "split_output"]


@dataclass
class ModelOutput:
    """A prediction plus auxiliary losses (KL, load balancing, ...) that the trainer adds to the main loss and
    logs under their own names, and statistics (router entropy, tokens per expert, ...) that it only logs.
    Each value is averaged over the samples of an epoch (train) or a split (val, test)."""

    prediction: Tensor
    auxiliary_losses: dict[str, Tensor] = field(default_factory=dict)
    statistics: dict[str, Tensor] = field(default_factory=dict)


def split_output(output: Tensor | ModelOutput) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """(prediction, auxiliary losses, statistics) from whatever a model returned."""
    if isinstance(output, ModelOutput):
        return output.prediction, output.auxiliary_losses, output.statistics
    return output, {}, {}
