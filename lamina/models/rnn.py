"""Recurrent networks: vanilla RNN, LSTM or GRU (PyTorch's fused modules), stacked, optionally bidirectional.

Padded token batches are packed, so each sequence stops at its real length: the final state and every pooled
output ignore padding exactly. Heads follow the task: a vector per sequence (classification, regression,
forecasting) or an output per step (language modeling, transcription). Training clips gradients to norm 1 by
default for this family (train.gradient_clip), the classic fix for exploding gradients.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lamina.config.base import Options
from lamina.data.spec import DataSpec
from lamina.models.registry import models
from lamina.models.sequence import PER_STEP_TASKS, as_steps, sequence_layout

__all__ = ["RNN", "RNNConfig", "Recurrent", "pool_steps", "RECURRENT_CELLS"]

RECURRENT_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
Cell = Literal["rnn", "lstm", "gru"]
Pooling = Literal["last", "mean", "max"]


class Recurrent(Options):
    """Options of a recurrent stack, shared by the rnn and hybrid families."""

    cell: Cell = "lstm"
    """rnn (vanilla, tanh), lstm or gru."""
    hidden_size: int = Field(128, ge=1)
    """Hidden units per direction and layer."""
    layers: int = Field(1, ge=1)
    """Stacked recurrent layers."""
    bidirectional: bool = False
    """Also read each sequence backwards (not for language models, which must not see the future)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout between recurrent layers and before the head."""
    pooling: Pooling = "last"
    """Sequence → vector for classification/regression: the final state, or the mean or max over steps."""
    forget_bias: float = 0.0
    """LSTM only: initial bias of the forget gates; 0 is PyTorch's default. 1 keeps memory from fading early in
    training (Jozefowicz et al., 2015; Keras's unit_forget_bias), which helps long-range dependencies."""


class RNNConfig(Recurrent):
    """Recurrent network (RNN, LSTM, GRU) over token ids or feature sequences."""

    embedding_size: int = Field(64, ge=1)
    """Size of each token's embedding (text inputs)."""


def make_recurrent(config: Recurrent, inputs: int) -> nn.Module:
    recurrent = RECURRENT_CELLS[config.cell](inputs, config.hidden_size, num_layers=config.layers, batch_first=True,
                                             bidirectional=config.bidirectional,
                                             dropout=config.dropout if config.layers > 1 else 0.0)  # fmt: skip
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

    def __init__(self, config: RNNConfig, spec: DataSpec):
        super().__init__()
        layout = sequence_layout(spec, "rnn")
        self.layout, self.pooling = layout, config.pooling
        self.per_step = spec.task in PER_STEP_TASKS
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
                lengths = (inputs != self.layout.pad_id).sum(dim=1)  # right-padded: real tokens come first
            x = self.embed(inputs)  # (B, T) → (B, T, E)
        else:
            x = as_steps(inputs)
        outputs, final, state = run_recurrent(self.recurrent, x, lengths, state)
        if self.per_step:
            return self.head(self.dropout(outputs)), state  # (B, T, outputs)
        return self.head(self.dropout(pool_steps(outputs, final, lengths, self.pooling))), state


@models.register("rnn", config=RNNConfig)
def build_rnn(config: RNNConfig, spec: DataSpec) -> nn.Module:
    """Recurrent network (vanilla RNN, LSTM, GRU) for text, audio, time series and per-step outputs."""
    if config.bidirectional and spec.task == "language_modeling":
        from lamina.errors import ModelError

        raise ModelError("model.bidirectional: a language model must not read the future",
                         "set model.bidirectional: false")  # fmt: skip
    return RNN(config, spec)


build_rnn.train_defaults = {"gradient_clip": 1.0}
build_rnn.sequence_outputs = True
build_rnn.reads_tokens = True
