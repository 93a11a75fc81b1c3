"""What the group audit's bootstrap costs: `audit_split` (lamina/insight/groups.py) on synthetic decisions of
10,000 samples in 4 groups, 1000 resamples, for 2 and 10 classes, on one PyTorch thread; the median of a few
repeats, with the CPU time of this process (a busy machine disturbs it less than the wall time, also shown).

    .venv/bin/python bench/fairness_bootstrap.py [--samples 10000] [--resamples 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from machine import cpu_model

from lamina.insight.groups import audit_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print(f"{cpu_model()}; torch {torch.__version__}, 1 thread")
    for classes in (2, 10):
        scores = torch.softmax(torch.randn(arguments.samples, classes, generator=generator) * 3, dim=1)
        targets = torch.randint(0, classes, (arguments.samples,), generator=generator)
        decided = scores.argmax(dim=1)
        names = [f"group{i}" for i in torch.randint(0, 4, (arguments.samples,), generator=generator).tolist()]
        positive = 1 if classes == 2 else None
        walls, cpus = [], []
        for repeat in range(arguments.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            audit_split(scores, targets, names, None, decided, positive, arguments.resamples, repeat)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        print(
            f"{classes:2d} classes, {arguments.samples} samples, {arguments.resamples} resamples: "
            f"median {statistics.median(cpus):.3f} s CPU, {statistics.median(walls):.3f} s wall"
        )


if __name__ == "__main__":
    main()
