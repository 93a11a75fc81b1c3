"""`lamina predict BUNDLE` in a fresh virtual environment holding lamina (installed without its dependencies) and
only the packages of its `runtime` extra — no PyTorch, no pydantic — compared with `lamina predict RUN` from the
full environment on the same files: the same labels, and how far the probabilities are apart.

    python bench/bundle_without_torch.py \\
        --case RUN_DIR BUNDLE_DIR INPUT... \\
        --case RUN_DIR BUNDLE_DIR INPUT...

A BUNDLE_DIR that does not exist is exported first, with `lamina export`.
Prints one line per case and exits 1 when any labels differ or a command fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runtime_requirements() -> list[str]:
    """The `runtime` extra of pyproject.toml: exactly what the bundle runtime needs."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["runtime"]


def make_environment(folder: Path) -> Path:
    """A virtual environment in `folder` with lamina (no dependencies) and the runtime extra; its `lamina`."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    subprocess.run([*pip, *runtime_requirements()], check=True)
    python = folder / "bin" / "python"
    probe = "import importlib.util as u; print([m for m in ('torch', 'pydantic', 'yaml') if u.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    print(f"environment {folder}: {' '.join(runtime_requirements())}; of torch/pydantic/yaml installed: {found}")
    return folder / "bin" / "lamina"


def export_command(run: str, bundle: str) -> list[str]:
    """`lamina export RUN --out BUNDLE`, in the full environment."""
    return [sys.executable, "-m", "lamina", "export", run, "--out", bundle]


def predictions(command: list[str]) -> tuple[list[dict], float]:
    start = time.perf_counter()
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} … failed ({done.returncode}):\n{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines()], seconds


def compare(lamina: Path, run: str, bundle: str, inputs: list[str]) -> bool:
    if not Path(bundle).is_dir():
        subprocess.run(export_command(run, bundle), check=True, capture_output=True, cwd=ROOT)
    from_run, run_seconds = predictions([sys.executable, "-m", "lamina", "predict", run, *inputs])
    from_bundle, bundle_seconds = predictions([str(lamina), "predict", bundle, *inputs])
    same = [a["label"] for a in from_run] == [b["label"] for b in from_bundle]
    difference = max(
        (abs(a["probabilities"][name] - b["probabilities"][name])
         for a, b in zip(from_run, from_bundle, strict=True) for name in a.get("probabilities", {})),
        default=0.0,
    )  # fmt: skip
    print(
        f"{Path(run).name}: {len(from_bundle)} inputs, labels {'equal' if same else 'DIFFER'}, max |Δ probability| "
        f"{difference:.2g}; lamina predict RUN {run_seconds:.2f} s (with PyTorch), BUNDLE {bundle_seconds:.2f} s "
        "(without)"
    )
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", nargs="+", action="append", required=True, metavar="RUN_DIR BUNDLE_DIR INPUT")
    parser.add_argument("--environment", help="reuse (or create) the environment in this folder")
    arguments = parser.parse_args()
    folder = Path(arguments.environment or tempfile.mkdtemp(prefix="lamina-runtime-"))
    lamina = folder / "bin" / "lamina" if (folder / "bin" / "lamina").exists() else make_environment(folder)
    help_text = subprocess.run([str(lamina), "--help"], capture_output=True, text=True)
    print(f"lamina --help without PyTorch: exit {help_text.returncode}")
    results = [compare(lamina, case[0], case[1], case[2:]) for case in arguments.case]
    return 0 if all(results) and help_text.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
