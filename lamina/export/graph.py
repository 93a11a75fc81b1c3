"""The exported graph: the run's preprocessing, its model and its scores as one nn.Module, and torch's two ONNX
exporters tried in turn on it.

The graph takes inputs in stored form (what lamina's readers give before the run's transform: uint8 images,
float32 waveforms, encoded table rows or arrays, int64 token ids padded with 0) and gives what the run's objective
gives: class probabilities at the run's temperature, or predictions in target units; a language model's
next-token logits per position.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lamina.core.errors import RunError
from lamina.data.inputs import transform_for
from lamina.export.recurrent import PaddedLastStates, needs_final_from_outputs
from lamina.models.output import split_output

__all__ = ["ServingGraph", "Exported", "SUPPORTED_TASKS", "REFUSED_TASKS", "check_exportable", "export_graph", "OPSET"]

OPSET = 18
SUPPORTED_TASKS = ("classification", "regression", "language_modeling")
# why a task's answer cannot be one ONNX graph of the contract (docs/deploy.md, "Per-family support")
REFUSED_TASKS = {
    "reconstruction": "an autoencoder's answer (an anomaly score per input and its code) is a comparison of the "
    "reconstruction with the input under the run's pixel loss, not class scores; the bundle format has no place "
    "for it yet",
    "transcription": "a transcription's labels come from CTC decoding (merging repeats, dropping blanks) of "
    "per-frame scores, a variable-length search the bundle's fixed (N, K) 'scores' output cannot hold",
}


class ServingGraph(nn.Module):
    """Stored inputs → the run's scores: its transform (a fresh copy of lamina's own, so the exporter's tracing
    leaves the run's objects alone), the model in eval mode, the objective's scores (language models: logits).

    Text keeps its padding: TrimPadding cuts the all-padding columns, a shape that depends on the values, and every
    text family masks padding itself, so the scores are those of the trimmed batch."""

    def __init__(self, model: nn.Module, preprocessing: dict, scores: Callable[[Tensor], Tensor], logits: bool):
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        if needs_final_from_outputs(self.model):
            self.model = PaddedLastStates(self.model)
        self.transform = (lambda inputs: inputs) if preprocessing["type"] == "text" else transform_for(preprocessing)
        self.scores, self.logits = scores, logits

    def forward(self, inputs: Tensor) -> Tensor:
        prediction = split_output(self.model(self.transform(inputs)))[0]
        return prediction.float() if self.logits else self.scores(prediction)


@dataclass
class Exported:
    exporter: str  # "dynamo" or "torchscript"
    opset: int
    notes: list[str]  # why an exporter was passed over


def check_exportable(task: str, family: str) -> None:
    """RunError for a task whose answer the bundle cannot hold, naming the reason."""
    if task in REFUSED_TASKS:
        raise RunError(
            f"a {task} run (model '{family}') cannot be exported to ONNX: {REFUSED_TASKS[task]}",
            f"lamina export supports {', '.join(SUPPORTED_TASKS)} runs; serve this one from its run folder "
            "(lamina serve RUN --backend torch)",
        )


def export_graph(graph: ServingGraph, example: Tensor, path: Path, sequence: bool, family: str) -> Exported:
    """Write `graph` to `path` as ONNX with a dynamic batch (and, for `sequence` inputs, a dynamic length): torch's
    dynamo exporter first, the TorchScript exporter when dynamo fails (e.g. packed sequences of recurrent
    networks). RunError naming both reasons when neither can."""
    notes: list[str] = []
    failures: dict[str, str] = {}
    for exporter in ("dynamo", "torchscript"):
        try:
            _export(copy.deepcopy(graph), example, path, sequence, exporter)
            return Exported(exporter, OPSET, notes)
        except Exception as error:  # an exporter's failure: any exception type its internals raise
            failures[exporter] = _first_line(error)
            notes.append(f"{exporter} exporter failed: {failures[exporter]}")
            path.unlink(missing_ok=True)
    raise RunError(
        f"model '{family}' cannot be exported to ONNX: the dynamo exporter failed ({failures['dynamo']}) and the "
        f"TorchScript exporter failed ({failures['torchscript']})",
        "serve this run from its run folder (lamina serve RUN --backend torch); report the family and the reason",
    )


def _export(graph: nn.Module, example: Tensor, path: Path, sequence: bool, exporter: str) -> None:
    names: dict[str, Any] = {"input_names": ["inputs"], "output_names": ["logits" if graph.logits else "scores"]}
    chatter = io.StringIO()  # the exporters print progress and warnings; lamina's own output stays clean
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with (
        warnings.catch_warnings(),
        redirect_stdout(chatter),
        redirect_stderr(chatter),
        _quiet_stderr(),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        try:
            _run_exporter(graph, example, path, sequence, exporter, names)
        finally:
            logger.setLevel(level)


def _run_exporter(graph: nn.Module, example: Tensor, path: Path, sequence: bool, exporter: str, names: dict) -> None:
    if exporter == "dynamo":
        batch, steps = torch.export.Dim("batch"), torch.export.Dim("steps")
        shapes = {"inputs": {0: batch, 1: steps} if sequence else {0: batch}}
        program = torch.onnx.export(
            graph, (example,), dynamic_shapes=shapes, dynamo=True, opset_version=OPSET, verbose=False, **names
        )
        program.save(str(path))
    else:
        axes = {0: "batch", 1: "steps"} if sequence else {0: "batch"}
        output = {0: "batch", 1: "steps"} if sequence and graph.logits else {0: "batch"}
        dynamic = {"inputs": axes, names["output_names"][0]: output}
        torch.onnx.export(
            graph, (example,), str(path), dynamo=False, opset_version=OPSET, dynamic_axes=dynamic, **names
        )


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """PyTorch's C++ warnings (TorchScript's shape inference) go to file descriptor 2, below Python's sys.stderr:
    point it at a temporary file while the exporter runs."""
    try:
        descriptor = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        saved = os.dup(descriptor)
    except (OSError, ValueError, AttributeError):  # no real stderr (an embedding host): nothing to quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), descriptor)
        try:
            yield
        finally:
            os.dup2(saved, descriptor)
            os.close(saved)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(error: BaseException) -> str:
    """The exporter's reason in one line: torch.export's summary line ("<class 'TypeError'>: …") when it gives
    one, else the message's first line."""
    lines = [ANSI.sub("", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("#", "-"))]
    summary = next((line for line in reversed(lines) if line.startswith("<class '")), None)
    if summary is not None:
        return re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>", r"\1", summary)[:300]
    return f"{type(error).__name__}: {(lines[0] if lines else '')[:300]}"
