"""The recurrent family over padded token ids, rewritten for the ONNX exporters: the same computation, with the
final states of `pooling: last` read from the step outputs rather than from the packed recurrence's state (which
the TorchScript exporter's peephole pass cannot take: "vector::_M_range_check")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lamina.models.rnn import RNN, pool_steps, run_recurrent

__all__ = ["needs_final_from_outputs", "PaddedLastStates"]


def needs_final_from_outputs(model: nn.Module) -> bool:
    """A sequence classifier or regressor of the rnn family that packs padded token ids and pools the last states."""
    return (
        isinstance(model, RNN)
        and model.layout.tokens
        and model.layout.pad_id is not None
        and model.pooling == "last"
        and not model.per_step
    )


class PaddedLastStates(nn.Module):
    """RNN.forward for padded token ids (B, T) with `final` gathered from the outputs: the forward direction's
    state after each sequence's last real token, the backward direction's after its first; the packed recurrence
    makes these equal to the final states it returns."""

    def __init__(self, model: RNN):
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        model = self.model
        lengths = (inputs != model.layout.pad_id).sum(dim=1).clamp(min=1)  # (B,)
        outputs, _, _ = run_recurrent(model.recurrent, model.embed(inputs), lengths)  # (B, T, H·directions)
        hidden = model.recurrent.hidden_size
        rows = torch.arange(outputs.shape[0], device=outputs.device)
        final = outputs[rows, lengths - 1, :hidden]  # (B, H): forward direction at the last real step
        if model.recurrent.bidirectional:
            final = torch.cat([final, outputs[:, 0, hidden:]], dim=-1)  # (B, 2H): backward direction ends at t = 0
        return model.head(model.dropout(pool_steps(outputs, final, lengths, "last")))
