"""Does the training doctor's suggested change fix the run? Two deliberately broken digits runs (the same as in
tests/test_doctor.py): a 10-layer sigmoid MLP without normalization (vanishing gradients) and an MLP at 1000 times
AdamW's default learning rate (it diverges). Each is trained, diagnosed, and trained again with the finding's
`changes` applied as overrides; the table shows the finding, the change and the test accuracy before and after.

    .venv/bin/python bench/doctor_fixes.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lamina  # noqa: E402
from lamina.core.errors import TrainingDiverged  # noqa: E402
from lamina.insight.doctor import as_overrides  # noqa: E402


def mlp(hidden: list[int], optimizer: dict, seed: int, **model) -> dict:
    return {
        "seed": seed,
        "data": "digits",
        "model": {"name": "mlp", "hidden_sizes": hidden, **model},
        "train": {"epochs": 10, "batch_size": 64, "optimizer": optimizer},
        "runtime": {"threads": 1},
    }


def trained(config: dict, overrides: dict | None = None) -> tuple[str, lamina.Run]:
    """('0.9749', run), or ('diverged', run) for a run that diverged."""
    runs_dir = Path(tempfile.mkdtemp())
    try:
        run = lamina.train(config, overrides=overrides, runs_dir=runs_dir, progress="quiet")
        return f"{run.metrics['test']['accuracy']:.4f}", run
    except TrainingDiverged:
        return "diverged", lamina.load_run(next(runs_dir.iterdir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    print("| case | seed | finding | suggested change | test accuracy before | after | findings after |")
    print("|---|---|---|---|---|---|---|")
    for seed in arguments.seeds:
        cases = {
            "vanishing": mlp([64] * 10, {"name": "adam", "learning_rate": 0.001}, seed, activation="sigmoid"),
            "exploding": mlp([128, 64], {"name": "adamw", "learning_rate": 1.0}, seed),
        }
        for case, config in cases.items():
            before, run = trained(config)
            serious = [finding for finding in run.doctor() if finding.severity != "info"]
            finding = serious[0]
            after, fixed = trained(config, finding.changes)
            left = [f"{found.severity} {found.kind}" for found in fixed.doctor() if found.severity != "info"] or [
                "none"
            ]
            print(
                f"| {case} | {seed} | {finding.severity} {finding.kind} | `{as_overrides(finding.changes)}` | {before} "
                f"| {after} | {', '.join(left)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
