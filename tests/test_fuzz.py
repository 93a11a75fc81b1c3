"""Fuzzing, seeded and bounded: hundreds of configs mutated from configs/*.yaml and dozens of corrupted data files,
driven through the CLI's own entry point. Every mistake must end with exit 2, one message naming a dotted path or
the file, no traceback, no "internal error", and no run folder left behind."""

from __future__ import annotations

import copy
import gzip
import json
import random
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
import soundfile
import yaml
from PIL import Image

from conftest import ROOT
from lamina.cli.main import main
from lamina.config.loading import load_config
from lamina.core.errors import ConfigError

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
SECTIONS = r"(data|model|train|runtime|seed|name|description)"
ODD_VALUES = ["many", [1, 2], {"x": 1}, True, None, float("inf"), float("nan"), -1, 10**30, "", 0, -0.5, 1e23]


def leaves(node, path=()) -> Iterator[tuple[tuple, object]]:
    """Every (path, value) of a YAML document, sections included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), value
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index), value
            yield from leaves(value, (*path, index))


def mutate(document: dict, rng: random.Random) -> tuple[dict, str]:
    """One random mistake in a copy of `document`, and what it was."""
    document = copy.deepcopy(document)
    path, value = rng.choice(list(leaves(document)))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    kind = rng.choice(["value", "value", "typo", "unknown", "drop", "name", "scalar section"])
    if kind == "typo" and isinstance(key, str):
        position = rng.randrange(len(key) + 1)
        parent[key[:position] + rng.choice("xqz") + key[position:]] = parent.pop(key)
    elif kind == "unknown" and isinstance(parent, dict):
        parent[f"not_an_option_{rng.randrange(100)}"] = value
    elif kind == "drop" and isinstance(parent, dict):
        del parent[key]
    elif kind == "name" and isinstance(value, str):
        parent[key] = value + rng.choice(["x", "s", "_2"])
    elif kind == "scalar section" and isinstance(value, dict | list):
        parent[key] = rng.choice([5, "five", True])
    else:
        kind = "value"
        parent[key] = rng.choice(ODD_VALUES)
    return document, f"{kind} at {'.'.join(map(str, path))}"


def assert_clean_failure(code: int, error: str, label: str, runs: Path) -> None:
    assert code == 2, f"{label}: exit {code}\n{error}"
    assert error.startswith("error: ") and "Traceback" not in error and "internal error" not in error, label
    assert not runs.exists() or not any(runs.iterdir()), f"{label}: a run folder was left behind"


def test_mutated_configs_fail_cleanly(tmp_path, capsys):
    rng = random.Random(2026)
    documents = {path.name: yaml.safe_load(path.read_text()) for path in CONFIGS}
    failed = valid = 0
    for index in range(400):
        name = rng.choice(sorted(documents))
        document, what = mutate(documents[name], rng)
        path = tmp_path / f"{index}-{name}"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        label = f"{name}: {what}"
        try:
            load_config(path)
        except ConfigError:
            pass
        else:
            valid += 1  # the mistake happened to be harmless (a changed description, another valid value)
            continue
        runs = tmp_path / "runs"
        code = main(["train", str(path), "--runs-dir", str(runs)])
        error = capsys.readouterr().err
        assert_clean_failure(code, error, label, runs)
        assert re.search(rf"\b{SECTIONS}\b", error) or path.name in error, f"{label}: no dotted path\n{error}"
        failed += 1
    assert failed >= 300 and failed + valid == 400


# ---- corrupted data files -----------------------------------------------------------------------------------


def corrupted_files(folder: Path, rng: random.Random) -> Iterator[tuple[str, dict]]:
    """(label, data section) pairs, each pointing at a damaged copy of a small data file."""
    header = "x,y,colour,label\n"
    rows = [f"{rng.random():.3f},{rng.random():.3f},{rng.choice(['red', 'blue'])},{rng.choice('ab')}\n"
            for _ in range(40)]  # fmt: skip
    good_csv = header + "".join(rows)
    csv_damage = {
        "empty": "", "header only": header, "binary": bytes(rng.randrange(256) for _ in range(300)),
        "latin-1": (header + "é,1,red,a\n" * 10).encode("latin-1"), "ragged": good_csv + "1,2\n",
        "ragged after blanks": good_csv + "\n\n1,2,3,4,5\n", "inf cell": good_csv.replace("0.", "inf", 1),
        "one label": header + "1,2,red,a\n" * 20, "duplicate header": "x,x,colour,label\n" + "".join(rows),
        "truncated": good_csv[: len(good_csv) // 2 - 3],
    }  # fmt: skip
    for label, content in csv_damage.items():
        path = folder / f"{label.replace(' ', '_')}.csv"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        yield f"csv {label}", {"name": "csv", "path": str(path), "target": "label"}
    images = rng.choice([numpy.zeros, numpy.ones])((20, 8, 8), dtype=numpy.uint8)
    labels = numpy.array([index % 2 for index in range(20)])
    good = {f"{split}_{kind}": array for split in ("train", "val", "test")
            for kind, array in (("images", images), ("labels", labels))}  # fmt: skip
    npz_damage = {
        "float images": {**good, "train_images": numpy.random.default_rng(0).random((20, 8, 8)) * 3 - 1},
        "negative label": {**good, "train_labels": labels - 1},
        "short labels": {**good, "val_labels": labels[:5]}, "missing split": {k: v for k, v in good.items() if "test" not in k},
        "other shape": {**good, "test_images": numpy.zeros((20, 9, 9), numpy.uint8)},
        "one class": {**good, "train_labels": labels * 0},
    }  # fmt: skip
    for label, arrays in npz_damage.items():
        path = folder / f"{label.replace(' ', '_')}.npz"
        numpy.savez(path, **arrays)
        yield f"npz {label}", {"name": "medmnist", "path": str(path)}
    numpy.savez(folder / "good.npz", **good)
    blob = (folder / "good.npz").read_bytes()
    for label, content in {"truncated": blob[: len(blob) // 2], "text": b"hello, not numpy", "empty": b"",
                           "garbage": bytes(rng.randrange(256) for _ in range(500))}.items():  # fmt: skip
        path = folder / f"bytes_{label}.npz"
        path.write_bytes(content)
        yield f"npz {label}", {"name": "medmnist", "path": str(path)}
    for index in range(20):  # class folders with one damaged image each
        root = folder / f"images{index}"
        for name in ("cat", "dog"):
            (root / name).mkdir(parents=True)
            for number in range(10):
                Image.new("L", (8, 8), color=number * 30).save(root / name / f"{number}.png")
        victim = root / rng.choice(["cat", "dog"]) / f"{rng.randrange(10)}.png"
        data = victim.read_bytes()
        victim.write_bytes([data[: rng.randrange(8, len(data) // 2)], b"", b"GIF89a" + data[6:],
                            bytes(rng.randrange(256) for _ in range(len(data)))][index % 4])  # fmt: skip
        yield f"image folder {index}", {"name": "image_folder", "path": str(root), "cache_dir": str(folder / "cache")}
    idx = struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 10) + bytes(range(10))
    for label, content in {"truncated labels": idx[:-3], "bad magic": b"\x01\x02" + idx[2:], "empty": b"",
                           "label 200": idx[:-1] + bytes([200])}.items():  # fmt: skip
        root = folder / f"mnist_{label.replace(' ', '_')}"
        root.mkdir()
        pixels = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 10, 28, 28) + bytes(10 * 28 * 28)
        for part in ("train", "t10k"):
            (root / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(pixels))
            (root / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(content))
        yield f"mnist {label}", {"name": "mnist", "path": str(root)}
    series = "temp,wind\n" + "".join(f"{20 + rng.random():.2f},{rng.random():.2f}\n" for _ in range(200))
    for label, content in {"a word": series.replace("20.", "warm", 1), "infinity": series.replace("0.", "inf", 1),
                           "too short": series[:60]}.items():  # fmt: skip
        path = folder / f"series_{label.replace(' ', '_')}.csv"
        path.write_text(content)
        yield f"time series {label}", {"name": "timeseries", "path": str(path), "target": "temp", "lookback": 8,
                                       "horizon": 2}  # fmt: skip
    for label in ("truncated", "garbage", "too few"):
        root = folder / f"audio_{label.replace(' ', '_')}"
        root.mkdir()
        for number in range(12 if label != "too few" else 3):
            wave = numpy.sin(numpy.arange(800) * (number + 1) / 20).astype(numpy.float32)
            soundfile.write(root / f"{number % 10}_speaker_{number}.wav", wave, 8000)
        victim = root / "3_speaker_3.wav"
        if label == "truncated":
            victim.write_bytes(victim.read_bytes()[:30])
        elif label == "garbage":
            victim.write_bytes(bytes(rng.randrange(256) for _ in range(900)))
        yield f"audio {label}", {"name": "audio", "path": str(root)}
    text = folder / "text.txt"
    text.write_bytes(b"the quick brown fox " * 20 + b"\xff\xfe broken")
    yield "text not utf-8", {"name": "text", "path": str(text), "context": 8}
    for label, content in {"not utf-8": b"text\tlabel\nhello\ta\n\xff\tb\n" * 5, "one label": b"text\tlabel\n" + b"hi\ta\n" * 9,
                           "short row": b"text\tlabel\nhello\n" * 9}.items():  # fmt: skip
        path = folder / f"labelled_{label.replace(' ', '_')}.tsv"
        path.write_bytes(content)
        yield f"labelled text {label}", {"name": "labelled_text", "path": str(path)}


def test_corrupted_data_files_fail_cleanly(tmp_path, capsys):
    (tmp_path / "files").mkdir()
    cases = list(corrupted_files(tmp_path / "files", random.Random(7)))
    assert len(cases) >= 50
    for index, (label, section) in enumerate(cases):
        sequences = section["name"] in ("text", "labelled_text", "timeseries")
        model = {"name": "rnn", "hidden_size": 4} if sequences else {"name": "mlp", "hidden_sizes": [4]}
        config = tmp_path / f"{index}.yaml"
        config.write_text(yaml.safe_dump({"data": section, "model": model, "train": {"epochs": 1}}))
        runs = tmp_path / "runs"
        code = main(["train", str(config), "--runs-dir", str(runs), "--quiet"])
        error = capsys.readouterr().err
        if code == 0:
            pytest.fail(f"{label}: trained on a damaged file without a word\n{json.dumps(section)}")
        assert_clean_failure(code, error, label, runs)
        named = Path(section["path"]).name
        assert named in error or "data." in error, f"{label}: the message names neither the file nor an option\n{error}"
