"""Behaviour fingerprint: the sha256 of every final weight tensor (and the final metrics) of short seeded runs.

A restructuring of lamina must not change what it computes. This trains short versions of the shipped configs,
each in a fresh process on one thread, and records the hash of each tensor of the run's model.safetensors.

    .venv/bin/python bench/weight_hashes.py --record       # write bench/weight_hashes.json
    .venv/bin/python bench/weight_hashes.py                # train again and compare: exit 1 on any difference
    .venv/bin/python bench/weight_hashes.py --only digits-cnn mnist-vae

Hashes are bit-exact and so belong to one machine (CPU model and instruction set) and one torch build: the
recorded file says which. Runs needing a data set absent from ../shared/datasets are skipped. The metrics recorded
must be identical; metrics lamina reports since the record was written are listed, not compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
RECORD = ROOT / "bench" / "weight_hashes.json"

# name → (config, overrides, data sets it reads); "{run:NAME}" is the folder of an earlier case's run
STRONG = "[{name: affine, degrees: 10, scale: [0.9, 1.1]}, {name: cutout, size: 8}]"
CASES: dict[str, tuple[str, list[str], list[str]]] = {
    "digits-cnn": ("configs/digits_cnn.yaml", ["train.epochs=4"], []),
    "breast-cancer-mlp": ("configs/breast_cancer_mlp.yaml", ["train.epochs=20"], []),
    "mnist-cnn": ("configs/mnist_cnn.yaml", ["train.epochs=1", "train.max_steps=40"], ["mnist"]),
    "baby-gpt": ("configs/shakespeare_char_gpt.yaml", ["train.max_steps=100"], ["tinyshakespeare"]),
    "moe": ("configs/shakespeare_char_moe.yaml", ["train.max_steps=30", "data.eval_windows=200"], ["tinyshakespeare"]),
    "fsdd-crnn": ("configs/fsdd_crnn.yaml", ["train.epochs=1"], ["fsdd"]),
    "mnist-vae": ("configs/mnist_vae.yaml", ["train.epochs=1", "train.max_steps=40"], ["mnist"]),
    "mnist-strings-crnn": (
        "configs/mnist_strings_crnn.yaml",
        ["train.max_steps=20", "data.train_strings=1000", "data.val_strings=200", "data.test_strings=200"],
        ["mnist"],
    ),
    "sms-spam-rnn": ("configs/sms_spam_rnn.yaml", ["train.epochs=1"], ["sms_spam"]),
    "seattle-temps-gru": ("configs/seattle_temps_gru.yaml", ["train.epochs=2"], []),
    "breastmnist-airbench": ("configs/breastmnist_airbench.yaml", ["train.epochs=3"], ["breastmnist"]),
    "few-labels-scratch": ("configs/mnist_few_labels.yaml", ["train.epochs=1", "train.max_steps=30"], ["mnist"]),
    "few-labels-online-pseudo-labels": (
        "configs/mnist_few_labels.yaml",
        [
            "train.epochs=1",
            "train.max_steps=30",
            f"data.pseudo_labels={{threshold: 0.85, unlabelled_ratio: 2, strong_augment: {STRONG}}}",
        ],
        ["mnist"],
    ),
    "few-labels-offline-pseudo-labels": (
        "configs/mnist_few_labels.yaml",
        [
            "train.epochs=1",
            "train.max_steps=30",
            "data.pseudo_labels={teacher: '{run:few-labels-scratch}', threshold: 0.5}",
        ],
        ["mnist"],
    ),
    "few-labels-semi-supervised-autoencoder": (
        "configs/mnist_few_labels.yaml",
        ["train.epochs=1", "train.max_steps=30", "model.reconstruction_weight=1.0", "model.noise=masking"],
        ["mnist"],
    ),
    "autoencoder-pretrain": (
        "configs/mnist_autoencoder_pretrain.yaml",
        ["train.epochs=1", "train.max_steps=30"],
        ["mnist"],
    ),
    "few-labels-fine-tuned": (
        "configs/mnist_few_labels.yaml",
        [
            "train.epochs=2",
            "train.max_steps=40",
            "model.init_from={run:autoencoder-pretrain}",
            "train.freeze=[encoder]",
            "train.unfreeze={encoder: 1}",
            "train.learning_rate_factors={encoder: 0.3}",
            "train.weight_average={decay: 0.9}",
        ],
        ["mnist"],
    ),
}


def tensor_hashes(path: Path) -> dict[str, str]:
    """sha256 of each tensor's dtype, shape and bytes in a safetensors file."""
    from safetensors.numpy import load_file

    hashes = {}
    for name, array in sorted(load_file(str(path)).items()):
        digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
        hashes[name] = digest.hexdigest()
    return hashes


def train(config: str, overrides: list[str], runs_dir: Path) -> Path:
    """A run in a fresh process on one thread; returns its folder."""
    command = [
        sys.executable,
        "-m",
        "lamina",
        "train",
        config,
        "--runs-dir",
        str(runs_dir),
        "--quiet",
        "--set",
        "runtime.threads=1",
    ]
    for item in overrides:
        command += ["--set", item]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, str]:
    import torch

    return {"cpu": cpu_model(), "torch": torch.__version__, "python": platform.python_version()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help=f"write {RECORD.relative_to(ROOT)}")
    parser.add_argument("--only", nargs="+", choices=list(CASES), help="just these cases (and those they need)")
    arguments = parser.parse_args()
    recorded = json.loads(RECORD.read_text()) if RECORD.is_file() else {"cases": {}}
    chosen = arguments.only or list(CASES)
    needed = {name for name in chosen}
    for name in chosen:  # a case that reads an earlier case's run needs it
        needed |= {other for other in CASES if f"{{run:{other}}}" in " ".join(CASES[name][1])}
    found: dict[str, dict] = {}
    folders: dict[str, Path] = {}
    differences = 0
    with tempfile.TemporaryDirectory() as scratch:
        for name, (config, overrides, sets) in CASES.items():
            if name not in needed:
                continue
            missing = [data for data in sets if not (DATA / data).exists()]
            if missing:
                print(f"{name}: skipped ({', '.join(missing)} not in {DATA})")
                continue
            for other, folder in folders.items():
                overrides = [item.replace(f"{{run:{other}}}", str(folder)) for item in overrides]
            started = time.perf_counter()
            folders[name] = folder = train(config, overrides, Path(scratch))
            metrics = json.loads((folder / "summary.json").read_text())["metrics"]
            found[name] = {
                "command": f"lamina train {config} " + " ".join(f"--set '{o}'" for o in overrides),
                "tensors": tensor_hashes(folder / "model.safetensors"),
                "metrics": metrics,
            }
            before = recorded["cases"].get(name)
            seconds = time.perf_counter() - started
            if before is None:
                print(f"{name}: {len(found[name]['tensors'])} tensors hashed ({seconds:.0f} s; nothing recorded)")
                continue
            changed = [key for key, value in found[name]["tensors"].items() if before["tensors"].get(key) != value]
            changed += sorted(set(before["tensors"]) - set(found[name]["tensors"]))
            # the metrics recorded must be identical; a metric lamina reports since the record is only listed
            kept = {
                split: {key: metrics.get(split, {}).get(key) for key in old} for split, old in before["metrics"].items()
            }
            same_metrics = json.dumps(before["metrics"], sort_keys=True) == json.dumps(kept, sort_keys=True)
            added = [
                f"{split}.{key}"
                for split, new in metrics.items()
                for key in new
                if key not in before["metrics"].get(split, {})
            ]
            since = f"; reported since the record: {', '.join(added)}" if added else ""
            if changed or not same_metrics:
                differences += 1
                print(
                    f"{name}: DIFFERENT — {len(changed)} of {len(before['tensors'])} tensors"
                    f"{' and the metrics' if not same_metrics else ''} ({', '.join(changed[:4])})"
                )
            else:
                print(f"{name}: identical, {len(before['tensors'])} tensors and the metrics ({seconds:.0f} s){since}")
    if arguments.record:
        recorded = {"machine": machine(), "cases": {**recorded["cases"], **found}}
        RECORD.write_text(json.dumps(recorded, indent=1, sort_keys=False) + "\n")
        print(f"recorded {len(found)} cases in {RECORD.relative_to(ROOT)}")
    if recorded.get("machine") and recorded["machine"] != machine():
        print(f"note: recorded on {recorded['machine']}, compared on {machine()}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
