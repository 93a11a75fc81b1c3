"""What `runtime.keep_freed_memory` buys on CPU: glibc's malloc left as it is against malloc told to keep freed
memory (lamina.training.runtime.keep_freed_memory), on the training steps and evaluation passes of a conv net.

    .venv/bin/python bench/allocator.py [--steps 40] [--threads 1] [--repeats 2]

Each measurement is a fresh process (mallopt cannot be undone), the two settings alternate, and each process
runs the same steps: airbench's network (configs/cifar10_airbench.yaml's model), SGD, batches of 512 random
32 × 32 RGB images with a short batch of 200 every fifth step, and an evaluation pass over 1,000 images every
tenth. Prints, per process: seconds per step, system (kernel) CPU seconds, minor page faults, resident memory at
the end and at the peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(keep: bool, steps: int, threads: int) -> dict:
    import torch

    from lamina.data.spec import DataSpec
    from lamina.models.registry import build_model
    from lamina.training.runtime import keep_freed_memory

    kept = keep_freed_memory() if keep else False
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model("resnet", DataSpec("image", "classification", (3, 32, 32), num_classes=10), preset="airbench")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    evaluation_images = torch.randn(1000, 3, 32, 32)
    start_usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for step in range(1, steps + 1):
        batch = 512 if step % 5 else 200
        images, labels = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if step % 10 == 0:
            with torch.no_grad():
                model.eval()
                model(evaluation_images)
                model.train()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return {
        "keep_freed_memory": kept,
        "seconds_per_step": round(seconds / steps, 3),
        "system_seconds": round(usage.ru_stime - start_usage.ru_stime, 1),
        "minor_faults": usage.ru_minflt - start_usage.ru_minflt,
        "resident_mib_at_end": resident_pages * resource.getpagesize() >> 20,
        "peak_resident_mib": usage.ru_maxrss >> 10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["keep", "default"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(measure(arguments.child == "keep", arguments.steps, arguments.threads)))
        return
    results: dict[str, list[dict]] = {"default": [], "keep": []}
    for _ in range(arguments.repeats):
        for mode in ("default", "keep"):
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--steps",
                str(arguments.steps),
                "--threads",
                str(arguments.threads),
            ]
            result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            results[mode].append(result)
            print(mode, result, flush=True)
    for mode, rows in results.items():
        mean = sum(row["seconds_per_step"] for row in rows) / len(rows)
        print(f"{mode:8s} mean {mean:.3f} s/step over {len(rows)} processes")
    ratio = sum(r["seconds_per_step"] for r in results["keep"]) / sum(r["seconds_per_step"] for r in results["default"])
    print(f"keep ÷ default time per step: {ratio:.2f}")


if __name__ == "__main__":
    main()
