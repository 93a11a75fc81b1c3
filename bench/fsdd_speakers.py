"""Free Spoken Digits with each speaker held out in turn: train configs/fsdd_crnn.yaml on the other five
speakers, test on the held-out one. Prints test accuracy per speaker and the mean.

    .venv/bin/python bench/fsdd_speakers.py [--speakers george theo] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fsdd_crnn.yaml"))
    parser.add_argument("--speakers", nargs="+", default=SPEAKERS, choices=SPEAKERS, help="default: all six")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    arguments = parser.parse_args()
    import lamina
    from lamina.config.loading import parse_overrides

    overrides = {"runtime.threads": 1, **parse_overrides(arguments.overrides)}
    accuracies = {}
    for speaker in arguments.speakers:
        started = time.perf_counter()
        run = lamina.train(
            arguments.config,
            {**overrides, "data.split": "group", "data.test_groups": [speaker]},
            name=f"fsdd-heldout-{speaker}",
            progress="quiet",
        )
        accuracies[speaker] = run.metrics["test"]["accuracy"]
        print(
            f"{speaker}: test accuracy {accuracies[speaker]:.4f} ({time.perf_counter() - started:.0f} s, {run.dir})",
            flush=True,
        )
    print(
        f"mean over speakers: {statistics.mean(accuracies.values()):.4f}; "
        f"min {min(accuracies.values()):.4f} ({min(accuracies, key=accuracies.get)})"
    )


if __name__ == "__main__":
    main()
