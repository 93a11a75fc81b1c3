"""Temperature scaling on finished runs: fit the temperature on each run's val split (`lamina calibrate`, the code
path of `train.calibrate: temperature`) and print the test split's ECE, MCE, Brier and NLL before → after, the
temperature and the test accuracy before and after (which a temperature cannot change).

Calibrating writes into the run folders (the temperature, metrics, plots/reliability.png): pass copies.

    cp -r runs/insight/*-cifar10_airbench runs/insight/*-sms_spam_rnn /tmp/calibrated/
    .venv/bin/python bench/calibration.py /tmp/calibrated/*
    .venv/bin/python bench/calibration.py --trained RUN   # a run trained with train.calibrate: temperature
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model  # noqa: E402 (bench/ is first on sys.path when run as a script)

FIGURES = ("ece", "mce", "brier", "nll")


def row(name: str, temperature: float, before: dict, after: dict, accuracy: str) -> str:
    changes = " | ".join(f"{before[key]:.4f} → {after[key]:.4f}" for key in FIGURES)
    return f"| {name} | {temperature:.3f} | {changes} | {accuracy} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="copies of finished classification runs, calibrated here")
    parser.add_argument(
        "--trained", nargs="*", default=[], help="runs trained with train.calibrate: temperature, read as they are"
    )
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    import torch

    from lamina.run import load_run

    torch.set_num_threads(arguments.threads)
    print(f"{datetime.date.today()}, {cpu_model()}, {arguments.threads} thread(s); test split, 15 bins")
    print("| run | T | ECE | MCE | Brier | NLL | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for path in arguments.runs:
        run = load_run(path)
        accuracy_before = run.metrics["test"]["accuracy"]
        record = run.calibrate()
        fitted = record["temperature"]
        accuracy = f"{accuracy_before:.4f} → {run.metrics['test']['accuracy']:.4f}"
        print(row(Path(path).name, fitted["value"], fitted["before"]["test"], fitted["after"]["test"], accuracy))
    for path in arguments.trained:
        run = load_run(path)
        fitted = run.summary["calibration"]["temperature"]
        accuracy = f"{run.metrics['test']['accuracy']:.4f} (calibrated)"
        name = f"{Path(path).name} (train.calibrate)"
        print(row(name, fitted["value"], fitted["before"]["test"], fitted["after"]["test"], accuracy))


if __name__ == "__main__":
    main()
