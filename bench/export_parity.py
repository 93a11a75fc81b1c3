"""Export finished runs to ONNX bundles and print the parity table of docs/benchmarks.md ("Export to ONNX"):
per run the exporter torch used, the opset, onnxruntime's max abs difference from PyTorch on the run's val inputs,
whether every argmax agrees, the seconds of export + verification and model.onnx's size. Each run is copied to a
temporary folder first, so the run folders given are only read. Exits 1 when any run fails to export.

    .venv/bin/python bench/export_parity.py runs/insight/*-digits_cnn runs/insight/*-mnist_cnn ... [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402


def export_one(run: Path, scratch: Path) -> dict:
    from lamina.core.errors import LaminaError
    from lamina.export import export_run

    copy = scratch / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "bundle", "explanations"))
    try:
        bundle = export_run(copy)
    except LaminaError as error:
        return {"run": run.name, "error": str(error).splitlines()[0]}
    check = json.loads((bundle / "export.json").read_text())
    family = json.loads((bundle / "bundle.json").read_text())["family"]
    return {"run": run.name, "family": family, **check}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    arguments = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in arguments.runs:
            rows.append(export_one(run, Path(scratch)))
            print(f"exported {run.name}", file=sys.stderr)
    print(f"lamina export, {date.today()}, {cpu_model()}, 1 thread, torch {torch.__version__}\n")
    print("| run | family | exporter | opset | val inputs | max abs difference | argmax equal | export + verify s "
          "| model.onnx MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        name = row["run"].split("-", 2)[-1]
        if "error" in row:
            print(f"| {name} | — | failed: {row['error']} | | | | | | |")
            continue
        lengths = f" (T {', '.join(map(str, row['dynamic']['lengths']))})" if "lengths" in row["dynamic"] else ""
        print(
            f"| {name} | {row['family']} | {row['exporter']} | {row['opset']} | "
            f"{' + '.join(map(str, row['dynamic']['batch_sizes']))}{lengths} | {row['max_abs_difference']:.2g} | "
            f"{'yes' if row['argmax_equal'] else 'NO'} | {row['seconds']:.1f} | {row['onnx_bytes'] / 1e6:.2f} |"
        )
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
