"""Faithfulness of explanations on finished runs, and what `lamina explain` costs (docs/benchmarks.md, docs/insight.md).

.venv/bin/python bench/explain_faithfulness.py --runs runs/insight [--deletion-count 300] [--sanity-count 64]

The runs: `lamina train configs/NAME.yaml --runs-dir runs/insight --name NAME --set runtime.threads=1` for each NAME
below (the folder's name ends with NAME, which is how a run is found).

For every run folder found under --runs:
- `wall`: the whole command `lamina explain RUN --count 16` (start-up, data, explanation, sanity check, deletion
  curves, pictures) with the default method, timed in a fresh process, for every run (images, tables, text, audio,
  a language model);
- `sanity`: for the MNIST CNN and CIFAR-10 runs, integrated gradients and Grad-CAM on --sanity-count test inputs:
  the rank correlation with the randomized model against the self reference;
- `deletion`: for the MNIST CNN run, integrated gradients on --deletion-count test images: the fraction whose
  deletion AUC is below a random order's.
The figures are printed and written to bench/explain_faithfulness.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's lamina, also when another one is installed
TIMED = (
    "digits_cnn",
    "breast_cancer_mlp",
    "mnist_cnn",
    "mnist_resnet",
    "breastmnist_resnet",
    "cifar10_airbench",
    "sms_spam_fasttext",
    "sms_spam_rnn",
    "fsdd_crnn",
    "shakespeare_char_gpt_fast",
)
SANITY = ("mnist_cnn", "cifar10_airbench")


def find(runs: Path, name: str) -> Path | None:
    """The newest completed run folder whose name ends with `name`."""
    found = sorted(path for path in runs.glob(f"*-{name}") if (path / "model.safetensors").is_file())
    return found[-1] if found else None


def wall(run: Path, output: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "explain", str(run), "--count", "16", "--json", "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip()}
    record = json.loads(done.stdout)
    return {
        "method": record["method"],
        "command_seconds": round(seconds, 1),
        "explain_seconds": record["seconds"],
        "sanity_check": record["sanity_check"],
        "deletion": record["deletion"],
    }


def checked(run: Path, method: str, count: int, output: Path) -> dict:
    import lamina

    record = lamina.load_run(run).explain(method=method, count=count, output=output).record
    return {
        "count": count,
        "randomized_rank_correlation": record["sanity_check"]["randomized_rank_correlation"],
        "self_rank_correlation": record["sanity_check"]["self_rank_correlation"],
        "deletion_auc": record["deletion"]["auc"],
        "random_deletion_auc": record["deletion"]["random_auc"],
        "fraction_below_random": record["deletion"]["fraction_below_random"],
        "seconds": record["seconds"]["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/insight"))
    parser.add_argument("--sanity-count", type=int, default=64)
    parser.add_argument("--deletion-count", type=int, default=300)
    parser.add_argument("--skip-wall", action="store_true", help="only the sanity check and deletion figures")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="only these runs, merged into the JSON written before"
    )
    arguments = parser.parse_args()
    arguments.runs = arguments.runs.resolve()  # the explain commands run from the repository root
    import torch

    torch.set_num_threads(2)
    scratch = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    written = ROOT / "bench" / "explain_faithfulness.json"
    figures: dict = {"machine": cpu_model(), "threads": 2, "wall": {}, "sanity": {}}
    if arguments.only and written.is_file():
        figures = json.loads(written.read_text())
    wanted = set(arguments.only or [*TIMED, *SANITY])
    for name in () if arguments.skip_wall else [name for name in TIMED if name in wanted]:
        run = find(arguments.runs, name)
        if run is not None:
            figures["wall"][name] = wall(run, scratch / f"wall-{name}")
            print(name, json.dumps(figures["wall"][name]), flush=True)
    for name in [name for name in SANITY if name in wanted]:
        run = find(arguments.runs, name)
        if run is None:
            continue
        for method in ("integrated_gradients", "grad_cam"):
            result = checked(run, method, arguments.sanity_count, scratch / f"{name}-{method}")
            figures["sanity"][f"{name} {method}"] = result
            print(name, method, json.dumps(result), flush=True)
    mnist = find(arguments.runs, "mnist_cnn") if "mnist_cnn" in wanted else None
    if mnist is not None:
        result = checked(mnist, "integrated_gradients", arguments.deletion_count, scratch / "deletion")
        figures["deletion"] = {"mnist_cnn integrated_gradients": result}
        print("deletion", json.dumps(result), flush=True)
    figures["date"] = time.strftime("%Y-%m-%d")
    written.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
