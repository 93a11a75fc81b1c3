"""The check every export passes before it is written: onnxruntime against PyTorch on real val inputs of the run.

Scores of the run's own pipeline (its transform, model and objective, as `Run.predict` computes them) are the
reference; the ONNX graph must give them to within TOLERANCE (max abs difference) with the same argmax, on a
batch of up to 256 val inputs and on a second batch of another size (text: another length too), which proves the
dynamic axes. When it does not, the error names the first module of the model whose output differs, found by
exposing the graph's intermediate values (dynamo exports record the module each node came from).
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import torch
from torch import Tensor, nn

from lamina.core.errors import RunError
from lamina.data.text import TrimPadding
from lamina.models.output import split_output

__all__ = ["TOLERANCE", "Reference", "check_batches", "verify", "first_divergence"]

TOLERANCE = 1e-4
LARGEST_BATCH = 256


@dataclass
class Reference:
    """The run's own pipeline: stored inputs → scores (or a language model's logits), as PyTorch computes them."""

    model: nn.Module
    transform: Callable[[Tensor], Tensor]
    scores: Callable[[Tensor], Tensor]
    logits: bool

    def __call__(self, stored: Tensor) -> Tensor:
        with torch.no_grad():
            prediction = split_output(self.model(self.transform(stored)))[0]
            return prediction.float() if self.logits else self.scores(prediction).float()


def check_batches(val_inputs: Tensor, text: bool, language_model: bool) -> list[Tensor]:
    """Two batches of val inputs in stored form: the first LARGEST_BATCH (or all), and a smaller one of another
    size; for text, its shortest texts trimmed to their own longest (a language model's: the last ones cut to half
    their context), so the length differs too."""
    count = len(val_inputs)
    if count == 0:
        raise RunError("the run's val split is empty: the export has nothing to verify on", "train with a val split")
    first = val_inputs[:LARGEST_BATCH]
    size = max(1, min(37, len(first) - 1)) if len(first) > 1 else 1
    second = val_inputs[count - size :]
    if language_model:
        second = second[:, : max(1, second.shape[1] // 2)]  # (n, T / 2)
    elif text:
        shortest = (val_inputs != 0).sum(dim=1).argsort(stable=True)[:size]  # the shortest texts, padded with 0
        second = TrimPadding(0)(val_inputs[shortest])
        if second.shape[1] == first.shape[1] and second.shape[1] > 1:
            second = second[:, : second.shape[1] // 2]  # (n, T / 2): every text as long as the longest
    return [first, second]


def verify(
    path: Path,
    reference: Reference,
    batches: list[Tensor],
    family: str,
    exporter: str,
    sequence: bool = False,
    argmax: bool = True,
) -> dict[str, Any]:
    """Run the ONNX file in onnxruntime (CPU) on each batch and compare with `reference`; the figures for
    export.json (with each batch's length for `sequence` inputs), or RunError naming what differed (and where,
    when it can be found). `argmax`: the scores are classes (or tokens), whose argmax must agree too; a
    regression's several targets have no argmax to agree on."""
    import onnxruntime

    start = time.perf_counter()
    session = _session(path)
    largest, equal, sizes, lengths = 0.0, True, [], []
    for batch in batches:
        expected = reference(batch).numpy()
        received = session.run(None, {"inputs": batch.numpy()})[0]
        if received.shape != expected.shape:
            raise RunError(
                f"the ONNX graph of model '{family}' ({exporter} exporter) gave scores shaped {received.shape} "
                f"for inputs {tuple(batch.shape)}, but PyTorch gives {expected.shape}",
                "the dynamic axes were not kept; report the family",
            )
        difference = float(numpy.abs(received.astype(numpy.float64) - expected).max()) if expected.size else 0.0
        same = bool((received.argmax(-1) == expected.argmax(-1)).all()) if argmax else True
        if not numpy.isfinite(received).all() or difference > TOLERANCE or not same:
            where = first_divergence(path, reference, batch)
            raise RunError(
                f"the ONNX graph of model '{family}' ({exporter} exporter) differs from PyTorch on {len(batch)} val "
                f"inputs: max abs difference {difference:.3g} (allowed {TOLERANCE:g}), argmax "
                f"{'equal' if same else 'different'}{where}; no bundle was written",
                "report the family and this message; serve the run from its folder (--backend torch) meanwhile",
            )
        largest, equal = max(largest, difference), equal and same
        sizes.append(len(batch))
        lengths.append(int(batch.shape[1]))
    return {
        "backend": "onnxruntime",
        "onnxruntime_version": onnxruntime.__version__,
        "inputs_checked": sum(sizes),
        "split": "val",
        "max_abs_difference": largest,
        "argmax_equal": equal if argmax else None,  # None: a regression, nothing to compare
        "tolerance": TOLERANCE,
        "verify_seconds": round(time.perf_counter() - start, 3),
        "dynamic": {"batch_sizes": sizes, **({"lengths": lengths} if sequence else {})},
    }


def _session(path: Path, model: bytes | None = None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(
        model if model is not None else str(path), options, providers=["CPUExecutionProvider"]
    )


def first_divergence(path: Path, reference: Reference, batch: Tensor) -> str:
    """', first at module NAME (ONNX op TYPE): max abs difference X' — the first module of the model, in the
    order the graph computes them, whose output differs from PyTorch's by more than TOLERANCE relative to its
    size; '' when the graph does not record modules (TorchScript exports) or none can be matched."""
    import onnx

    model = onnx.load(str(path))
    last: dict[str, tuple[str, str]] = {}  # module name → (its last node's output, that node's op type)
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        if scopes is None or not node.output:
            continue
        try:
            names = ast.literal_eval(scopes)[1:-1]  # [root, modules…, operator]
        except (ValueError, SyntaxError):
            continue
        for name in names:
            last.pop(name, None)  # dicts keep insertion order: re-insert, so the order is that of completion
            last[name] = (node.output[0], node.op_type)
    if not last:
        return ""
    known = {value.name for value in model.graph.output}
    for output, _ in last.values():
        if output not in known:
            model.graph.output.append(onnx.ValueInfoProto(name=output))
            known.add(output)
    try:
        session = _session(path, model.SerializeToString())
        names = [output.name for output in session.get_outputs()]
        values = dict(zip(names, session.run(None, {"inputs": batch.numpy()}), strict=True))
    except Exception:  # onnxruntime refuses the extra outputs: say nothing rather than guess
        return ""
    captured = _module_outputs(reference, batch)
    for name, (output, operator) in last.items():
        if name != "model" and not name.startswith("model."):
            continue  # the graph's own operators (the transform, the scores), not a module of the model
        expected = captured.get(name.removeprefix("model").removeprefix("."))
        received = values.get(output)
        if expected is None or received is None or tuple(expected.shape) != received.shape:
            continue
        difference = float(numpy.abs(received.astype(numpy.float64) - expected.numpy()).max())
        if difference > TOLERANCE * max(1.0, float(expected.abs().max())):
            return f", first at module {name} (ONNX op {operator}): max abs difference {difference:.3g}"
    return ""


def _module_outputs(reference: Reference, batch: Tensor) -> dict[str, Tensor]:
    """Each named submodule's output tensor for `batch` through the run's pipeline (the model's own is '')."""
    captured: dict[str, Tensor] = {}
    hooks = []
    for name, module in reference.model.named_modules():

        def keep(module: nn.Module, inputs: Any, output: Any, name: str = name) -> None:
            if isinstance(output, Tensor) and name not in captured:
                captured[name] = output.detach().float()

        hooks.append(module.register_forward_hook(keep))
    try:
        reference(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return captured
