"""The bundle runtime (lamina/bundle): its readers give what lamina's own readers give on the same files, its
decoding what Task.decode gives, a bundle runs and refuses what it cannot run with typed errors, and neither
`import lamina.bundle` nor `lamina predict BUNDLE` imports PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy
import pytest
import torch
from PIL import Image

from lamina.bundle import load_bundle
from lamina.bundle.decoding import decode
from lamina.bundle.readers import read_array_files, read_image, read_waveform
from lamina.bundle.rows import read_rows, read_texts, trim_padding
from lamina.core.errors import DataError, RunError
from lamina.data import inputs as lamina_inputs
from lamina.data.audio import read_waveform as lamina_read_waveform
from lamina.data.text import TrimPadding
from lamina.data.text import read_texts as lamina_read_texts
from lamina.data.tokenizers import train_tokenizer
from lamina.tasks import tasks

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["win a free prize now", "see you at lunch", "Call 0800 now!", "ok", "ünïcode ☃ text"]


# ---- readers: equal to lamina's ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "mode", "suffix", "channels"),
    [((13, 11), "RGB", ".png", 1), ((5, 4), "L", ".png", 3), ((20, 24), "RGBA", ".png", 3), ((9, 9), "RGB", ".jpg", 1)],
)
def test_images_read_as_lamina_reads_them(tmp_path, size, mode, suffix, channels):
    generator = numpy.random.default_rng(0)
    pixels = generator.integers(0, 256, (size[1], size[0], len(mode)), dtype=numpy.uint8)
    path = tmp_path / f"image{suffix}"
    Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).convert(
        "RGB" if suffix == ".jpg" else mode
    ).save(path)
    preprocessing = {"type": "image", "channels": channels, "height": 8, "width": 8}
    ours = read_image(path, preprocessing)
    assert ours.dtype == numpy.uint8 and ours.shape == (channels, 8, 8)
    numpy.testing.assert_array_equal(ours, lamina_inputs.read_image(path, preprocessing).numpy())


def test_audio_of_another_rate_and_channels_is_read_as_lamina_reads_it(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    pytest.importorskip("scipy.signal")
    time = numpy.arange(12000) / 12000
    stereo = numpy.stack([numpy.sin(2 * numpy.pi * 440 * time), 0.5 * numpy.sin(2 * numpy.pi * 90 * time)], axis=1)
    soundfile.write(tmp_path / "tone.wav", stereo.astype(numpy.float32), 12000)
    for samples in (4000, 9000):  # cropped and padded
        ours = read_waveform(tmp_path / "tone.wav", 8000, samples)
        numpy.testing.assert_array_equal(ours, lamina_read_waveform(tmp_path / "tone.wav", 8000, samples))
        assert ours.shape == (samples,) and abs(float(numpy.abs(ours[:7000]).max()) - 1.0) < 0.3


ENCODER = {
    "numeric": {"age": {"mean": 40.0, "std": 10.0, "median": 38.0}, "dose": {"mean": 1.5, "std": 0.5, "median": 1.0}},
    "categorical": {"sex": ["f", "m"], "site": ["a", "b", "c"]},
}


def test_table_rows_are_encoded_as_lamina_encodes_them(tmp_path):
    path = (
        tmp_path / "rows.csv"
    )  # a missing number, a missing marker, an unseen category, an extra column, a blank line
    path.write_text("extra,site,age,sex,dose\nx,b,50,m,2\ny,z,,f,na\n\nz,a,31.5,m,1.25\n")
    preprocessing = {"type": "table", "encoder": ENCODER}
    ours, labels = read_rows([path], preprocessing)
    theirs, their_labels = lamina_inputs.read_inputs([path], preprocessing)
    numpy.testing.assert_array_equal(ours, theirs.numpy())
    assert labels == their_labels == ["rows.csv:2", "rows.csv:3", "rows.csv:5"]
    assert ours[0].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]  # (50 − 40) / 10, (2 − 1.5) / 0.5, m, b
    assert ours[1].tolist() == pytest.approx([-0.2, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # medians; site z unseen: zeros


def test_table_errors_say_what_lamina_says(tmp_path):
    preprocessing = {"type": "table", "encoder": ENCODER}
    cases = {
        "lacks.csv": ("site,age\nb,50\n", "lacks.csv lacks the feature columns dose, sex"),
        "text.csv": ("site,age,sex,dose\nb,old,m,2\n", "column 'age' holds 'old', which is not a finite number"),
        "ragged.csv": ("site,age,sex,dose\nb,50,m\n", "ragged.csv, line 2: 3 fields, but the header has 4"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(DataError) as ours:
            read_rows([tmp_path / name], preprocessing)
        with pytest.raises(DataError) as theirs:
            lamina_inputs.read_inputs([tmp_path / name], preprocessing)
        assert str(ours.value) == str(theirs.value) and message in str(ours.value)


@pytest.mark.parametrize("kind", ["character", "ngrams", "bpe"])
def test_texts_are_tokenized_and_padded_as_lamina_does(tmp_path, kind):
    if kind == "bpe":
        pytest.importorskip("tokenizers")
    ngrams = SimpleNamespace(word_ngrams=2, char_ngrams=(3, 4), buckets=50, min_count=1)
    tokenizer = train_tokenizer(kind, TEXTS[:3], vocab_size=300, padding=True, ngrams=ngrams)
    (tmp_path / "plain.txt").write_text("win now\r\n\nunseen ☃ words here\n")
    (tmp_path / "rows.csv").write_text('label,text\nspam,"win, win"\nham,see you\n')
    (tmp_path / "rows.jsonl").write_text('{"text": "a JSON line"}\n\n{"text": "' + "long " * 30 + '"}\n')
    preprocessing = {
        "type": "text",
        "tokenizer": tokenizer.to_dict(),
        "max_length": 24,
        "lowercase": True,
        "text_column": "text",
    }
    paths = [tmp_path / "plain.txt", tmp_path / "rows.csv", tmp_path / "rows.jsonl"]
    ours, labels = read_texts(paths, preprocessing)
    theirs, their_labels = lamina_read_texts(paths, preprocessing)
    assert ours.dtype == numpy.int64 and ours.shape == tuple(theirs.shape) and ours.shape[0] == 6
    numpy.testing.assert_array_equal(ours, theirs.numpy())
    assert labels == their_labels
    numpy.testing.assert_array_equal(trim_padding(ours[:2], 0 if kind != "bpe" else tokenizer.pad_id),
                                     TrimPadding(0 if kind != "bpe" else tokenizer.pad_id)(theirs[:2]).numpy())  # fmt: skip


@pytest.mark.parametrize(
    "record",
    [{"kind": "features", "layout": None}, {"kind": "sequence", "layout": None},
     {"kind": "image", "layout": "NHWC", "scale": "times_255"}],
)  # fmt: skip
def test_array_files_are_read_as_lamina_reads_them(tmp_path, record):
    generator = numpy.random.default_rng(3)
    shape = {"features": (4, 5), "sequence": (4, 6), "image": (4, 6, 6, 3)}[record["kind"]]
    numpy.savez(tmp_path / "two.npz", a=generator.random(shape), b=generator.random(shape))
    numpy.save(tmp_path / "one.npy", generator.random(shape).astype(numpy.float32))
    preprocessing = {"type": "image" if record["kind"] == "image" else "arrays", "arrays": record}
    references = [f"{tmp_path / 'two.npz'}:b", str(tmp_path / "one.npy")]
    ours, labels = read_array_files(references, record)
    theirs, their_labels = lamina_inputs.read_inputs(references, preprocessing)
    numpy.testing.assert_array_equal(ours, theirs.numpy())
    assert labels == their_labels and labels[0] == f"{tmp_path / 'two.npz'}:b[0]" and len(ours) == 8
    assert ours.dtype == (numpy.uint8 if record["kind"] == "image" else numpy.float32)
    with pytest.raises(DataError, match=r"two.npz holds 2 arrays \(a, b\)"):
        read_array_files([str(tmp_path / "two.npz")], record)


# ---- decoding: equal to Task.decode --------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [None, {"positive_class": "spam", "positive_index": 1, "value": 0.3}])
def test_two_class_decoding_matches_the_task_incl_its_threshold(threshold):
    scores = numpy.array([[0.9, 0.1], [0.75, 0.25], [0.7, 0.3], [0.2, 0.8]], dtype=numpy.float32)
    labels, names = ["a", "b", "c", "d"], ["ham", "spam"]
    spec = SimpleNamespace(class_names=names)
    expected = tasks.get("classification").decode(torch.from_numpy(scores), spec, labels, None, None, None, threshold)
    ours = decode(scores, labels, True, names, threshold)
    assert ours == expected
    assert [r["label"] for r in ours] == (
        ["ham", "ham", "spam", "spam"] if threshold else ["ham", "ham", "ham", "spam"]
    )


def test_many_class_and_regression_decoding_match_the_tasks():
    scores = numpy.random.default_rng(1).dirichlet(numpy.ones(4), size=5).astype(numpy.float32)
    spec = SimpleNamespace(class_names=None)  # a run without class names: "0", "1", …
    labels = [str(i) for i in range(5)]
    assert decode(scores, labels, True, None, None) == tasks.get("classification").decode(
        torch.from_numpy(scores), spec, labels, None, None, None
    )
    values = numpy.array([[1.5], [-2.0]], dtype=numpy.float32)
    pair = numpy.array([[1.0, 2.0], [3.0, 4.0]], dtype=numpy.float32)
    for array in (values, pair):
        expected = tasks.get("regression").decode(torch.from_numpy(array), spec, ["x", "y"], None, None, None)
        assert decode(array, ["x", "y"], False, None, None) == expected


# ---- a bundle: run, batched, refused -------------------------------------------------------------------


class TinyImageModel(torch.nn.Module):
    """uint8 (N, 1, 8, 8) → normalized → linear → softmax over 3 classes: the shape of an exported run."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(64, 3)

    def forward(self, inputs):
        pixels = (inputs.float() / 255.0 - 0.3) / 0.4
        return torch.softmax(self.linear(pixels.flatten(1)), dim=1)  # (N, 1, 8, 8) → (N, 64) → (N, 3)


def write_tiny_bundle(folder: Path, **changes) -> Path:
    """A bundle as the contract describes it, of TinyImageModel; `changes` replace bundle.json fields."""
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and fast (lamina export: F1)
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyImageModel().eval(), (example,), str(folder / "model.onnx"), input_names=["inputs"],
                          output_names=["scores"], dynamic_axes={"inputs": {0: "batch"}, "scores": {0: "batch"}},
                          dynamo=False)  # fmt: skip
    metadata = {
        "format": "lamina-bundle", "version": 1, "lamina_version": "0.1.0", "created": "2026-12-02T00:00:00",
        "run": "tiny", "config_hash": "0" * 64, "task": "classification", "family": "linear",
        "classes": ["cat", "dog", "eel"], "threshold": None, "temperature": None,
        "input": {"name": "inputs", "dtype": "uint8", "shape": [None, 1, 8, 8], "kind": "image"},
        "output": {"name": "scores", "shape": [None, 3]},
        "preprocessing": {"type": "image", "channels": 1, "height": 8, "width": 8, "mean": [0.3], "std": [0.4]},
        "metrics": {}, "files": {"onnx": "model.onnx", "tokenizer": None, "safetensors": None},
    } | changes  # fmt: skip
    (folder / "bundle.json").write_text(json.dumps(metadata))
    return folder


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def test_a_bundle_predicts_files_and_stored_arrays_as_its_model_does(tiny_bundle, tmp_path):
    generator = numpy.random.default_rng(2)
    images = generator.integers(0, 256, (600, 1, 8, 8), dtype=numpy.uint8)  # more than one batch of 256
    bundle = load_bundle(tiny_bundle, threads=1)
    with torch.no_grad():
        expected = TinyImageModel()(torch.from_numpy(images)).numpy()
    results = bundle.predict_stored(images)
    assert len(results) == 600 and [r["input"] for r in results[:2]] == ["0", "1"]
    probabilities = numpy.array([[r["probabilities"][name] for name in ("cat", "dog", "eel")] for r in results])
    numpy.testing.assert_allclose(probabilities, expected, atol=2e-6)
    assert [r["label"] for r in results] == [["cat", "dog", "eel"][i] for i in expected.argmax(axis=1)]
    Image.fromarray(images[0, 0]).resize((16, 16), Image.NEAREST).save(tmp_path / "big.png")  # BOX shrink: exact
    from_file = bundle.predict(tmp_path / "big.png")
    assert from_file[0]["input"] == str(tmp_path / "big.png") and from_file[0]["label"] == results[0]["label"]
    assert from_file[0]["probability"] == pytest.approx(results[0]["probability"], abs=1e-6)
    assert bundle.predict(images[:3].astype(numpy.int64))[2] == results[2]  # integers that fit uint8 are converted


def test_a_bundle_refuses_inputs_it_cannot_take(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    with pytest.raises(
        DataError, match=r"inputs of shape \(2, 1, 9, 8\) do not fit this bundle, which takes \(N, 1, 8, 8\)"
    ):
        bundle.predict_stored(numpy.zeros((2, 1, 9, 8), dtype=numpy.uint8))
    with pytest.raises(DataError, match="inputs of dtype float64 do not convert to this bundle's uint8"):
        bundle.predict_stored(numpy.full((1, 1, 8, 8), 0.5))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt is not an image file, but this run was trained on images"):
        bundle.predict([tmp_path / "notes.txt"])


def test_bundle_folder_errors_say_what_is_wrong_and_how_to_fix_it(tiny_bundle, tmp_path):
    with pytest.raises(RunError, match="bundle folder .*missing' does not exist"):
        load_bundle(tmp_path / "missing")
    with pytest.raises(RunError, match="is not a bundle: it has no bundle.json"):
        load_bundle(tmp_path)
    cases = {
        "format": ({"format": "something-else"}, "has format 'something-else', not 'lamina-bundle'"),
        "version": ({"version": 2}, "is bundle version 2; this lamina reads version 1"),
        "model": ({"files": {"onnx": "gone.onnx"}}, "names the model file 'gone.onnx', which is not there"),
    }
    for name, (changes, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        metadata = json.loads((tiny_bundle / "bundle.json").read_text()) | changes
        (folder / "bundle.json").write_text(json.dumps(metadata))
        (folder / "model.onnx").write_bytes((tiny_bundle / "model.onnx").read_bytes())
        with pytest.raises(RunError, match=message):
            load_bundle(folder)


def test_a_language_model_bundle_refuses_predict_and_points_to_run(tiny_bundle, tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    metadata = json.loads((tiny_bundle / "bundle.json").read_text()) | {"task": "language_modeling"}
    (folder / "bundle.json").write_text(json.dumps(metadata))
    (folder / "model.onnx").write_bytes((tiny_bundle / "model.onnx").read_bytes())
    bundle = load_bundle(folder)
    with pytest.raises(RunError, match=r"task is language_modeling.*\n.*Bundle.run\(token_ids\)"):
        bundle.predict_stored(numpy.zeros((1, 1, 8, 8), dtype=numpy.uint8))
    assert bundle.run(numpy.zeros((1, 1, 8, 8), dtype=numpy.uint8)).shape == (1, 3)


def test_predicting_from_a_bundle_imports_neither_torch_nor_pydantic(tiny_bundle, tmp_path):
    Image.fromarray(numpy.full((8, 8), 200, dtype=numpy.uint8)).save(tmp_path / "grey.png")
    script = (
        "import sys, json, lamina\n"
        "from lamina.cli.main import main\n"
        f"code = main(['predict', {str(tiny_bundle)!r}, {str(tmp_path / 'grey.png')!r}, '--json'])\n"
        f"api = lamina.load_bundle({str(tiny_bundle)!r}).predict([{str(tmp_path / 'grey.png')!r}])\n"
        "heavy = sorted(m for m in ('torch', 'pydantic', 'yaml') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy, 'label': api[0]['label']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    printed, summary = done.stdout.splitlines()
    assert json.loads(summary) == {"code": 0, "heavy": [], "label": json.loads(printed)["label"]}
    assert json.loads(printed)["input"] == str(tmp_path / "grey.png")


class TinyBigramModel(torch.nn.Module):
    """int64 token ids (N, T) → next-token logits (N, T, V): a bigram language model."""

    def __init__(self, vocabulary: int):
        super().__init__()
        torch.manual_seed(1)
        self.table = torch.nn.Embedding(vocabulary, vocabulary)

    def forward(self, ids):
        return self.table(ids)


def test_a_language_model_bundle_generates_greedily_as_its_model_would(tiny_bundle, tmp_path):
    vocabulary = ["<pad>", "<unk>", " ", "a", "b", "c", "d"]
    folder = tmp_path / "bigram"
    folder.mkdir()
    model = TinyBigramModel(len(vocabulary)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.tensor([[3, 4]]),), str(folder / "model.onnx"), input_names=["inputs"],
                          output_names=["logits"], dynamic_axes={"inputs": {0: "batch", 1: "tokens"}},
                          dynamo=False)  # fmt: skip
    tokenizer = {"type": "character", "vocabulary": vocabulary, "padding": True, "unknown": True}
    metadata = json.loads((tiny_bundle / "bundle.json").read_text()) | {
        "task": "language_modeling", "classes": None,
        "input": {"name": "inputs", "dtype": "int64", "shape": [None, None], "kind": "text"},
        "output": {"name": "logits", "shape": [None, None, len(vocabulary)]},
        "preprocessing": {"type": "text", "tokenizer": tokenizer, "max_length": 4, "language_model": True},
    }  # fmt: skip
    (folder / "bundle.json").write_text(json.dumps(metadata))
    bundle = load_bundle(folder)
    tokens = [3]  # "a", then the most likely next token of the last one, eight times
    with torch.no_grad():
        for _ in range(8):
            tokens.append(int(model(torch.tensor([tokens[-4:]]))[0, -1].argmax()))
    expected = "".join(vocabulary[i] for i in tokens if i > 1)
    assert bundle.generate("a", max_tokens=8, top_k=1) == {"text": expected, "tokens": 8}
    sampled = [bundle.generate("a", max_tokens=8, seed=seed)["text"] for seed in (0, 0, 1)]
    assert sampled[0] == sampled[1] and len(sampled[0]) >= 1 and set(sampled[2]) <= set("abcd ")
    with pytest.raises(RunError, match="temperature must be above 0"):
        bundle.generate("a", temperature=0)
    with pytest.raises(RunError, match="not a language model"):
        load_bundle(tiny_bundle).generate("a")
    del metadata["preprocessing"]["tokenizer"]  # the tokenizer in its own file instead
    (folder / "bundle.json").write_text(json.dumps(metadata | {"files": {"onnx": "model.onnx", "tokenizer": "t.json"}}))
    with pytest.raises(RunError, match=r"is of a text model, but holds no tokenizer \(files.tokenizer: 't.json'\)"):
        load_bundle(folder)
    (folder / "t.json").write_text(json.dumps(tokenizer))
    assert load_bundle(folder).generate("a", max_tokens=8, top_k=1)["text"] == expected
