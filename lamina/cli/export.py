"""`lamina export RUN [--format onnx] [--out DIR]` (lamina/cli/commands.py imports it; like every command it
imports PyTorch when it runs)."""

from __future__ import annotations

import json
from argparse import Namespace

__all__ = ["export"]


def export(arguments: Namespace) -> int | None:
    from lamina.export import export_run  # PyTorch, and onnx when it exports

    bundle = export_run(arguments.run_dir, arguments.out, arguments.format)
    check = json.loads((bundle / "export.json").read_text())
    print(
        f"exported with torch's {check['exporter']} exporter (opset {check['opset']}), "
        f"{check['onnx_bytes'] / 1e6:.1f} MB, in {check['seconds']:.1f} s; verified in onnxruntime on "
        f"{check['inputs_checked']} val inputs: max abs difference {check['max_abs_difference']:.2g} "
        f"(allowed {check['tolerance']:g}), argmax {'equal' if check['argmax_equal'] else 'different'}"
    )
    print(bundle)
    return None
