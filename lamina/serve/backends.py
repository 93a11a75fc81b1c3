"""What the server predicts with: a `Predictor` reads files into stored form and predicts stored inputs.

Two implementations: `TorchPredictor` (a run folder, through `Run.predict`: the served predictions are those of
`lamina predict`) and `OnnxPredictor` (an exported bundle, through the torch-free runtime `lamina.bundle`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy
import torch

from lamina.bundle import load_bundle
from lamina.core.errors import RunError
from lamina.core.version import __version__
from lamina.data.inputs import read_inputs
from lamina.data.text import read_texts
from lamina.data.tokenizers import tokenizer_from_dict
from lamina.run import Run

__all__ = ["Predictor", "TorchPredictor", "OnnxPredictor", "load_predictor", "source_kind"]


class Predictor(Protocol):
    metadata: dict[str, Any]  # backend, run, task, classes, input (kind, dtype, shape, columns), metrics, version

    def read(self, paths: list[Path]) -> tuple[numpy.ndarray, list[str]]:
        """Files → (inputs in stored form (N, ...), a name per input); DataError for a file it cannot read."""

    def predict_stored(self, stored: numpy.ndarray, names: list[str]) -> list[dict[str, Any]]:
        """Stored inputs → one result per input, as `Run.predict` gives it."""


def source_kind(path: Path) -> str:
    """'bundle' for a folder holding bundle.json, 'run' for a run folder; RunError for anything else (no PyTorch)."""
    if (path / "bundle.json").is_file():
        return "bundle"
    if (path / "summary.json").is_file() or (path / "config.yaml").is_file():
        return "run"
    raise RunError(
        f"{path} is neither a run folder nor an exported bundle",
        "pass a folder written by 'lamina train' (summary.json) or 'lamina export' (bundle.json)",
    )


def load_predictor(path: str | Path, backend: str) -> Predictor:
    """The predictor for a run folder (backend torch) or a bundle (backend onnx)."""
    path = Path(path)
    if backend == "onnx":
        return OnnxPredictor(path)
    if source_kind(path) == "bundle":
        raise RunError(f"{path} is an exported bundle; the torch backend serves run folders", "pass --backend onnx")
    return TorchPredictor(path)


def input_record(preprocessing: dict, input_shape: list[int]) -> dict[str, Any]:
    """What a client sends: the kind of input, its stored dtype and shape, and for tables the columns."""
    kind = "arrays" if "arrays" in preprocessing else preprocessing["type"]
    dtype = {"image": "uint8", "text": "int64"}.get(kind, "float32")
    record: dict[str, Any] = {"kind": kind, "dtype": dtype, "shape": [None, *input_shape]}
    if kind == "table":
        encoder = preprocessing["encoder"]
        record["columns"] = [*encoder["numeric"], *encoder["categorical"]]
    if kind == "image":
        record |= {name: preprocessing[name] for name in ("channels", "height", "width")}
        record["note"] = "images of another size or mode are converted and resized, as 'lamina predict' does"
    if kind == "audio":  # stored: waveforms (the model's features are computed from them)
        record |= {"shape": [None, preprocessing["samples"]], "dtype": "float32"}
        record |= {name: preprocessing[name] for name in ("sample_rate", "samples")}
        record["note"] = "WAV files of another sample rate are resampled, as 'lamina predict' does"
    if kind == "text":
        record["max_length"] = preprocessing.get("max_length")
    return record


class TorchPredictor:
    """A finished run folder, predicting through `Run.predict` (PyTorch)."""

    def __init__(self, path: Path):
        self.run = Run(path)
        self.run.require_completed("serving")
        self.preprocessing = self.run.data_record["preprocessing"]
        if self.preprocessing.get("language_model"):
            raise RunError(f"run {path} is a language model", "serve classifiers or regressors; use 'lamina generate'")
        self.run.model  # noqa: B018 (load the weights now, not on the first request)
        text = self.preprocessing["type"] == "text" and "arrays" not in self.preprocessing
        self.tokenizer = tokenizer_from_dict(self.preprocessing["tokenizer"]) if text else None
        spec, summary = self.run.spec, self.run.summary
        self.metadata = {
            "backend": "torch",
            "lamina_version": __version__,
            "run": self.run.dir.name,
            "task": spec.task,
            "family": self.run.config.model.name,
            "classes": spec.class_names,
            "threshold": self.run.threshold,
            "temperature": ((summary.get("calibration") or {}).get("temperature") or {}).get("value"),
            "input": input_record(self.preprocessing, list(spec.input_shape)),
            "metrics": _small(summary.get("metrics", {})),
        }

    def read(self, paths: list[Path]) -> tuple[numpy.ndarray, list[str]]:
        if self.tokenizer is not None:  # texts: with the tokenizer built once (lamina/data/text.py read_texts)
            stored, names = read_texts(paths, self.preprocessing, self.tokenizer)
        else:
            stored, names = read_inputs(paths, self.preprocessing)
        return stored.numpy(), names

    def predict_stored(self, stored: numpy.ndarray, names: list[str]) -> list[dict[str, Any]]:
        with torch.inference_mode():
            results = self.run.predict(torch.from_numpy(stored), allow_unfinished=True)  # completed: checked once
        return [{**result, "input": name} for result, name in zip(results, names, strict=True)]


class OnnxPredictor:
    """An exported bundle (bundle.json, model.onnx), predicting through the torch-free runtime `lamina.bundle`."""

    def __init__(self, path: Path):
        if source_kind(path) != "bundle" and (path / "bundle" / "bundle.json").is_file():
            path = path / "bundle"  # a run folder, exported to its default place by 'lamina export RUN'
        if source_kind(path) != "bundle":
            raise RunError(
                f"{path} holds no bundle.json", "export the run first: 'lamina export RUN', or use --backend torch"
            )
        self.bundle = load_bundle(path)
        record = self.bundle.metadata
        self.preprocessing = record["preprocessing"]
        self.metadata = {
            "backend": "onnx",
            "lamina_version": __version__,
            **{name: record.get(name) for name in ("run", "task", "family", "classes", "threshold", "temperature")},
            "input": input_record(self.preprocessing, record["input"]["shape"][1:]),
            "metrics": _small(record.get("metrics") or {}),
        }

    def read(self, paths: list[Path]) -> tuple[numpy.ndarray, list[str]]:
        stored, names = self.bundle.stored_form(paths)  # the bundle's torch-free readers, as 'lamina predict' reads
        return numpy.asarray(stored), names

    def predict_stored(self, stored: numpy.ndarray, names: list[str]) -> list[dict[str, Any]]:
        return self.bundle.predict_stored(stored, names)


def _small(metrics: dict) -> dict:
    """The metrics without big matrices (confusion matrices, curves): numbers only."""
    return {
        split: {name: value for name, value in values.items() if isinstance(value, int | float)}
        for split, values in metrics.items()
        if isinstance(values, dict)
    }
