"""data.groups (a column, a pattern on the file path, a metadata join) kept in step with every split, its errors,
the unseen-group warning, and group-balanced training (sampling and loss weights, resumed exactly)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import EXACT_RUNTIME, shared_data
from lamina.config.schema import Config
from lamina.core.errors import ConfigError, DataError, RunInterrupted
from lamina.data.build import build_data
from lamina.data.group_options import GroupOptions
from lamina.data.groups import unseen_group_warnings
from lamina.data.options import AudioOptions, DigitsOptions, ImageFolderOptions
from lamina.data.table_options import CSVOptions
from lamina.data.text_options import LabelledTextOptions
from lamina.pipeline import resume, train
from lamina.run import Run, run_data
from lamina.training.balance import balanced_order, inverse_frequency_weights
from lamina.training.callbacks import Callback
from lamina.training.losses import build_objective
from lamina.training.options import CrossEntropyOptions

LABELS = ["ant", "bee", "cat"]


def write_table(path: Path, rows: int = 240, seed: int = 0) -> Path:
    """A CSV with two numeric features, a `site` column that is a function of the label (site_<label>), a few
    rows without a target (dropped), and the label itself; the label's classes are imbalanced."""
    generator = numpy.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x1", "site", "x2", "label"])
        for row in range(rows):
            label = LABELS[0] if row % 5 < 3 else LABELS[1 + row % 2]
            value = LABELS.index(label) + generator.normal(0, 0.3)
            target = "" if row % 37 == 5 else label
            writer.writerow([f"{value:.4f}", f"site_{label}", f"{generator.normal():.4f}", target])
    return path


def assert_aligned(bundle, attribute: str, expected) -> None:
    """Every sample of every split has the group `expected(class name)`."""
    names = bundle.spec.class_names
    for split_name, split in bundle.splits.items():
        groups = bundle.groups[attribute][split_name]
        assert len(groups) == len(split), split_name
        assert groups == [expected(names[int(target)]) for target in split.targets], split_name


def test_a_table_column_follows_every_row_through_drops_and_splits_and_is_no_feature(tmp_path):
    path = write_table(tmp_path / "table.csv")
    config = CSVOptions(path=str(path), target="label", groups={"name": "site", "column": "site"})
    bundle = build_data(config, seed=4)
    assert bundle.spec.feature_names == ["x1", "x2"]  # the group column is not a feature
    assert sum(map(len, bundle.splits.values())) == 240 - 7  # rows without a target dropped
    assert_aligned(bundle, "site", lambda label: f"site_{label}")
    assert bundle.preprocessing["groups"] == {"site": "column 'site'"}


def test_labelled_text_groups_from_a_column_of_tsv_and_jsonl(tmp_path):
    lines = ["text\tlabel\tauthor"] + [f"message {i}\t{LABELS[i % 3]}\tby_{LABELS[i % 3]}" for i in range(60)]
    (tmp_path / "texts.tsv").write_text("\n".join(lines) + "\n")
    config = LabelledTextOptions(path=str(tmp_path / "texts.tsv"), groups={"name": "author", "column": "author"})
    assert_aligned(build_data(config, seed=1), "author", lambda label: f"by_{label}")
    records = [json.dumps({"text": f"m {i}", "label": LABELS[i % 3], "who": LABELS[i % 3]}) for i in range(60)]
    (tmp_path / "texts.jsonl").write_text("\n".join(records) + "\n")
    config = LabelledTextOptions(path=str(tmp_path / "texts.jsonl"), groups=[{"name": "who", "column": "who"}])
    assert_aligned(build_data(config, seed=2), "who", lambda label: label)


def image_folder(root: Path, per_class: int = 12) -> Path:
    """root/<class>/<class>-<index>.png: 4×4 gray images whose value encodes the class."""
    for label in LABELS:
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            pixels = numpy.full((4, 4), 60 * LABELS.index(label) + index, dtype=numpy.uint8)
            Image.fromarray(pixels).save(root / label / f"{label}-{index}.png")
    return root


def test_image_folder_groups_from_a_pattern_and_metadata_stay_aligned_through_kept_classes(tmp_path):
    root = image_folder(tmp_path / "images")
    metadata = tmp_path / "animals.csv"
    metadata.write_text("file,legs\n" + "".join(f"{label}-{i},legs_{label}\n" for label in LABELS for i in range(12)))
    groups = [
        {"name": "folder", "pattern": r"^([a-z]+)/"},  # the first capture group
        {"name": "kind", "pattern": r"(?P<group>[a-z]+)-\d+\.png$"},  # the named group
        {"name": "legs", "metadata": str(metadata), "key": "file", "field": "legs"},  # match: file, no extension
        {"name": "again", "metadata": str(metadata), "key": "legs", "field": "legs", "match": "legs"},
    ]
    config = ImageFolderOptions(path=str(root), cache_dir=str(tmp_path / "cache"), groups=groups)
    bundle = build_data(config, seed=0)
    for attribute in ("folder", "kind"):
        assert_aligned(bundle, attribute, lambda label: label)
    for attribute in ("legs", "again"):
        assert_aligned(bundle, attribute, lambda label: f"legs_{label}")
    kept = build_data(config.model_copy(update={"classes": ["cat", "ant"]}), seed=0)
    assert_aligned(kept, "kind", lambda label: label)
    assert Counter(kept.groups["kind"]["train"]).keys() == {"cat", "ant"}


def test_a_group_in_test_but_not_in_train_is_named_in_a_warning(tmp_path):
    train_root, test_root = image_folder(tmp_path / "train"), image_folder(tmp_path / "test", per_class=2)
    for file in (test_root / "bee").iterdir():
        file.rename(file.with_name(file.name.replace("bee", "wasp")))
    config = ImageFolderOptions(
        path=str(train_root),
        test_path=str(test_root),
        cache_dir=str(tmp_path / "cache"),
        groups={"name": "insect", "pattern": r"/(?P<group>[a-z]+)-"},
    )
    bundle = build_data(config, seed=0)
    assert bundle.groups["insect"]["test"] == ["ant", "ant", "wasp", "wasp", "cat", "cat"]
    assert bundle.warnings[-1] == (
        "insect 'wasp' is in test but not in train: its metrics measure a group the model never saw"
    )
    groups = {"accent": {"train": ["a", "b"], "val": ["c", "d", "a"], "test": ["a"]}}
    assert unseen_group_warnings(groups) == [
        "accent 'c', 'd' are in val but not in train: their metrics measure groups the model never saw"
    ]


def test_fsdd_speakers_from_the_file_names_and_accents_from_speakers_csv():
    fsdd = shared_data("fsdd")
    config = AudioOptions(
        path=str(fsdd),
        split="group",
        test_groups=["george"],
        seconds=0.1,
        groups=[
            {"name": "speaker", "pattern": r"_(?P<group>[a-z]+)_\d+\.wav$"},
            {"name": "accent", "metadata": str(fsdd / "speakers.csv"), "key": "speaker", "field": "accent",
             "match": "speaker"},
        ],
    )  # fmt: skip
    bundle = build_data(config, seed=0)
    accents = {row["speaker"]: row["accent"] for row in csv.DictReader((fsdd / "speakers.csv").open())}
    assert set(bundle.groups["speaker"]["test"]) == {"george"}
    assert "george" not in bundle.groups["speaker"]["train"]
    for split in bundle.splits:
        speakers, accent = bundle.groups["speaker"][split], bundle.groups["accent"][split]
        assert len(speakers) == len(bundle.splits[split])
        assert accent == [accents[speaker] for speaker in speakers]
    assert "accent 'GRC/Greek' is in test but not in train" in bundle.warnings[-1]
    by_accent = build_data(config.model_copy(update={"test_group_attribute": "accent", "test_groups": ["BEL/French"]}))
    assert set(by_accent.groups["speaker"]["test"]) == {"nicolas"}
    assert "BEL/French" not in by_accent.groups["accent"]["train"] + by_accent.groups["accent"]["val"]
    with pytest.raises(ValueError, match="test_group_attribute 'sex' is not an attribute of data.groups"):
        AudioOptions(path="x", split="group", test_group_attribute="sex")


def errors_of(options) -> str:
    with pytest.raises(DataError) as caught:
        build_data(options, seed=0)
    return f"{caught.value.message} | {caught.value.hint}"


def test_each_source_says_what_is_wrong_and_how_to_fix_it(tmp_path):
    path = write_table(tmp_path / "table.csv", rows=40)
    assert errors_of(CSVOptions(path=str(path), target="label", groups={"name": "site", "column": "sites"})) == (
        f"data.groups: CSV file {path} has no column 'sites' | did you mean 'site'? columns: x1, site, x2, label"
    )
    root = image_folder(tmp_path / "images", per_class=4)
    cache = str(tmp_path / "cache")
    pattern = ImageFolderOptions(path=str(root), cache_dir=cache, groups={"name": "n", "pattern": r"-(\d)\d"})
    shown = repr(r"-(\d)\d")
    assert errors_of(pattern) == (
        f"data.groups n: the pattern {shown} matches nothing in the file 'ant/ant-0.png' | fix the pattern "
        "(it is searched in each file's path relative to data.path), or move the file"
    )
    metadata = tmp_path / "legs.csv"
    metadata.write_text("file,legs\nant-0,6\n")
    joined = {"name": "legs", "metadata": str(metadata), "key": "file", "field": "legs"}
    assert errors_of(ImageFolderOptions(path=str(root), cache_dir=cache, groups=joined)) == (
        f"data.groups legs: {metadata} has no row whose 'file' is 'ant-1' (the file ant/ant-1.png) | "
        "add a row with file = ant-1, or remove the sample"
    )
    missing = {**joined, "metadata": str(tmp_path / "nowhere.csv")}
    assert errors_of(ImageFolderOptions(path=str(root), cache_dir=cache, groups=missing)) == (
        f"data.groups legs: the metadata file '{tmp_path / 'nowhere.csv'}' does not exist | give a CSV file with a "
        "header line (paths are relative to where you run lamina)"
    )
    with pytest.raises(ValueError, match="group 'n' needs exactly one source, but both column and pattern given"):
        GroupOptions(name="n", column="a", pattern="b")
    with pytest.raises(ValueError, match="group 'n' needs exactly one source, but none given"):
        GroupOptions(name="n")
    with pytest.raises(ValueError, match="data set 'digits' has no files or columns to read groups from; "):
        DigitsOptions(groups={"name": "n", "column": "a"})
    with pytest.raises(ValueError, match="data set 'audio' has files, not columns; use pattern: or metadata:"):
        AudioOptions(path="x", groups={"name": "n", "column": "a"})


# ---- group-balanced training ---------------------------------------------------------------------------


def test_balanced_sampling_draws_every_group_about_equally_from_seed_and_epoch_alone():
    names = ["big"] * 900 + ["mid"] * 90 + ["small"] * 10
    weights = inverse_frequency_weights(names)
    assert float(weights.mean()) == pytest.approx(1.0)
    assert weights[0] * 900 == pytest.approx(weights[-1] * 10)  # every group's weights sum alike
    order = balanced_order(weights, seed=5, epoch=2)
    assert len(order) == 1000
    shares = Counter(names[i] for i in order.tolist())
    assert all(abs(count / 1000 - 1 / 3) < 0.05 for count in shares.values()), shares
    assert torch.equal(order, balanced_order(weights, seed=5, epoch=2))
    assert not torch.equal(order, balanced_order(weights, seed=5, epoch=3))


def test_loss_weights_weigh_each_samples_loss_and_none_leaves_the_loss_as_it_was():
    objective = build_objective(CrossEntropyOptions(), spec_of(3), torch.tensor([0, 1, 2]))
    outputs, targets = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 2, 1, 1])
    each = torch.nn.functional.cross_entropy(outputs, targets, reduction="none")
    weights = torch.tensor([0.5, 2.0, 1.0, 0.5])
    assert torch.equal(objective.per_sample(outputs, targets), each)
    assert torch.allclose((objective.per_sample(outputs, targets) * weights).mean(), (each * weights).mean())
    assert torch.equal(objective.loss(outputs, targets), torch.nn.functional.cross_entropy(outputs, targets))


def spec_of(classes: int):
    from lamina.data.spec import DataSpec

    return DataSpec(kind="tabular", task="classification", input_shape=(2,), num_classes=classes)


def table_config(path: Path, **train) -> dict:
    return {
        "seed": 2,
        "data": {"name": "csv", "path": str(path), "target": "label", "groups": {"name": "site", "column": "site"}},
        "model": {"name": "mlp", "hidden_sizes": [16]},
        "train": {"epochs": 3, "batch_size": 32, "balance_groups": "site", **train},
        "runtime": dict(EXACT_RUNTIME),
    }


class InterruptAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def step_end(self, loop, loss):
        if loop.state.step == self.step:
            loop.interrupt_requested = True


@pytest.mark.parametrize("method", ["sampling", "loss_weights"])
def test_a_balanced_run_resumed_mid_epoch_ends_with_the_same_weights(method, tmp_path):
    path = write_table(tmp_path / "table.csv")
    config = table_config(path, balance_method=method)
    whole = train(config, runs_dir=tmp_path / "runs", progress="quiet")
    with pytest.raises(RunInterrupted) as caught:
        train(config, runs_dir=tmp_path / "runs", progress="quiet", callbacks=[InterruptAt(7)])
    resumed = resume(caught.value.run_dir, progress="quiet")
    expected, actual = (load_file(str(run.dir / "model.safetensors")) for run in (whole, resumed))
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    unbalanced = train(
        {**config, "train": {"epochs": 3, "batch_size": 32}}, runs_dir=tmp_path / "runs", progress="quiet"
    )
    other = load_file(str(unbalanced.dir / "model.safetensors"))
    assert not all(torch.equal(expected[name], other[name]) for name in expected)  # balancing changed training
    again = run_data(Run(whole.dir).config)  # as `lamina evaluate` reads the data again
    assert_aligned(again, "site", lambda label: f"site_{label}")
    record = json.loads((whole.dir / "data.json").read_text())["facts"]["groups"]["site"]
    assert record["source"] == "column 'site'"
    assert sum(sum(counts.values()) for counts in record["counts"].values()) == 240 - 7
    assert record["counts"]["train"]["site_ant"] > 2 * record["counts"]["train"]["site_bee"]


def test_balancing_an_attribute_data_groups_lacks_is_a_config_error(tmp_path):
    path = write_table(tmp_path / "table.csv", rows=60)
    config = table_config(path, balance_groups="region")
    with pytest.raises(ConfigError) as caught:
        train(config, runs_dir=tmp_path / "runs", progress="quiet")
    assert "train.balance_groups: is 'region', which is not an attribute of data.groups (attributes: site)" in str(
        caught.value
    )
    assert Config.model_validate(table_config(path)).train.balance_method == "sampling"
