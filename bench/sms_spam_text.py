"""SMS spam: lamina's text families beside TF-IDF + logistic regression (scikit-learn), on the whole corpus and on
stratified 3,000-message subsets of it, over several seeds; every method sees the same split per seed.

    .venv/bin/python bench/sms_spam_text.py [--seeds 0 1 2] [--data full 3000] [--methods tfidf fasttext ulmfit
        scratch gru] [--report val|test] [--set METHOD:KEY=VALUE ...] [--out results.jsonl]

Data: `full` is the SMS Spam Collection (5,574 messages); `3000` is a stratified random 3,000 of them, drawn
from the seed, and its other 2,574 messages become unlabelled text. Each run splits its messages 70/10/20
(train/val/test, stratified, from the seed), as configs/sms_spam_*.yaml do.

Methods:
- tfidf: word 1–2-gram and character 2–5-gram (within words) TF-IDF, sublinear tf, and a logistic regression whose
  C (0.03 … 300) and class weights (none or balanced) are chosen on the val split (F1, then accuracy); fit on train.
- fasttext: configs/sms_spam_fasttext.yaml.
- fasttext-tuned: the same, with its learning rate (0.003, 0.01, 0.03), token dropout (0.3, 0.5) and class weights
  (none, balanced) chosen per seed on val by F1 then accuracy, as tfidf chooses C and class weights; its time is
  the 12 runs'.
- ulmfit: a language model of the train split's texts (and, on a subset, of the unlabelled messages), configs/
  sms_spam_lm.yaml, then configs/sms_spam_ulmfit.yaml with its tokenizer and weights (model.init_from), gradual
  unfreezing and discriminative rates; its time includes the language model's.
- scratch: the same classifier from scratch (sms_spam_ulmfit.yaml without init_from, freezing or rate factors,
  its own tokenizer).
- gru: configs/sms_spam_rnn.yaml.

`--report val` (the default) prints only val figures, for choosing recipes; `--report test` adds the test split's
accuracy, F1 (spam), mean confidence (mean of the top class probability) and expected calibration error (15
bins), the figures for docs/benchmarks.md. `--set fasttext:model.hidden_size=64` overrides a method's config.
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

import torch  # noqa: E402

from lamina.config.loading import load_config  # noqa: E402
from lamina.data.text import labelled_splits  # noqa: E402
from lamina.pipeline import train  # noqa: E402
from lamina.run import run_data  # noqa: E402
from lamina.training.evaluate import evaluate_split  # noqa: E402

CORPUS = ROOT.parent / "shared" / "datasets" / "sms_spam" / "SMSSpamCollection"
CONFIGS = {
    "fasttext": "configs/sms_spam_fasttext.yaml",
    "lm": "configs/sms_spam_lm.yaml",
    "ulmfit": "configs/sms_spam_ulmfit.yaml",
    "gru": "configs/sms_spam_rnn.yaml",
}
# the classifier from scratch: sms_spam_ulmfit.yaml without what transfer adds
SCRATCH = ["train.freeze=[]", "train.unfreeze={}", "train.learning_rate_factors={}"]


def subset_files(size: int, seed: int, folder: Path) -> tuple[Path, Path]:
    """A stratified random `size` messages of the corpus (drawn from `seed`) as a TSV, and the others' texts."""
    lines = [line for line in CORPUS.read_text(encoding="utf-8").split("\n") if line.strip()]
    labels = [line.split("\t", 1)[0] for line in lines]
    generator = torch.Generator().manual_seed(10_007 + seed)
    chosen: list[int] = []
    for label in sorted(set(labels)):
        rows = [i for i, other in enumerate(labels) if other == label]
        take = round(size * len(rows) / len(lines))
        chosen += [rows[i] for i in torch.randperm(len(rows), generator=generator)[:take].tolist()]
    chosen_set = set(chosen)
    folder.mkdir(parents=True, exist_ok=True)
    labelled, unlabelled = folder / f"sms_{size}_seed{seed}.tsv", folder / f"sms_rest_{size}_seed{seed}.txt"
    labelled.write_text("".join(lines[i] + "\n" for i in sorted(chosen_set)), encoding="utf-8")
    rest = [lines[i].split("\t", 1)[1] for i in range(len(lines)) if i not in chosen_set]
    unlabelled.write_text("".join(text + "\n" for text in rest), encoding="utf-8")
    return labelled, unlabelled


def scores_of(run, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, C) and targets (N,) of a run's weights on `split`."""
    data = run_data(run.config)
    _, predictions = evaluate_split(
        run.model, data.splits[split], data.transform, run.objective(), "classification", ["accuracy"], 256
    )
    return predictions.scores.float(), predictions.targets


def figures(probabilities: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Accuracy, F1 of class 1 (spam), mean top-class probability and expected calibration error (15 bins)."""
    confidence, predicted = probabilities.max(dim=1)
    right = (predicted == targets).float()
    true_positive = float(((predicted == 1) & (targets == 1)).sum())
    f1 = 2 * true_positive / max(float((predicted == 1).sum() + (targets == 1).sum()), 1.0)
    bins = torch.clamp((confidence * 15).long(), max=14)
    ece = sum(
        float((bins == b).float().mean()) * abs(float(right[bins == b].mean() - confidence[bins == b].mean()))
        for b in range(15)
        if bool((bins == b).any())
    )
    return {"accuracy": float(right.mean()), "f1": f1, "confidence": float(confidence.mean()), "ece": ece}


def tfidf(data_path: Path, seed: int, splits: tuple[str, ...]) -> dict:
    """TF-IDF + logistic regression on the split lamina makes for this data and seed, C chosen on val."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    start = time.perf_counter()
    config = load_config(CONFIGS["fasttext"], [f"data.path={data_path}", f"seed={seed}"]).data
    read, targets, _, index = labelled_splits(config, seed)
    texts = {name: [read.texts[i] for i in rows.tolist()] for name, rows in index.items()}
    labels = {name: targets[rows].numpy() for name, rows in index.items()}
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
            ("characters", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)),
        ]
    )
    train_x = features.fit_transform(texts["train"])
    val_x, test_x = features.transform(texts["val"]), features.transform(texts["test"])
    best = None
    for c in (0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300):
        for weights in (None, "balanced"):
            model = LogisticRegression(C=c, class_weight=weights, max_iter=2000, solver="liblinear")
            model.fit(train_x, labels["train"])
            val = figures(torch.tensor(model.predict_proba(val_x)), torch.tensor(labels["val"]))
            key = (val["f1"], val["accuracy"])
            if best is None or key > best[0]:
                best = (key, model, val, {"C": c, "class_weight": weights})
    _, model, val, chosen = best
    seconds = time.perf_counter() - start
    if "test" not in splits:
        return {"val": val, "seconds": seconds, "chosen": chosen}
    test = figures(torch.tensor(model.predict_proba(test_x)), torch.tensor(labels["test"]))
    return {"val": val, "test": test, "seconds": seconds, "chosen": chosen}


def lamina_run(config: str, overrides: list[str], runs_dir: Path, splits: tuple[str, ...]) -> dict:
    run = train(config, overrides, runs_dir=runs_dir, progress="quiet")
    results = {name: figures(*scores_of(run, name)) for name in splits}
    return {**results, "seconds": run.summary["wall_seconds"], "run": str(run.dir)}


# fasttext-tuned: the per-seed choice on val that the TF-IDF baseline gets (C × class weights, 18 points), given to
# fastText: learning rate × token dropout × class weights (12 points), chosen by val F1 then val accuracy
TUNING = [
    [f"train.optimizer.learning_rate={rate}", f"model.token_dropout={dropout}", f"train.loss.class_weights={weights}"]
    for rate in (0.003, 0.01, 0.03)
    for dropout in (0.3, 0.5)
    for weights in ("null", "balanced")
]


def tuned_fasttext(common: list[str], runs_dir: Path, splits: tuple[str, ...]) -> dict:
    """fastText with its rate, token dropout and class weights chosen on val; test figures of the chosen run only."""
    best, seconds = None, 0.0
    for point in TUNING:
        run = train(CONFIGS["fasttext"], common + point, runs_dir=runs_dir, progress="quiet")
        seconds += run.summary["wall_seconds"]
        val = figures(*scores_of(run, "val"))
        if best is None or (val["f1"], val["accuracy"]) > best[0]:
            best = ((val["f1"], val["accuracy"]), run, val, point)
    _, run, val, point = best
    result = {"val": val, "seconds": seconds, "run": str(run.dir), "chosen": point}
    if "test" in splits:
        result["test"] = figures(*scores_of(run, "test"))
    return result


def method_result(
    method: str, data_path: Path, unlabelled: Path | None, seed: int, sets: dict, runs: Path, splits: tuple[str, ...]
) -> dict:
    common = [f"data.path={data_path}", f"seed={seed}"]
    if method == "tfidf":
        return tfidf(data_path, seed, splits)
    if method == "fasttext-tuned":
        return tuned_fasttext(common + sets.get("fasttext", []), runs, splits)
    if method in ("fasttext", "gru"):
        return lamina_run(CONFIGS[method], common + sets.get(method, []), runs, splits)
    classifier = common + sets.get("ulmfit", [])
    if method == "scratch":
        return lamina_run(CONFIGS["ulmfit"], classifier + SCRATCH + sets.get("scratch", []), runs, splits)
    # ulmfit: a language model of these texts (and the unlabelled messages of a subset), then the classifier from it
    extra = [f"data.language_model.unlabelled_text={unlabelled}"] if unlabelled else []
    language_model = train(CONFIGS["lm"], common + extra + sets.get("lm", []), runs_dir=runs, progress="quiet")
    transfer = [f"model.init_from={language_model.dir}", f"data.tokenizer_from={language_model.dir}"]
    result = lamina_run(CONFIGS["ulmfit"], classifier + transfer, runs, splits)
    lm = {"seconds": language_model.summary["wall_seconds"], "val_loss": language_model.metrics["val"]["loss"]}
    return {**result, "seconds": result["seconds"] + lm["seconds"], "lm": lm}


def summarize(rows: list[dict], report: str) -> None:
    splits = ["val", "test"] if report == "test" else ["val"]
    head = "| method | data | seeds | " + " | ".join(
        f"{split} accuracy | {split} F1 | {split} confidence | {split} ECE" for split in splits
    )
    print("\n" + head + " | seconds per run |")
    print("|" + "---|" * (head.count("|") + 1))
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["data"]), []).append(row)
    for (method, data), group in groups.items():
        cells = [method, data, ",".join(str(row["seed"]) for row in group)]
        for split in splits:
            for name in ("accuracy", "f1", "confidence", "ece"):
                values = [row[split][name] for row in group]
                spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
                cells.append(f"{statistics.mean(values):.4f}{spread}")
        cells.append(f"{statistics.mean(row['seconds'] for row in group):.1f}")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", default=["full", "3000"], help="full, or a subset size")
    parser.add_argument("--methods", nargs="+", default=["tfidf", "fasttext", "ulmfit", "scratch"])
    parser.add_argument("--report", choices=["val", "test"], default="val")
    parser.add_argument("--set", action="append", default=[], help="METHOD:KEY=VALUE (methods: fasttext, lm, ...)")
    parser.add_argument("--runs-dir", default="runs/sms-spam-text")
    parser.add_argument("--out", help="append one JSON line per result here")
    arguments = parser.parse_args()
    sets: dict[str, list[str]] = {}
    for item in arguments.set:
        method, _, override = item.partition(":")
        sets.setdefault(method, []).append(override)
    runs, rows = Path(arguments.runs_dir), []
    splits = ("val", "test") if arguments.report == "test" else ("val",)  # choosing recipes: val only
    for data in arguments.data:
        for seed in arguments.seeds:
            path, unlabelled = (CORPUS, None) if data == "full" else subset_files(int(data), seed, runs / "subsets")
            for method in arguments.methods:
                result = method_result(method, path, unlabelled, seed, sets, runs, splits)
                row = {"method": method, "data": data, "seed": seed, "sets": sets.get(method, []), **result}
                rows.append(row)
                shown = {split: {k: round(v, 4) for k, v in row[split].items()} for split in splits}
                print(method, data, seed, json.dumps(shown), f"{row['seconds']:.1f} s", flush=True)
                if arguments.out:
                    with open(arguments.out, "a") as file:
                        file.write(json.dumps(row) + "\n")
    summarize(rows, arguments.report)


if __name__ == "__main__":
    main()
