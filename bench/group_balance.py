"""Group-balanced training on a table whose minority group is under-represented: scikit-learn's 8×8 digits as a
CSV (64 pixel columns, the digit as target), where a small share of the rows (the group 'inverted') have their
pixels inverted (16 − value) — the same digits drawn another way, rare in training. The group column is
data.groups' column, not a feature. For each seed, three runs of the same MLP: no balancing, balance_method:
sampling, balance_method: loss_weights. Reported: test accuracy per group, and the accuracy on every test row
shown inverted (a larger held-out set of the minority's kind).

    python bench/group_balance.py [--seeds 5] [--share 0.04] [--epochs 30]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

import numpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lamina  # noqa: E402
from lamina.run import run_data  # noqa: E402


def write_table(path: Path, share: float) -> None:
    """digits → CSV with a `style` column: 'inverted' for a seeded `share` of the rows (pixels 16 − value)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    generator = numpy.random.default_rng(12345)
    inverted = generator.random(len(digits.target)) < share
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"p{i}" for i in range(64)] + ["style", "digit"])
        for pixels, digit, flip in zip(digits.data, digits.target, inverted, strict=True):
            values = 16 - pixels if flip else pixels
            writer.writerow([f"{value:g}" for value in values] + ["inverted" if flip else "normal", int(digit)])


def group_accuracy(run_dir: Path) -> dict[str, float]:
    """Test accuracy per style, and on every test row shown inverted."""
    run = lamina.load_run(run_dir)
    data = run_data(run.config)
    model = run.model.eval()
    test, styles = data.splits["test"], data.groups["style"]["test"]
    numeric = data.preprocessing["encoder"]["numeric"]
    mean = torch.tensor([numeric[f"p{i}"]["mean"] for i in range(64)])
    std = torch.tensor([numeric[f"p{i}"]["std"] for i in range(64)])
    raw = test.inputs * std + mean  # (N, 64) pixels as in the CSV
    is_inverted = torch.tensor([style == "inverted" for style in styles])
    upright = torch.where(is_inverted[:, None], 16 - raw, raw)
    shown_inverted = ((16 - upright) - mean) / std
    with torch.no_grad():
        correct = model(test.inputs).argmax(dim=1) == test.targets
        correct_inverted = model(shown_inverted).argmax(dim=1) == test.targets
    return {
        "normal": float(correct[~is_inverted].float().mean()),
        "inverted": float(correct[is_inverted].float().mean()),
        "inverted_count": int(is_inverted.sum()),
        "all_rows_inverted": float(correct_inverted.float().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--share", type=float, default=0.04)
    parser.add_argument("--epochs", type=int, default=30)
    options = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="group_balance-"))
    table = folder / "digits_styles.csv"
    write_table(table, options.share)
    methods = {"none": {}, "sampling": {"balance_groups": "style"}, "loss_weights": {"balance_groups": "style"}}
    results: dict[str, list[dict]] = {name: [] for name in methods}
    for seed in range(options.seeds):
        for name, balance in methods.items():
            train = {"epochs": options.epochs, "batch_size": 64, **balance}
            if name == "loss_weights":
                train["balance_method"] = "loss_weights"
            config = {
                "seed": seed,
                "data": {
                    "name": "csv",
                    "path": str(table),
                    "target": "digit",
                    "test_fraction": 0.4,
                    "groups": {"name": "style", "column": "style"},
                },
                "model": {"name": "mlp"},
                "train": train,
                "runtime": {"threads": 1},
            }
            run = lamina.train(config, runs_dir=folder / "runs", name=f"{name}-{seed}", progress="quiet")
            results[name].append(group_accuracy(run.dir))
            print(name, seed, results[name][-1], flush=True)
    print(f"\n{options.seeds} seeds, inverted share {options.share:g}, {options.epochs} epochs, MLP; mean (min–max)")
    for name, rows in results.items():
        cells = []
        for key in ("normal", "inverted", "all_rows_inverted"):
            values = [row[key] for row in rows]
            cells.append(f"{key} {statistics.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})")
        print(f"{name:13s} " + "; ".join(cells))


if __name__ == "__main__":
    main()
