"""Start-up cost of the CLI: the commands that must not import PyTorch (`--help`, `schema`, `models`, `datasets`),
and `lamina validate` of the digits config beside a bare `import torch`, measured alternately in fresh processes.

.venv/bin/python bench/startup.py [--runs 10]

Each command runs once first, unmeasured, with bytecode caching on (as Python has it unless PYTHONDONTWRITEBYTECODE
is set), so the figures are those of an installed lamina, not of compiling its modules on every start.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
LIGHT = (["--help"], ["schema"], ["models"], ["datasets"])
ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=ENVIRONMENT)
    return time.perf_counter() - started


def imported(arguments: list[str]) -> set[str]:
    """Top-level packages a command imports (python -X importtime)."""
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lamina", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENVIRONMENT,
    )
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in trace.stderr.splitlines() if "|" in line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    arguments = parser.parse_args()
    lamina = Path(sys.executable).parent / "lamina"
    prefix = [str(lamina)] if lamina.exists() else [sys.executable, "-m", "lamina"]
    cpu = cpu_model()
    print(f"{cpu}; Python {platform.python_version()}; median of {arguments.runs} fresh processes")
    baseline = statistics.median(seconds([sys.executable, "-c", "pass"]) for _ in range(arguments.runs))
    print(f"bare python: {baseline * 1000:.0f} ms")
    for command in [*LIGHT, ["validate", "configs/digits_cnn.yaml"]]:
        seconds([*prefix, *command])  # writes the bytecode cache
    for command in LIGHT:
        times = [seconds([*prefix, *command]) for _ in range(arguments.runs)]
        heavy = sorted({"torch", "numpy", "sklearn", "scipy"} & imported(command))
        print(
            f"lamina {command[0]:9s} median {statistics.median(times) * 1000:4.0f} ms (min {min(times) * 1000:.0f});"
            f" imports {', '.join(heavy) or 'no torch, numpy, scikit-learn or scipy'}"
        )
    torch_times, validate_times = [], []
    for _ in range(arguments.runs):  # alternating, so both see the same machine
        torch_times.append(seconds([sys.executable, "-c", "import torch"]))
        validate_times.append(seconds([*prefix, "validate", "configs/digits_cnn.yaml"]))
    torch_median, validate_median = statistics.median(torch_times), statistics.median(validate_times)
    print(
        f"import torch: median {torch_median:.2f} s; lamina validate configs/digits_cnn.yaml: median "
        f"{validate_median:.2f} s, {validate_median - torch_median:.2f} s beyond import torch"
    )


if __name__ == "__main__":
    main()
