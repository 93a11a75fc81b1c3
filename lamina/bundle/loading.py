"""A bundle folder (model.onnx and bundle.json, written by `lamina export`) loaded and run with ONNX Runtime, without
PyTorch: files are read into the stored form the model takes (lamina/bundle/readers.py, rows.py), run in batches,
and decoded as `Run.predict` decodes them (lamina/bundle/decoding.py).

    bundle = lamina.load_bundle("bundles/digits")
    bundle.predict(["seven.png"])  # [{"input": "seven.png", "label": "7", "probability": 0.98, ...}]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy

from lamina.bundle.decoding import decode
from lamina.bundle.generation import generate_text
from lamina.bundle.readers import check_files, read_array_files, read_audio_files, read_images, stored_arrays
from lamina.bundle.rows import pad_id, read_rows, read_texts, trim_padding
from lamina.core.errors import DataError, RunError, resolved
from lamina.data.array_files import is_array_file

__all__ = ["Bundle", "load_bundle", "is_bundle", "FORMAT", "VERSION", "BATCH_SIZE"]

FORMAT, VERSION = "lamina-bundle", 1
BATCH_SIZE = 256  # as Run.predict batches: a text batch's padding is trimmed per batch, as the run trims it
DTYPES = {"uint8": numpy.uint8, "float32": numpy.float32, "int64": numpy.int64}
DECODED_TASKS = {"classification": True, "regression": False}  # task → whether it decodes to classes


def is_bundle(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder holding bundle.json (a bundle, rather than a run folder)."""
    return (Path(path) / "bundle.json").is_file()


def load_bundle(path: str | os.PathLike, threads: int | None = None) -> Bundle:
    """The bundle in folder `path`, its model loaded in one ONNX Runtime session on the CPU (`threads`: the
    session's intra-op threads; None: ONNX Runtime's default). RunError for a folder that is not a bundle, of
    another format or version, or without its model file."""
    return Bundle(Path(path), threads)


class Bundle:
    """A loaded bundle: `metadata` (bundle.json), `predict(files)`, `predict_stored(array)`, `run(array)`."""

    def __init__(self, path: Path, threads: int | None = None):
        self.path = path
        self.metadata = _read_metadata(path)
        model = path / self.metadata["files"]["onnx"]
        if not model.is_file():
            raise RunError(
                f"bundle {path} names the model file {self.metadata['files']['onnx']!r}, which is not there",
                "the bundle is incomplete: export the run again (lamina export RUN_DIR)",
            )
        self.session = _session(model, threads)
        self.preprocessing: dict = _with_tokenizer(self.metadata["preprocessing"], path, self.metadata["files"])
        self.task: str = self.metadata["task"]
        self.class_names: list[str] | None = self.metadata.get("classes")
        self.threshold: dict | None = self.metadata.get("threshold")
        self.input_name: str = self.metadata["input"]["name"]
        self.input_dtype = DTYPES[self.metadata["input"]["dtype"]]
        self.output_name: str = self.metadata["output"]["name"]

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, task={self.task!r}, family={self.metadata.get('family')!r})"

    def predict(self, inputs: Any) -> list[dict[str, Any]]:
        """Predictions for files of the kind the run was trained on (image, WAV, CSV, text or .npy/.npz files; one
        path or a list), or for a numpy array (in stored form; for a run trained on arrays, shaped as its training
        arrays were): one dict per sample, as `Run.predict` gives them."""
        if isinstance(inputs, numpy.ndarray):  # a run trained on arrays takes them as its training arrays were given
            arrays = self.preprocessing.get("arrays")
            return self.predict_stored(stored_arrays(inputs, arrays) if arrays else inputs)
        stored, labels = self.stored_form([inputs] if isinstance(inputs, str | os.PathLike) else list(inputs))
        return self.predict_stored(stored, labels)

    def predict_stored(self, array: numpy.ndarray, labels: list[str] | None = None) -> list[dict[str, Any]]:
        """Predictions for inputs in stored form (N, ...), labelled by their index unless `labels` are given."""
        if self.task not in DECODED_TASKS:
            raise RunError(
                f"this bundle's task is {self.task}, whose outputs are not decoded into predictions",
                "language models: Bundle.generate(prompt), or next-token logits with Bundle.run(token_ids) (int64 (N, T))",
            )
        scores = self.scores(array)
        labels = labels if labels is not None else [str(i) for i in range(len(scores))]
        return decode(scores, labels, DECODED_TASKS[self.task], self.class_names, self.threshold)

    def generate(
        self,
        prompt: str = "\n",
        max_tokens: int = 100,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """A language model's continuation of `prompt`: {"text", "tokens"} (lamina/bundle/generation.py)."""
        return generate_text(self, prompt, max_tokens, temperature, top_k, seed)

    def scores(self, array: numpy.ndarray) -> numpy.ndarray:
        """The model's output (N, K) for stored inputs (N, ...), computed in batches of BATCH_SIZE."""
        array = self.checked(array)
        trim = self.preprocessing["type"] == "text" and self.preprocessing["tokenizer"].get("padding", True)
        outputs = []
        for start in range(0, len(array), BATCH_SIZE):
            batch = array[start : start + BATCH_SIZE]
            if trim:
                batch = trim_padding(batch, pad_id(self.preprocessing["tokenizer"]))
            outputs.append(self.run(batch))
        if not outputs:
            return numpy.zeros((0, *self.metadata["output"]["shape"][1:]), dtype=numpy.float32)
        return numpy.concatenate(outputs)

    def run(self, array: numpy.ndarray) -> numpy.ndarray:
        """The model's raw output for one batch in stored form: scores (N, K), or a language model's next-token
        logits (N, T, V) for token ids (N, T)."""
        return self.session.run([self.output_name], {self.input_name: self.checked(array)})[0]

    def checked(self, array: Any) -> numpy.ndarray:
        """`array` as the model's input dtype and rank; DataError when its values or shape do not fit."""
        array = numpy.asarray(array)
        expected = self.metadata["input"]["shape"]
        if array.ndim != len(expected) or any(
            size is not None and size != got for size, got in zip(expected[1:], array.shape[1:], strict=True)
        ):
            shown = ", ".join("N" if size is None else str(size) for size in expected)
            raise DataError(
                f"inputs of shape {tuple(array.shape)} do not fit this bundle, which takes ({shown})",
                "pass inputs in stored form (what lamina's readers give), or files to Bundle.predict",
            )
        if array.dtype != self.input_dtype:
            converted = array.astype(self.input_dtype)
            if not numpy.array_equal(converted, array):
                raise DataError(
                    f"inputs of dtype {array.dtype} do not convert to this bundle's {self.metadata['input']['dtype']} "
                    "without changing their values",
                    f"pass {self.metadata['input']['dtype']} inputs in stored form",
                )
            array = converted
        return numpy.ascontiguousarray(array)

    def stored_form(self, paths: list[str | os.PathLike]) -> tuple[numpy.ndarray, list[str]]:
        """(inputs in stored form, a label per sample) for files of the run's kind of data."""
        kind = self.preprocessing["type"]
        if "arrays" in self.preprocessing and all(is_array_file(str(path)) for path in paths):
            return read_array_files([str(path) for path in paths], self.preprocessing["arrays"])
        paths = [Path(path) for path in paths]
        check_files(paths)
        if kind == "image":
            return read_images(paths, self.preprocessing), [str(path) for path in paths]
        if kind == "audio":
            return read_audio_files(paths, self.preprocessing), [str(path) for path in paths]
        if kind == "table":
            return read_rows(paths, self.preprocessing)
        if kind == "text":
            return read_texts(paths, self.preprocessing)
        raise DataError(
            f"this run was trained on arrays, and {paths[0]} is not a .npy/.npz file",
            "pass .npy/.npz files (FILE.npz:KEY for one of several arrays), or a numpy array to Bundle.predict",
        )


def _read_metadata(path: Path) -> dict:
    if not path.is_dir():
        raise RunError(f"bundle folder {str(path)!r} does not exist{resolved(path)}", "export one: lamina export RUN")
    file = path / "bundle.json"
    if not file.is_file():
        raise RunError(
            f"{path} is not a bundle: it has no bundle.json",
            "pass a folder written by 'lamina export RUN_DIR' (or a run folder to 'lamina predict')",
        )
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RunError(f"{file} is not valid JSON: {error}", "export the run again (lamina export RUN_DIR)") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise RunError(f"{file} has format {found!r}, not {FORMAT!r}", "pass a folder written by 'lamina export'")
    if metadata.get("version") != VERSION:
        raise RunError(
            f"{file} is bundle version {metadata.get('version')!r}; this lamina reads version {VERSION}",
            "export the run again with this lamina, or install the lamina that wrote it "
            f"({metadata.get('lamina_version', 'unknown')})",
        )
    return metadata


def _with_tokenizer(preprocessing: dict, path: Path, files: dict) -> dict:
    """The preprocessing record, its tokenizer read from the bundle's tokenizer file where the record lacks it."""
    if preprocessing["type"] != "text" or isinstance(preprocessing.get("tokenizer"), dict):
        return preprocessing
    name = files.get("tokenizer")
    if not name or not (path / name).is_file():
        raise RunError(
            f"bundle {path} is of a text model, but holds no tokenizer (files.tokenizer: {name!r})",
            "export the run again (lamina export RUN_DIR)",
        )
    return {**preprocessing, "tokenizer": json.loads((path / name).read_text(encoding="utf-8"))}


def _session(model: Path, threads: int | None):
    try:
        import onnxruntime
    except ImportError:
        raise RunError(
            "running a bundle needs the package 'onnxruntime', which is not installed",
            "install it: pip install 'lamina[runtime]' (or pip install onnxruntime)",
        ) from None
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail / InvalidProtobuf
        raise RunError(f"ONNX Runtime cannot load {model}: {error}", "export the run again (lamina export)") from None
