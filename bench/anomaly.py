"""Reconstruction error and anomaly-detection ROC-AUC of an autoencoder run on the full test split.

    .venv/bin/python bench/anomaly.py runs/<mnist-vae run> --anomaly 9

The run was trained on some classes only (data.classes); the test images of the held-out class are the
anomalies, and each image's anomaly score is its reconstruction error. Prints the mean reconstruction error
(mean squared pixel error, pixels in [0, 1]) of normal and anomalous test images and the ROC-AUC of the score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lamina.data.build import build_data  # noqa: E402
from lamina.data.inputs import transform_for  # noqa: E402
from lamina.run import load_run  # noqa: E402
from lamina.training.metrics import roc_auc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--anomaly", nargs="+", required=True, help="class names held out as anomalies")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run(arguments.run_dir)
    section = run.config.data.model_copy(update={"classes": None, "task": "classification", "augment": []})
    data = build_data(section, run.config.seed)  # every class, with labels
    test = data.splits["test"]
    model = run.model
    transform = transform_for(run.data_record["preprocessing"])  # the normalization the run trained with
    scores = torch.cat(
        [
            model.anomaly_score(transform(test.inputs[i : i + 1000]), test.inputs[i : i + 1000])
            for i in range(0, len(test), 1000)
        ]
    )
    names = data.spec.class_names
    anomalous = torch.isin(test.targets, torch.tensor([names.index(name) for name in arguments.anomaly]))
    print(
        f"test images: {int((~anomalous).sum())} normal, {int(anomalous.sum())} anomalous "
        f"(classes {', '.join(arguments.anomaly)})"
    )
    print(
        f"reconstruction error (mean squared pixel error): normal {scores[~anomalous].mean():.5f}, "
        f"anomalous {scores[anomalous].mean():.5f}"
    )
    print(f"anomaly ROC-AUC: {roc_auc(scores, anomalous):.4f}")


if __name__ == "__main__":
    main()
