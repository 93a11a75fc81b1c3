"""Learning from 5 % of MNIST's labels: from scratch, from an autoencoder-pretrained encoder, and with
pseudo-labels (offline teacher → student, and online FixMatch), each on the same labelled subset per seed.

    .venv/bin/python bench/few_labels.py [--seeds 0 1 2] [--methods ...] [--runs-dir runs/few-labels] [--family dense]

1. pretrain a denoising autoencoder on all training images, labels unused (configs/mnist_autoencoder_pretrain.yaml,
   or its _dense twin with --family dense) — or reuse one with --encoder RUN_DIR
2. per seed: scratch = configs/mnist_few_labels.yaml (or mnist_few_labels_dense.yaml) as written;
   autoencoder-pretrained = the same with model.init_from = the autoencoder run (encoder loaded, head new), the
   encoder at --encoder-factor × the learning rate;
   offline pseudo-labels = the scratch run labels the unlabelled 95 %; images it gives ≥ --threshold probability
   (default 0.01: every image, which beat 0.5 and 0.8 here — docs/benchmarks.md) join the training split, and a fresh student trains on both
   for --student-epochs epochs;
   ensemble pseudo-labels = the same, labelled by the mean of --teachers scratch runs on the same labelled subset
   (the scratch run and --teachers − 1 more seeds with data.seed fixed); their ensemble's accuracy is printed too;
   online pseudo-labels = the config with data.pseudo_labels (no teacher): each step also learns the model's own
   confident labels (≥ --online-threshold) of --unlabelled-ratio × batch unlabelled images on strongly
   augmented copies.
Prints test accuracy per seed and method, the means, and each method's margin over scratch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lamina  # noqa: E402
from lamina.ensemble import evaluate_ensemble  # noqa: E402

METHODS = ("autoencoder-pretrained", "offline-pseudo-labels", "ensemble-pseudo-labels", "online-pseudo-labels")
# the online method's strong view, on top of the config's crop + affine
STRONG_AUGMENT = [{"name": "affine", "degrees": 10, "scale": [0.9, 1.1]}, {"name": "cutout", "size": 8}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", default="runs/few-labels")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    parser.add_argument(
        "--family",
        choices=["conv", "dense"],
        default="conv",
        help="conv: configs/mnist_few_labels.yaml; dense: the fully connected _dense configs",
    )
    parser.add_argument(
        "--no-augmentation",
        action="store_true",
        help="train every classifier without data.augment (pretraining is unaugmented anyway)",
    )
    parser.add_argument("--encoder", help="a finished mnist_autoencoder_pretrain run to reuse")
    parser.add_argument(
        "--encoder-factor",
        type=float,
        default=1.0,
        help="learning-rate factor of the pretrained encoder while fine-tuning",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.01,
        help="offline pseudo-label confidence threshold (0.01: label every image; best here)",
    )
    parser.add_argument("--teachers", type=int, default=3, help="scratch runs whose mean labels (ensemble method)")
    parser.add_argument("--student-epochs", type=int, default=10, help="epochs of the offline student")
    parser.add_argument("--online-threshold", type=float, default=0.85)
    parser.add_argument("--unlabelled-ratio", type=int, default=2)
    parser.add_argument(
        "--model",
        type=json.loads,
        default={},
        help="model options (JSON) for every run, the pretraining included, e.g. a deeper encoder: "
        '\'{"channels": [32, 64, 128], "latent_size": 64, "classify_from": "code"}\'',
    )
    arguments = parser.parse_args()
    common = {
        "data.path": arguments.data,
        "runtime.threads": 1,
        **{f"model.{key}": value for key, value in arguments.model.items()},
    }
    classifier = {"data.augment": []} if arguments.no_augmentation else {}
    configs = ROOT / "configs"
    suffix = "_dense" if arguments.family == "dense" else ""
    few_labels, pretrain = f"mnist_few_labels{suffix}.yaml", f"mnist_autoencoder_pretrain{suffix}.yaml"

    def train(config: str, **overrides):
        started = time.perf_counter()
        settings = {**common, **(classifier if config == few_labels else {}), **overrides}
        run = lamina.train(configs / config, settings, runs_dir=arguments.runs_dir, progress="quiet")
        print(
            f"  {run.dir.name}: test accuracy {run.metrics['test'].get('accuracy', float('nan')):.4f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        return run

    encoder = None
    if "autoencoder-pretrained" in arguments.methods:
        if arguments.encoder:
            encoder = lamina.load_run(arguments.encoder)
        else:
            print("self-supervised pretraining (all training images, no labels)")
            encoder = train(pretrain)
    results: dict[str, list[float]] = {name: [] for name in ["scratch", *arguments.methods]}
    for seed in arguments.seeds:
        print(f"seed {seed}")
        scratch = train(few_labels, seed=seed)
        runs = {"scratch": scratch}
        if "autoencoder-pretrained" in arguments.methods:
            runs["autoencoder-pretrained"] = train(
                few_labels,
                seed=seed,
                **{
                    "model.init_from": str(encoder.dir),
                    "train.learning_rate_factors": {"encoder": arguments.encoder_factor},
                },
            )
        if "offline-pseudo-labels" in arguments.methods:
            runs["offline-pseudo-labels"] = train(
                few_labels,
                seed=seed,
                **{
                    "data.pseudo_labels": {"teacher": str(scratch.dir), "threshold": arguments.threshold},
                    "train.epochs": arguments.student_epochs,
                },
            )
        if "ensemble-pseudo-labels" in arguments.methods:
            teachers = [scratch] + [
                train(few_labels, seed=seed + 100 * k, **{"data.seed": seed}) for k in range(1, arguments.teachers)
            ]
            ensemble = evaluate_ensemble([run.dir for run in teachers])["metrics"]["ensemble"]["accuracy"]
            results.setdefault("(teacher ensemble)", []).append(ensemble)
            print(f"  teacher ensemble of {len(teachers)}: test accuracy {ensemble:.4f}", flush=True)
            runs["ensemble-pseudo-labels"] = train(
                few_labels,
                seed=seed,
                **{
                    "data.pseudo_labels": {
                        "teacher": [str(run.dir) for run in teachers],
                        "threshold": arguments.threshold,
                    },
                    "train.epochs": arguments.student_epochs,
                },
            )
        if "online-pseudo-labels" in arguments.methods:
            runs["online-pseudo-labels"] = train(
                few_labels,
                seed=seed,
                **{
                    "data.pseudo_labels": {
                        "threshold": arguments.online_threshold,
                        "strong_augment": STRONG_AUGMENT,
                        "unlabelled_ratio": arguments.unlabelled_ratio,
                    }
                },
            )
        for name, run in runs.items():
            results[name].append(run.metrics["test"]["accuracy"])
    print("\nmethod                   " + "  ".join(f"seed {s}" for s in arguments.seeds) + "    mean   margin")
    base = statistics.mean(results["scratch"])
    for name, values in results.items():
        mean = statistics.mean(values)
        margins = [value - own for value, own in zip(values, results["scratch"], strict=True)]
        print(
            f"{name:24s} " + "  ".join(f"{v:.4f}" for v in values) + f"  {mean:.4f}  {mean - base:+.4f}"
            f" (per seed {', '.join(f'{m:+.4f}' for m in margins)})"
        )
    Path(arguments.runs_dir, "few_labels.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
