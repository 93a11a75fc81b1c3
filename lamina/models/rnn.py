"""Recurrent networks: vanilla RNN, LSTM or GRU (PyTorch's fused modules), stacked, optionally bidirectional.

Padded token batches are packed, so each sequence stops at its real length: the final state and every pooled
output ignore padding exactly. Heads follow the task: a vector per sequence (classification, regression,
forecasting) or an output per step (language modeling, transcription). Training clips gradients to norm 1 by
default for this family (train.gradient_clip), the classic fix for exploding gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lamina.core.errors import ModelError
from lamina.data.spec import DataSpec
from lamina.models.options import Recurrent, RNNOptions
from lamina.models.sequence import as_steps, sequence_layout
from lamina.tasks import task_of

__all__ = ["RNN", "build_rnn", "make_recurrent", "pool_steps", "run_recurrent", "RECURRENT_CELLS"]

RECURRENT_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def make_recurrent(config: Recurrent, inputs: int) -> nn.Module:
    recurrent = RECURRENT_CELLS[config.cell](
        inputs,
        config.hidden_size,
        num_layers=config.layers,
        batch_first=True,
        bidirectional=config.bidirectional,
        dropout=config.dropout if config.layers > 1 else 0.0,
    )
    if config.cell == "lstm" and config.forget_bias:
        hidden = config.hidden_size
        with torch.no_grad():
            for name, parameter in recurrent.named_parameters():
                if name.startswith("bias_"):  # gates in order input, forget, cell, output; ih + hh biases add up
                    parameter[hidden : 2 * hidden] = config.forget_bias / 2
    return recurrent


def pool_steps(outputs: Tensor, final: Tensor, lengths: Tensor | None, pooling: str) -> Tensor:
    """(B, T, H) step outputs and the final states → (B, H): last, mean or max over the real steps."""
    if pooling == "last":
        return final
    if lengths is None:
        return outputs.mean(dim=1) if pooling == "mean" else outputs.amax(dim=1)
    real = torch.arange(outputs.shape[1], device=outputs.device)[None, :] < lengths[:, None].to(outputs.device)
    if pooling == "mean":
        return (outputs * real.unsqueeze(-1)).sum(dim=1) / lengths[:, None].to(outputs.device).clamp(min=1)
    return outputs.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(dim=1)


def run_recurrent(recurrent: nn.Module, x: Tensor, lengths: Tensor | None, state=None):
    """(B, T, F) → (B, T, H·directions) outputs, final states (B, H·directions) of the last layer, raw state.
    With `lengths`, sequences are packed so padding never enters the recurrence."""
    if lengths is not None:
        packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        packed_out, state = recurrent(packed, state)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    else:
        outputs, state = recurrent(x, state)
    hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
    directions = 2 if recurrent.bidirectional else 1
    final = torch.cat([hidden[-directions + d] for d in range(directions)], dim=-1)  # (B, H·directions)
    return outputs, final, state


class RNN(nn.Module):
    """Embedding (tokens) → recurrent stack → head per step or per sequence."""

    def __init__(self, config: RNNOptions, spec: DataSpec):
        super().__init__()
        layout = sequence_layout(spec, "rnn")
        self.layout, self.pooling = layout, config.pooling
        self.per_step = task_of(spec).per_step
        self.embed = nn.Embedding(layout.features, config.embedding_size) if layout.tokens else None
        self.recurrent = make_recurrent(config, config.embedding_size if layout.tokens else layout.features)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size * (2 if config.bidirectional else 1), spec.output_size)

    def forward(self, inputs: Tensor, state=None) -> Tensor:
        return self.step(inputs, state)[0]

    def step(self, inputs: Tensor, state=None) -> tuple[Tensor, object]:
        """Outputs and the recurrent state after `inputs`, to continue from (generation)."""
        lengths = None
        if self.layout.tokens:
            if self.layout.pad_id is not None:
                # right-padded: real tokens come first; an empty text reads one padding step (as packing does),
                # so pooling has a step to pool instead of giving NaN
                lengths = (inputs != self.layout.pad_id).sum(dim=1).clamp(min=1)
            x = self.embed(inputs)  # (B, T) → (B, T, E)
        else:
            x = as_steps(inputs)
        outputs, final, state = run_recurrent(self.recurrent, x, lengths, state)
        if self.per_step:
            return self.head(self.dropout(outputs)), state  # (B, T, outputs)
        return self.head(self.dropout(pool_steps(outputs, final, lengths, self.pooling))), state


def build_rnn(config: RNNOptions, spec: DataSpec) -> nn.Module:
    """Recurrent network (vanilla RNN, LSTM, GRU) for text, audio, time series and per-step outputs."""
    if config.bidirectional and task_of(spec).causal:
        raise ModelError(
            "model.bidirectional: a language model must not read the future", "set model.bidirectional: false"
        )
    return RNN(config, spec)
