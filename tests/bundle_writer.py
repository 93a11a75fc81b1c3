"""A stand-in for `lamina export` (issue 21, F1) in the bundle runtime's tests and bench: a finished run → a bundle
folder as the shared contract describes it (model.onnx taking stored inputs, with the run's transform and
objective in the graph; bundle.json). Uses PyTorch; the runtime that reads the bundle does not.

    python tests/bundle_writer.py RUN_DIR BUNDLE_DIR
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
import warnings
from pathlib import Path

import torch

KINDS = {"image": ("uint8", "image"), "audio": ("float32", "audio"), "table": ("float32", "table"),
         "text": ("int64", "text"), "arrays": ("float32", "arrays")}  # fmt: skip


class Scored(torch.nn.Module):
    """stored inputs → the run's transform → the model → the objective's scores (temperature included)."""

    def __init__(self, run):
        super().__init__()
        from lamina.data.inputs import transform_for
        from lamina.models.output import split_output

        preprocessing = run.data_record["preprocessing"]
        self.text = preprocessing["type"] == "text"
        self.transform = transform_for(preprocessing)
        self.model = run.model.eval()
        self.split_output = split_output
        self.objective = run.objective()

    def forward(self, inputs):
        transformed = inputs if self.text else self.transform(inputs)  # text: the runtime trims padding itself
        return self.objective.scores(self.split_output(self.model(transformed))[0])


def example_inputs(preprocessing: dict) -> torch.Tensor:
    """Two stored inputs of the right shape and dtype to trace the graph with."""
    kind = preprocessing["type"]
    if kind == "image":
        shape = (2, preprocessing["channels"], preprocessing["height"], preprocessing["width"])
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    if kind == "audio":
        return torch.randn(2, preprocessing["samples"], generator=torch.Generator().manual_seed(0)) * 0.1
    if kind == "table":
        encoder = preprocessing["encoder"]
        width = len(encoder["numeric"]) + sum(len(categories) for categories in encoder["categorical"].values())
        return torch.zeros(2, width)
    if kind == "text":
        return torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]])
    raise ValueError(f"no example inputs for {kind}")


def write_bundle(run_dir: str | Path, folder: str | Path, example=None) -> Path:
    """Export the run in `run_dir` to a bundle in `folder` (created); `example`: stored inputs to trace with
    (default: 2 samples of the run's val split)."""
    import lamina
    from lamina.core.version import __version__

    torch.set_num_threads(1)
    run = lamina.load_run(run_dir)
    preprocessing = run.data_record["preprocessing"]
    dtype, kind = KINDS[preprocessing["type"]]
    if example is None:
        example = example_inputs(preprocessing)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = [None, *example.shape[1:]]
    if kind == "text":
        shape[1] = None
    dynamic = {0: "batch"} | ({1: "tokens"} if kind == "text" else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # TorchScript's exporter is fast; some operators (STFT, embedding bags with padding) need dynamo's
            torch.onnx.export(
                Scored(run),
                (example,),
                str(folder / "model.onnx"),
                input_names=["inputs"],
                output_names=["scores"],
                dynamic_axes={"inputs": dynamic, "scores": {0: "batch"}},
                dynamo=False,
            )
        except Exception:
            shapes = {"inputs": {axis: torch.export.Dim.AUTO for axis in dynamic}}
            program = torch.onnx.export(
                Scored(run), (example,), input_names=["inputs"], output_names=["scores"], dynamic_shapes=shapes,
                dynamo=True, verbose=False,
            )  # fmt: skip
            program.save(str(folder / "model.onnx"))
    summary = run.summary
    temperature = ((summary.get("calibration") or {}).get("temperature") or {}).get("value")
    metadata = {
        "format": "lamina-bundle",
        "version": 1,
        "lamina_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "run": Path(run_dir).name,
        "config_hash": hashlib.sha256((Path(run_dir) / "config.yaml").read_bytes()).hexdigest(),
        "task": run.spec.task,
        "family": summary.get("model"),
        "classes": run.spec.class_names,
        "threshold": summary.get("threshold"),
        "temperature": temperature,
        "input": {"name": "inputs", "dtype": dtype, "shape": shape, "kind": kind},
        "output": {"name": "scores", "shape": [None, run.objective().output_size]},
        "preprocessing": preprocessing,
        "metrics": {split: summary["metrics"].get(split) for split in ("val", "test")},
        "files": {"onnx": "model.onnx", "tokenizer": None, "safetensors": None},
    }
    (folder / "bundle.json").write_text(json.dumps(metadata, indent=1, default=str))
    return folder


if __name__ == "__main__":
    print(write_bundle(sys.argv[1], sys.argv[2]))
