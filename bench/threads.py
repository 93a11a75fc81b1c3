"""CPU threads and OpenMP wait policy: training throughput for a small and a larger CNN, on a quiet machine and
with one other busy process, each setting in a fresh interpreter (the policy is read when torch starts).

    .venv/bin/python bench/threads.py

This is the measurement behind lamina's default (`runtime.threads` unset): one thread when a batch's forward
pass costs under 400 MFLOP, every core otherwise, with OMP_WAIT_POLICY=PASSIVE set by the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

STEP = textwrap.dedent("""
    import sys, time, torch, torch.nn as nn
    from torch.utils.flop_counter import FlopCounterMode
    threads, size, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads); torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 1, size, size), torch.randint(0, 10, (batch,))
    with FlopCounterMode(display=False) as counter:
        model(x)
    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    for _ in range(5):
        step()
    count = max(10, int(40 * 28 * 28 / size / size))
    started = time.perf_counter()
    for _ in range(count):
        step()
    print(batch * count / (time.perf_counter() - started), counter.get_total_flops())
""")

SETTINGS = [
    ("1 thread", 1, {}),
    ("2 threads", 2, {"OMP_WAIT_POLICY": "ACTIVE"}),
    ("2 threads, PASSIVE", 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
]
MODELS = [("digits CNN 8×8, batch 64", 8, 64), ("16×16, batch 64", 16, 64), ("MNIST CNN 28×28, batch 128", 28, 128)]


def measure(threads: int, size: int, batch: int, environment: dict) -> tuple[float, int]:
    result = subprocess.run(
        [sys.executable, "-c", STEP, str(threads), str(size), str(batch)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **environment},
    )
    speed, flops = result.stdout.split()
    return float(speed), int(flops)


def main() -> None:
    print("| model | forward MFLOP/batch | condition | " + " | ".join(name for name, _, _ in SETTINGS) + " |")
    print("|---|---|---|" + "---|" * len(SETTINGS))
    for condition in ("quiet", "one busy process"):
        busy = None
        if condition != "quiet":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for label, size, batch in MODELS:
                speeds, flops = [], 0
                for _, threads, environment in SETTINGS:
                    speed, flops = measure(threads, size, batch, environment)
                    speeds.append(speed)
                cells = " | ".join(f"{speed:,.0f}" for speed in speeds)
                print(f"| {label} | {flops / 1e6:,.0f} | {condition} | {cells} |", flush=True)
        finally:
            if busy is not None:
                busy.kill()


if __name__ == "__main__":
    main()
