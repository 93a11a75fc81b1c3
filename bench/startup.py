"""Start-up cost of `lamina --help`: wall time over repeated runs, and proof that PyTorch is not imported.

.venv/bin/python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    arguments = parser.parse_args()
    lamina = Path(sys.executable).parent / "lamina"
    command = [str(lamina), "--help"] if lamina.exists() else [sys.executable, "-m", "lamina", "--help"]
    times = []
    for _ in range(arguments.runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    baseline = []
    for _ in range(arguments.runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        baseline.append(time.perf_counter() - started)
    trace = subprocess.run([sys.executable, "-X", "importtime", "-m", "lamina", "--help"], capture_output=True,
                           text=True, cwd=ROOT)  # fmt: skip
    rows = [line.split("|") for line in trace.stderr.splitlines() if "|" in line and "self [us]" not in line]
    modules = {row[-1].strip().split(".")[0] for row in rows}
    cumulative = sorted(((int(row[1]), row[-1].strip()) for row in rows), reverse=True)[:5]
    print(f"{' '.join(command)}: median {statistics.median(times) * 1000:.0f} ms over {arguments.runs} runs "
          f"(min {min(times) * 1000:.0f} ms); bare python: median {statistics.median(baseline) * 1000:.0f} ms")  # fmt: skip
    print(f"torch imported: {'torch' in modules}; pydantic imported: {'pydantic' in modules}")
    print("largest cumulative imports (µs): " + ", ".join(f"{name} {us}" for us, name in cumulative))


if __name__ == "__main__":
    main()
