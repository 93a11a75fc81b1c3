"""Vanishing gradients: a vanilla RNN against an LSTM on a long-range task made from real MNIST digits.

Each sample is a row of MNIST digits (2 by default: 28 × 56 pixels) read column by column, left to right (one
step per column of 28 pixels); the label is the FIRST digit, so its evidence lies 28–56 steps before the final
state the classifier reads.
The script trains both cells with the same budget (gradient clipping on, lamina's rnn default), then
measures how strongly the loss reaches back: the norm of ∂loss/∂input at each column, averaged over a batch.

    .venv/bin/python bench/vanishing_gradients.py [--digits 2] [--epochs 10] [--strings 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def column_gradients(run, batch: int = 256) -> list[float]:
    """‖∂loss/∂x_t‖ per column t of `batch` test strings (the model in eval mode, inputs as the model sees them)."""
    from lamina.run import run_data

    data = run_data(run.config)
    split = data.splits["test"]
    inputs = data.transform(split.inputs[:batch]).requires_grad_(True)
    model = run.model.eval()
    with torch.backends.cudnn.flags(enabled=False):
        loss = torch.nn.functional.cross_entropy(model(inputs), split.targets[:batch])
    loss.backward()
    return inputs.grad.abs().pow(2).sum(dim=(0, 1, 2)).sqrt().tolist()  # (W,) one norm per column


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--digits", type=int, default=2, help="digits per row (the first is the label)")
    parser.add_argument("--strings", type=int, default=20000)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    arguments = parser.parse_args()
    import lamina

    torch.set_num_threads(1)
    for cell in ("rnn", "lstm"):
        config = {
            "seed": 0,
            "data": {
                "name": "digit_strings",
                "path": arguments.data,
                "target": "first_digit",
                "digits": arguments.digits,
                "train_strings": arguments.strings,
                "val_strings": 1000,
                "test_strings": 2000,
            },
            "model": {
                "name": "rnn",
                "cell": cell,
                "hidden_size": 64,
                "pooling": "last",
                **({"forget_bias": 1.0} if cell == "lstm" else {}),
            },
            "train": {
                "epochs": arguments.epochs,
                "batch_size": 64,
                "log_every_steps": 20,
                "optimizer": {"name": "adam", "learning_rate": 0.002},
            },
            "runtime": {"threads": 1},
        }
        started = time.perf_counter()
        run = lamina.train(config, name=f"vanishing-{cell}", progress="quiet")
        norms = column_gradients(run)
        first, last = sum(norms[:28]) / 28, sum(norms[-28:]) / 28  # the first digit's columns, the last's
        print(
            f"{cell}: test accuracy {run.metrics['test']['accuracy']:.4f} ({time.perf_counter() - started:.0f} s); "
            f"‖∂loss/∂x‖ over the first digit's columns {first:.2e}, over the last digit's {last:.2e} "
            f"(ratio {first / last:.2e}); run {run.dir}",
            flush=True,
        )


if __name__ == "__main__":
    main()
