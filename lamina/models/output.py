"""The small record a model may return when it has more than a prediction to say."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["ModelOutput", "split_output"]


@dataclass
class ModelOutput:
    """A prediction plus auxiliary losses (KL, load balancing, ...) that the trainer adds to the main loss
    and logs under their own names."""

    prediction: Tensor
    auxiliary_losses: dict[str, Tensor] = field(default_factory=dict)


def split_output(output: Tensor | ModelOutput) -> tuple[Tensor, dict[str, Tensor]]:
    """(prediction, auxiliary losses) from whatever a model returned."""
    if isinstance(output, ModelOutput):
        return output.prediction, output.auxiliary_losses
    return output, {}
