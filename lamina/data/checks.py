"""Checks every data set shares: text files are UTF-8, images are under Pillow's pixel limit, and a
classification data set has unique class names, labels in range and at least two classes to learn from."""

from __future__ import annotations

import hashlib
from collections import Counter

import torch

from lamina.core.errors import DataError
from lamina.data.bundle import DataBundle
from lamina.tasks import tasks

__all__ = [
    "check_bundle",
    "choose_positive_class",
    "class_balance_warnings",
    "data_facts",
    "sample_hashes",
]

# Class balance differs "sharply" between train and a held-out split when a class's share of the two differs by at
# least BALANCE_POINTS (10 percentage points: 30 % → 40 %), or when one share is at least BALANCE_FACTOR times the
# other (5 % → 10 %) and they differ by at least BALANCE_FACTOR_POINTS (so 0.5 % → 1.2 % of a rare class is not
# flagged). A stratified split never comes near either; an official test set or a hand-made split may.
BALANCE_POINTS, BALANCE_FACTOR, BALANCE_FACTOR_POINTS = 0.10, 2.0, 0.05


def check_bundle(bundle: DataBundle) -> DataBundle:
    """Training samples exist (an empty test split is dropped, with a note; training refuses an empty val split,
    see pipeline/checks.py); a classification data set's class names are unique, every label names a class, and at
    least two classes have training samples; a class seen in val or test but never in train gets a note."""
    if "train" in bundle.splits and len(bundle.splits["train"]) == 0:
        raise DataError(
            f"the train split is empty ({sum(map(len, bundle.splits.values()))} samples in all)",
            "use more data, or smaller held-out fractions",
        )
    if "test" in bundle.splits and len(bundle.splits["test"]) == 0:
        del bundle.splits["test"]
        bundle.notes.append("no test split: the held-out fraction leaves no samples")
    spec = bundle.spec
    if not tasks.get(spec.task).classes or not spec.class_names:
        return bundle
    names = list(spec.class_names)
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            raise DataError(
                f"the class name {name!r} is given twice (classes {first[name]} and {index})",
                "give every class its own name (data.class_names, or the class folder names)",
            )
        first[name] = index
    present: dict[str, list[int]] = {}
    for split_name, split in bundle.splits.items():
        targets = split.targets
        if split_name == "unlabelled" or targets.ndim != 1 or targets.is_floating_point():
            continue
        labels = torch.unique(targets).tolist()
        wrong = [label for label in labels if not 0 <= label < len(names)]
        if wrong:
            raise DataError(
                f"the {split_name} split holds the label {wrong[0]}, but there are {len(names)} classes "
                f"(labels 0–{len(names) - 1})",
                "fix the labels, or name every class",
            )
        present[split_name] = labels
    trained = present.get("train", [])
    if len(trained) < 2:
        held = f"one class only ({names[trained[0]]!r})" if trained else "no labelled samples"
        raise DataError(
            f"the training split holds samples of {held}; classification needs at least two classes",
            "add samples of another class (to learn one class alone, an image data set can use data.task: "
            "reconstruction)",
        )
    for split_name, labels in present.items():
        for label in sorted(set(labels) - set(trained)):
            bundle.notes.append(
                f"class {names[label]!r} has samples in {split_name} but none in train: the model cannot learn it"
            )
    return bundle


def choose_positive_class(bundle: DataBundle, choice: int | str | None) -> None:
    """Record data.positive_class (a class name, or an index in class order) as an index in the spec's extra facts,
    where the task reads it; DataError when the data is not two-class, the class is unknown, or a bare number could
    mean two classes (index 1 named '2' beside a class named '1')."""
    if choice is None:
        return
    spec = bundle.spec
    names = list(spec.class_names or [str(index) for index in range(spec.num_classes or 0)])
    if not tasks.get(spec.task).classes or len(names) != 2:
        found = f"{len(names)} classes" if tasks.get(spec.task).classes else f"a {spec.task} task"
        raise DataError(
            f"data.positive_class is {choice!r}, but the data has {found}",
            "remove data.positive_class: it names the positive class of two-class data",
        )
    listed = ", ".join(f"{index}: {name!r}" for index, name in enumerate(names))
    if isinstance(choice, str):
        if choice not in names:
            raise DataError(
                f"data.positive_class {choice!r} is not a class of this data ({listed})",
                f"use one of the names {names[0]!r} and {names[1]!r}, or an index 0 or 1",
            )
        spec.extra["positive_class"] = names.index(choice)
        return
    if choice > 1:
        raise DataError(
            f"data.positive_class is {choice}, but there are two classes ({listed})",
            f"use an index 0 or 1, or a class name in quotes such as {names[0]!r}",
        )
    if str(choice) in names and names.index(str(choice)) != choice:
        raise DataError(
            f"data.positive_class {choice} is ambiguous: class index {choice} is named {names[choice]!r}, but the "
            f"class named '{choice}' is index {names.index(str(choice))}",
            f"write the class name in quotes: positive_class: '{choice}' (or '{names[choice]}')",
        )
    spec.extra["positive_class"] = choice


def class_balance_warnings(bundle: DataBundle) -> list[str]:
    """One warning per held-out split (val, test) where a class's share differs sharply from its share of train
    (BALANCE_POINTS, BALANCE_FACTOR above), naming the class that moved most (of two classes: the positive one)
    and by how much. Accuracy, precision and a threshold chosen on val all depend on the balance they were
    measured at, so a shift makes them carry over badly."""
    spec = bundle.spec
    train = bundle.splits.get("train")
    if not tasks.get(spec.task).classes or train is None or train.targets.ndim != 1 or len(train) == 0:
        return []
    count = spec.num_classes or 0
    names = list(spec.class_names or [str(index) for index in range(count)])
    trained = torch.bincount(train.targets.long(), minlength=count).double() / len(train)
    preferred = spec.extra.get("positive_class", 1) if count == 2 else None  # of two classes: the positive one
    warnings = []
    for split_name in ("val", "test"):
        split = bundle.splits.get(split_name)
        if split is None or len(split) == 0:
            continue
        shares = torch.bincount(split.targets.long(), minlength=count).double() / len(split)
        shift = (shares - trained).abs()
        high, low = torch.maximum(shares, trained), torch.minimum(shares, trained)
        sharp = (shift >= BALANCE_POINTS - 1e-9) | (
            (high >= BALANCE_FACTOR * low) & (shift >= BALANCE_FACTOR_POINTS - 1e-9)
        )
        moved = [int(index) for index in torch.nonzero(sharp).flatten()]
        if not moved:
            continue
        first = preferred if preferred in moved else max(moved, key=lambda index: float(shift[index]))
        more = len(moved) - 1 if count > 2 else 0  # of two classes, both move by the same points
        others = f"; {more} more {'class differs' if more == 1 else 'classes differ'} too" if more else ""
        warnings.append(
            f"class balance: {names[first]!r} is {float(trained[first]):.1%} of train but "
            f"{float(shares[first]):.1%} of {split_name} ({100 * float(shares[first] - trained[first]):+.1f} "
            f"points{others}): accuracy, precision and the threshold "
            f"chosen on val depend on class balance, so they may not carry over between these splits"
        )
    return warnings


def sample_hashes(inputs: torch.Tensor) -> list[bytes]:
    """The SHA-1 of each stored sample's bytes (N,): equal samples, equal hashes.

    Example:
        >>> hashes = sample_hashes(torch.tensor([[1, 2], [3, 4], [1, 2]], dtype=torch.uint8))
        >>> hashes[0] == hashes[2], hashes[0] == hashes[1]
        (True, False)
    """
    rows = inputs.detach().cpu().contiguous().reshape(len(inputs), -1).numpy()  # (N, ...) → (N, bytes per sample)
    return [hashlib.sha1(row.tobytes()).digest() for row in rows]


def data_facts(bundle: DataBundle, examples: int = 5) -> dict:
    """What the training doctor reads about the data (kept in data.json under "facts"): the class counts of each
    labelled split, and for val and test how many samples are byte-for-byte copies of a training sample (leakage:
    their scores measure memory), with the first `examples` indices; beside them, how many training samples have a
    copy elsewhere in train (a data set that repeats itself leaks about that share into any random split). Language
    models' windows overlap by design and get no duplicate count.

    Example:
        >>> from lamina.data.bundle import Split
        >>> from lamina.data.spec import DataSpec
        >>> spec = DataSpec(kind="tabular", task="classification", input_shape=(1,), num_classes=2)
        >>> x, y = torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([0, 1, 1])
        >>> splits = {"train": Split(x, y), "test": Split(x[:1], y[:1])}
        >>> facts = data_facts(DataBundle(spec, splits, {}, lambda inputs: inputs))
        >>> facts["class_counts"]["train"], facts["duplicates"]["test"]
        ([1, 2], {'count': 1, 'of': 1, 'examples': [0]})
    """
    spec = bundle.spec
    facts: dict = {}
    if tasks.get(spec.task).classes and spec.num_classes:
        facts["class_counts"] = {
            name: torch.bincount(split.targets.long().cpu(), minlength=spec.num_classes).tolist()
            for name, split in bundle.splits.items()
            if name != "unlabelled" and split.targets.ndim == 1 and not split.targets.is_floating_point()
        }
    if bundle.groups:  # data.groups: where they come from, and the samples of each group in each split
        sources = bundle.preprocessing.get("groups", {})
        facts["groups"] = {
            attribute: {
                "source": sources.get(attribute, ""),
                "counts": {split: dict(sorted(Counter(names).items())) for split, names in by_split.items()},
            }
            for attribute, by_split in bundle.groups.items()
        }
    if tasks.get(spec.task).causal or "train" not in bundle.splits:
        return facts
    trained = Counter(sample_hashes(bundle.splits["train"].inputs))
    repeated = sum(count for count in trained.values() if count > 1)
    duplicates: dict = {"train": {"count": repeated, "of": len(bundle.splits["train"])}}
    for name in ("val", "test"):
        if name in bundle.splits:
            copied = [
                index for index, digest in enumerate(sample_hashes(bundle.splits[name].inputs)) if digest in trained
            ]
            duplicates[name] = {"count": len(copied), "of": len(bundle.splits[name]), "examples": copied[:examples]}
    facts["duplicates"] = duplicates
    return facts
