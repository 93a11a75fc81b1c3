"""Shipping a run: `lamina export RUN --format onnx` writes a verified bundle (docs/deploy.md).

graph.py    the run's preprocessing + model + scores as one nn.Module; torch's dynamo exporter, then the
            TorchScript one
verify.py   onnxruntime against PyTorch on the run's val inputs, before anything is written
bundle.py   bundle.json, export.json, the atomic bundle folder; `export_run`
"""

from lamina.export.bundle import FORMATS, export_run

__all__ = ["export_run", "FORMATS"]
