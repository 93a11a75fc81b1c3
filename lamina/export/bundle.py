"""A run exported into a bundle folder: model.onnx, bundle.json (what the graph takes and gives, and where it came
from) and export.json (its verification), written together or not at all (docs/deploy.md, "The bundle")."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lamina.artifacts.folder import write_json
from lamina.core.errors import RunError, UsageError
from lamina.core.packages import install_command, installed
from lamina.core.version import __version__
from lamina.data.inputs import transform_for
from lamina.export.graph import ServingGraph, check_exportable, export_graph
from lamina.export.verify import Reference, check_batches, verify
from lamina.insight.calibration import stored_temperature
from lamina.run import Run, run_data
from lamina.tasks import task_of

__all__ = ["export_run", "FORMATS", "bundle_record"]

FORMATS = ("onnx",)
KINDS = {"image": "image", "audio": "audio", "table": "table", "text": "text", "arrays": "arrays"}
DTYPES = {torch.uint8: "uint8", torch.float32: "float32", torch.int64: "int64"}


def export_run(
    run_dir: str | Path | Run, out: str | Path | None = None, format: str = "onnx", data: Any = None
) -> Path:
    """Export a finished run into a bundle folder (default RUN/bundle): model.onnx — the run's preprocessing, model
    and calibrated scores as one graph over stored inputs, batch (and text length) dynamic —, bundle.json and
    export.json. The graph is checked in onnxruntime against PyTorch on the run's val inputs first; a difference
    over 1e-4 or another argmax is a RunError, and then nothing is written. Returns the bundle folder.

    `run_dir` may be a Run (`lamina.train`'s result); a run trained on data passed from Python needs that data
    again as `data` (for its val inputs), unless it is that Run, trained in this process.

    Example:
        >>> import tempfile, lamina, json
        >>> run = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 1}},
        ...                    runs_dir=tempfile.mkdtemp(), progress="quiet")
        >>> bundle = export_run(run.dir)
        >>> record = json.loads((bundle / "export.json").read_text())
        >>> record["max_abs_difference"] <= 1e-4, record["argmax_equal"], sorted(p.name for p in bundle.iterdir())
        (True, True, ['bundle.json', 'export.json', 'model.onnx'])
    """
    if format not in FORMATS:
        raise UsageError(f"unknown export format {format!r}", f"use --format {' or '.join(FORMATS)}")
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if not installed(name)]
    if missing:
        raise RunError(
            f"exporting to ONNX needs the packages {', '.join(missing)}, which are not installed",
            f"install the export extra: {install_command(missing[0])} (or pip install 'lamina[export]')",
        )
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    run.require_completed("exporting")
    spec, preprocessing, family = run.spec, run.data_record["preprocessing"], run.config.model.name
    check_exportable(spec.task, family)
    target = Path(out) if out is not None else run.dir / "bundle"
    _check_target(target)
    start = time.perf_counter()
    data = run_data(run.config, run.given_data(data, "exporting it"))
    if "val" not in data.splits:
        raise RunError(f"the data of run {run.dir} has no val split to verify the export on", "train with one")
    language_model = task_of(spec).causal  # next-token logits per position
    argmax = task_of(spec).classes or language_model
    objective = run.objective()
    reference = Reference(run.model, transform_for(preprocessing), objective.scores, language_model)
    text = preprocessing["type"] == "text"
    batches = check_batches(data.splits["val"].inputs, text, language_model)
    graph = ServingGraph(run.model, preprocessing, objective.scores, language_model)
    building = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    building.mkdir(parents=True)
    try:
        exported = export_graph(graph, batches[0], building / "model.onnx", text, family)
        figures = verify(building / "model.onnx", reference, batches, family, exported.exporter, text, argmax)
        export_seconds = time.perf_counter() - start
        record = bundle_record(run, batches[0], language_model, objective.output_size)
        if text:
            write_json(building / "tokenizer.json", preprocessing["tokenizer"])
            record["files"]["tokenizer"] = "tokenizer.json"
        write_json(building / "bundle.json", record)
        figures |= {"opset": exported.opset, "exporter": exported.exporter, "exporter_notes": exported.notes}
        figures |= {"torch_version": torch.__version__, "onnx_bytes": (building / "model.onnx").stat().st_size}
        write_json(building / "export.json", {**figures, "seconds": round(export_seconds, 3)})
        _replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def bundle_record(run: Run, example: torch.Tensor, language_model: bool, output_size: int) -> dict[str, Any]:
    """bundle.json: what the graph takes and gives, the run's decisions (classes, threshold, temperature), its
    preprocessing record as-is and its scalar metrics."""
    spec, preprocessing = run.spec, run.data_record["preprocessing"]
    text = preprocessing["type"] == "text"
    shape = [None, None] if text else [None, *example.shape[1:]]
    output = [None, None, output_size] if language_model else [None, output_size]
    metrics = {
        split: {name: value for name, value in values.items() if isinstance(value, int | float | str | bool)}
        for split, values in run.metrics.items()
        if isinstance(values, dict)
    }
    return {
        "format": "lamina-bundle",
        "version": 1,
        "lamina_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": run.dir.name,
        "config_hash": hashlib.sha256(run.folder.config.read_bytes()).hexdigest(),
        "task": spec.task,
        "family": run.config.model.name,
        "classes": list(spec.class_names) if spec.class_names else None,
        "threshold": run.threshold,
        "temperature": stored_temperature(run.summary, run.folder.summary_path, run.dir),
        "input": {
            "name": "inputs",
            "dtype": DTYPES.get(example.dtype, str(example.dtype).removeprefix("torch.")),
            "shape": [int(size) if size is not None else None for size in shape],
            "kind": KINDS.get(preprocessing["type"], preprocessing["type"]),
        },
        "output": {"name": "logits" if language_model else "scores", "shape": output},
        "preprocessing": preprocessing,
        "metrics": metrics,
        "files": {"onnx": "model.onnx", "tokenizer": None, "safetensors": None},
    }


def _check_target(target: Path) -> None:
    """A bundle replaces an earlier bundle only: never a file, nor a folder holding something else."""
    if target.is_file() or (target.is_dir() and any(target.iterdir()) and not (target / "bundle.json").is_file()):
        raise RunError(
            f"{target} exists and is not a bundle folder; lamina export writes a new folder there",
            "pass --out with a new folder's path",
        )


def _replace(building: Path, target: Path) -> None:
    """Rename the finished folder into place; an earlier bundle there is moved aside first, then deleted."""
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
        os.rename(target, aside)
    os.rename(building, target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
