"""The training doctor's rules about the data rather than the training: class imbalance and copies of training
samples in val or test (from the facts data.json records: class counts, SHA-1 duplicates). As in doctor_rules.py,
each rule is a function of a run's `Records` returning findings; the thresholds are the constants below."""

from __future__ import annotations

from lamina.insight.findings import Finding, Records

__all__ = ["class_imbalance", "leakage"]

# class imbalance: the largest class holds at least this many times the samples of the smallest
IMBALANCE_RATIO = 10.0


def class_imbalance(records: Records) -> list[Finding]:
    """The largest training class holding IMBALANCE_RATIO times the samples of the smallest."""
    counts = ((records.data.get("facts") or {}).get("class_counts") or {}).get("train")
    present = [count for count in counts or [] if count > 0]
    if len(present) < 2 or max(present) < IMBALANCE_RATIO * min(present):
        return []
    names = (records.data.get("spec") or {}).get("class_names") or [str(index) for index in range(len(counts))]
    large, small = counts.index(max(present)), counts.index(min(present))
    weighted = records.setting("train.loss.class_weights") or records.setting("train.loss.pos_weight")
    monitor = str(records.setting("train.monitor") or "")
    evidence = (
        f"class {names[large]!r} has {max(present)} training samples, {max(present) / min(present):.0f} "
        f"times the {min(present)} of class {names[small]!r}"
    )
    changes: dict = {}
    if records.setting("train.loss.name") == "cross_entropy" and not weighted:
        changes["train.loss.class_weights"] = "balanced"
    if monitor.endswith("accuracy"):
        changes["train.monitor"] = "val.f1" if len(counts) == 2 else "val.macro_f1"
    suggestion = (
        "weight the classes (train.loss.class_weights: balanced) and monitor a metric that sees the small "
        "classes (f1, macro_f1) rather than accuracy"
    )
    severity = "warning" if changes else "info"
    numbers = {"largest": max(present), "smallest": min(present), "ratio": max(present) / min(present)}
    return [Finding("class_imbalance", severity, evidence, suggestion, numbers, changes)]


def leakage(records: Records) -> list[Finding]:
    """Val or test samples that are byte-for-byte copies of training samples, beyond what the data's own repeats
    explain (a share above twice the share of training samples with a copy in train, plus 1 point)."""
    duplicates = (records.data.get("facts") or {}).get("duplicates") or {}
    train = duplicates.get("train") or {}
    expected = train.get("count", 0) / train["of"] if train.get("of") else 0.0
    findings = []
    for split in ("val", "test"):
        found = duplicates.get(split) or {}
        if not found.get("count"):
            continue
        share = found["count"] / found["of"]
        numbers = {
            "split": split,
            "copies": found["count"],
            "of": found["of"],
            "train_repeated": expected,
            "examples": found.get("examples", []),
        }
        copies = (
            f"{found['count']} of the {found['of']} {split} samples ({share:.1%}) are exact copies of training "
            f"samples (e.g. {split} indices {', '.join(map(str, found.get('examples', [])))})"
        )
        if share > 2 * expected + 0.01:
            evidence = f"{copies}; {split} scores partly measure memory"
            suggestion = f"remove the copies from {split} (deduplicate the data before splitting it)"
            findings.append(Finding("leakage", "warning", evidence, suggestion, numbers, {}))
        else:
            evidence = (
                f"{copies}, as expected of data whose training split itself repeats {expected:.1%} of its samples"
            )
            suggestion = "deduplicate the data set if repeated samples are not what it will meet in use"
            findings.append(Finding("leakage", "info", evidence, suggestion, numbers, {}))
    return findings
