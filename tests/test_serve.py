"""lamina serve: served predictions equal Run.predict (JSON and file uploads, micro-batched or not), every malformed
request gets its 4xx with a message, a failing model a 500 that leaves the server up, /health while loading, and a
real `lamina serve` process that answers and stops cleanly on SIGTERM."""

from __future__ import annotations

import base64
import io
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy
import pytest
from PIL import Image

import lamina
from conftest import ROOT, tiny_config

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from lamina.serve import ServeOptions, create_app  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, lamina.Run]:
    """A digits CNN, a breast-cancer MLP (a table, two classes) and a tiny text GRU, trained here in seconds."""
    folder = tmp_path_factory.mktemp("serve")
    texts = folder / "texts.tsv"
    lines = [f"win a free prize {i}\tspam" if i % 2 else f"see you at lunch {i}\tham" for i in range(60)]
    texts.write_text("text\tlabel\n" + "\n".join(lines) + "\n")
    configs = {
        "image": tiny_config(epochs=1),
        "table": {
            "seed": 0,
            "data": {"name": "breast_cancer"},
            "model": {"name": "mlp", "hidden_sizes": [8]},
            "train": {"epochs": 2},
        },  # fmt: skip
        "text": {
            "seed": 0,
            "data": {"name": "labelled_text", "path": str(texts)},
            "model": {"name": "rnn", "cell": "gru", "hidden_size": 8},
            "train": {"epochs": 1},
        },  # fmt: skip
    }
    return {kind: lamina.train(config, runs_dir=folder / kind, progress="quiet") for kind, config in configs.items()}


def client_for(run: lamina.Run, **options) -> TestClient:
    client = TestClient(create_app(run.dir, ServeOptions(**options)), raise_server_exceptions=False)
    client.__enter__()
    deadline = time.monotonic() + 30
    while client.get("/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    return client


def png(array: numpy.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def assert_same(served: list[dict], expected: list[dict]) -> None:
    assert [result["label"] for result in served] == [result["label"] for result in expected]
    for got, want in zip(served, expected, strict=True):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-6)
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
        assert got.get("threshold") == want.get("threshold")


@pytest.mark.parametrize("max_batch", [32, 1])
def test_served_image_predictions_equal_run_predict(runs, tmp_path, max_batch):
    run, rng = runs["image"], numpy.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8), dtype=numpy.uint8) for _ in range(5)]
    images.append(rng.integers(0, 256, (16, 16, 3), dtype=numpy.uint8))  # RGB, twice the size: converted, resized
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        paths[-1].write_bytes(png(image))
    expected = run.predict(paths)
    client = client_for(run, max_batch=max_batch)
    assert client.get("/health").json() == {"status": "ok"}
    metadata = client.get("/metadata").json()
    assert metadata["input"] | {"note": None} == {"kind": "image", "dtype": "uint8", "shape": [None, 1, 8, 8],
                                                  "channels": 1, "height": 8, "width": 8, "note": None}  # fmt: skip
    assert metadata["classes"] == [str(digit) for digit in range(10)] and metadata["backend"] == "torch"
    assert metadata["metrics"]["test"]["accuracy"] == run.metrics["test"]["accuracy"]
    encoded = [base64.b64encode(path.read_bytes()).decode() for path in paths]
    answer = client.post("/predict", json={"instances": encoded})
    assert answer.status_code == 200
    assert_same(answer.json()["predictions"], expected)
    assert [result["input"] for result in answer.json()["predictions"]][:2] == ["instance 0", "instance 1"]
    files = [("files", (path.name, path.read_bytes(), "image/png")) for path in paths]
    answer = client.post("/predict", files=files)
    assert_same(answer.json()["predictions"], expected)
    assert [result["input"] for result in answer.json()["predictions"]] == [path.name for path in paths]
    # concurrent single-image requests, batched together (or not): each gets its own answer
    answers: dict[int, dict] = {}

    def ask(index: int) -> None:
        answers[index] = client.post("/predict", json={"instances": [encoded[index]]}).json()["predictions"][0]

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_same([answers[index] for index in range(len(paths))], expected)
    client.__exit__(None, None, None)


def test_every_malformed_image_request_gets_its_4xx_with_a_message(runs):
    client = client_for(runs["image"], max_request_bytes=100_000, max_instances=4)
    good = png(numpy.zeros((8, 8), dtype=numpy.uint8))
    cases = {
        "truncated image": (
            dict(files=[("files", ("a.png", good[:30], "image/png"))]),
            422,
            "cannot read image a.png",
        ),  # fmt: skip
        "not an image": (
            dict(files=[("files", ("b.png", b"hello, world", "image/png"))]),
            422,
            "cannot read image b.png",
        ),
        "wrong file type": (
            dict(files=[("files", ("rows.csv", b"a,b\n1,2\n", "text/csv"))]),
            415,
            "file 'rows.csv' (text/csv) is not of the kind this run reads: image",
        ),  # fmt: skip
        "wrong content type": (
            dict(content=b"x", headers={"content-type": "text/plain"}),
            415,
            "content type 'text/plain' is not accepted",
        ),  # fmt: skip
        "not JSON": (
            dict(content=b"{oops", headers={"content-type": "application/json"}),
            422,
            "the body is not valid JSON",
        ),  # fmt: skip
        "JSON of the wrong shape": (
            dict(json={"inputs": []}),
            422,
            "the JSON body needs a list \"instances\"; received keys ['inputs']",
        ),  # fmt: skip
        "a list, not an object": (dict(json=[1, 2]), 422, 'the JSON body needs a list "instances"; received list'),
        "no instances": (dict(json={"instances": []}), 422, '"instances" is empty'),
        "a number for an image": (dict(json={"instances": [3]}), 422, "instance 0 is a int, not a base64 string"),
        "bad base64": (dict(json={"instances": ["***"]}), 422, "instance 0 is not valid base64"),
        "too many instances": (
            dict(json={"instances": ["AA=="] * 5}),
            413,
            "5 instances in one request, more than the limit of 4",
        ),  # fmt: skip
        "too big": (
            dict(files=[("files", ("big.png", b"0" * 200_000, "image/png"))]),
            413,
            "the request body has 200,",
        ),  # fmt: skip
        "no files": (
            dict(data={"field": "value"}, files=[("other", ("", b"", ""))]),
            422,
            "the multipart body holds no files",
        ),  # fmt: skip
        "a form, not files": (
            dict(data={"field": "value"}),
            415,
            "content type 'application/x-www-form-urlencoded' is not accepted",
        ),  # fmt: skip
    }
    for label, (request, status, message) in cases.items():
        answer = client.post("/predict", **request)
        assert (answer.status_code, answer.json()["error"][: len(message)]) == (status, message), label
        assert answer.json()["hint"], label
    assert client.get("/health").json() == {"status": "ok"}  # and it still serves
    assert client.post("/predict", json={"instances": [base64.b64encode(good).decode()]}).status_code == 200
    client.__exit__(None, None, None)


def test_table_rows_as_lists_objects_and_csv_equal_run_predict(runs, tmp_path):
    run = runs["table"]
    client = client_for(run)
    columns = client.get("/metadata").json()["input"]["columns"]
    assert len(columns) == 30 and columns[0] == "mean radius"
    rows = numpy.random.default_rng(1).uniform(0, 30, (4, len(columns))).round(3)
    table = tmp_path / "rows.csv"
    table.write_text(",".join(columns) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    expected = run.predict([table])
    by_list = client.post("/predict", json={"instances": rows.tolist()}).json()["predictions"]
    by_name = [dict(zip(columns, row, strict=True)) for row in rows.tolist()]
    assert_same(by_list, expected)
    assert_same(client.post("/predict", json={"instances": by_name}).json()["predictions"], expected)
    uploaded = client.post("/predict", files=[("files", ("rows.csv", table.read_bytes(), "text/csv"))])
    assert_same(uploaded.json()["predictions"], expected)
    assert uploaded.json()["predictions"][0]["input"] == "rows.csv:2"
    short = table.read_text().replace("mean radius,", "radius,", 1)  # the header names a column the run lacks
    cases = {
        "unknown column": (
            {"json": {"instances": [{**by_name[0], "colour": 1}]}},
            "row 0 has unknown columns ['colour']",
        ),
        "missing column": ({"json": {"instances": [{"mean radius": 1}]}}, "row 0 has missing columns"),
        "short row": ({"json": {"instances": [[1, 2]]}}, "row 0 has 2 values, but the run has 30 columns"),
        "missing CSV column": (
            {"files": [("files", ("s.csv", short.encode(), "text/csv"))]},
            "s.csv lacks the feature columns mean radius",
        ),  # fmt: skip
    }
    for label, (request, message) in cases.items():
        answer = client.post("/predict", **request)
        assert (answer.status_code, answer.json()["error"][: len(message)]) == (422, message), label
    client.__exit__(None, None, None)


def test_texts_equal_run_predict_and_bad_texts_are_refused(runs, tmp_path):
    run = runs["text"]
    texts = ["win a free prize now", "see you at lunch tomorrow", "free lunch"]
    file = tmp_path / "texts.txt"
    file.write_text("\n".join(texts) + "\n")
    client = client_for(run)
    answer = client.post("/predict", json={"instances": texts})
    assert_same(answer.json()["predictions"], run.predict([file]))
    assert [result["input"] for result in answer.json()["predictions"]] == texts
    uploaded = client.post("/predict", files=[("files", ("texts.txt", file.read_bytes(), "text/plain"))])
    assert_same(uploaded.json()["predictions"], run.predict([file]))
    # a text batched with a longer one (more padding in the batch: micro-batching does this) is answered as alone
    alone = client.post("/predict", json={"instances": texts[2:]}).json()["predictions"]
    beside = client.post("/predict", json={"instances": [texts[2], "free " * 40]}).json()["predictions"]
    assert_same(beside[:1], alone)
    cases = {
        "empty text": ({"json": {"instances": ["hello", " \n "]}}, "instance 1 is an empty text"),
        "a number": ({"json": {"instances": [7]}}, "instance 0 is a int, not a string"),
        "not UTF-8": ({"files": [("files", ("t.txt", b"caf\xe9", "text/plain"))]}, "t.txt is not UTF-8 text"),
        "an empty file": ({"files": [("files", ("t.txt", b"\n\n", "text/plain"))]}, "the request holds no inputs"),
    }
    for label, (request, message) in cases.items():
        answer = client.post("/predict", **request)
        assert (answer.status_code, answer.json()["error"][: len(message)]) == (422, message), label
    client.__exit__(None, None, None)


class Broken:
    """A predictor whose model fails: the server answers 500 with a generic message and keeps serving."""

    metadata = {"input": {"kind": "text"}, "backend": "test"}

    def read(self, paths):
        return numpy.zeros((1, 4), dtype=numpy.int64), ["x"]

    def predict_stored(self, stored, names):
        raise RuntimeError("a bug in the model")


def test_loading_then_an_internal_error_is_a_500_and_the_server_keeps_running():
    loaded = threading.Event()

    def loader():
        loaded.wait(10)
        return Broken()

    with TestClient(create_app("x", loader=loader), raise_server_exceptions=False) as client:
        assert (client.get("/health").status_code, client.get("/health").json()["status"]) == (503, "loading")
        answer = client.post("/predict", json={"instances": ["hi"]})
        assert (answer.status_code, answer.json()["status"], answer.headers["retry-after"]) == (503, "loading", "1")
        loaded.set()
        while client.get("/health").status_code != 200:
            time.sleep(0.01)
        for _ in range(2):
            answer = client.post("/predict", json={"instances": ["hi"]})
            assert answer.status_code == 500
            assert answer.json()["error"] == "internal error while predicting; the server logged it"
        assert client.get("/health").json() == {"status": "ok"}
        described = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
        assert sorted(described["requestBody"]["content"]) == ["application/json", "multipart/form-data"]
        assert {"413", "415", "422", "503"} <= set(described["responses"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_lamina_serve_answers_health_predicts_and_stops_on_sigterm(runs):
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "lamina", "serve", str(runs["image"].dir), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        answers, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline and (not answers or answers[-1] != 200):
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code)
            except httpx.TransportError:
                time.sleep(0.05)
        assert answers[-1] == 200 and set(answers) <= {503, 200}
        image = base64.b64encode(png(numpy.zeros((8, 8), dtype=numpy.uint8))).decode()
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"instances": [image]}, timeout=10)
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] in [str(d) for d in range(10)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        process.kill() if process.poll() is None else None
    assert f"at http://127.0.0.1:{port}" in process.stdout.read()


def test_a_folder_that_is_no_run_is_refused_before_serving(tmp_path):
    from conftest import run_cli

    result = run_cli("serve", str(tmp_path))
    assert result.returncode == 2
    assert f"error: {tmp_path} is neither a run folder nor an exported bundle" in result.stderr
    assert Path(tmp_path).exists()


def test_the_onnx_backend_serves_an_exported_bundle_as_the_run_predicts(runs, tmp_path):
    """`lamina export` each run, then serve the bundle through onnxruntime: the same labels, probabilities within
    1e-5 (the export's own check allows 1e-4) and threshold as Run.predict, for images, table rows and texts."""
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    pytest.importorskip("onnxscript", reason="the export extra is not installed")
    from lamina.export import export_run

    image, rng = tmp_path / "digit.png", numpy.random.default_rng(1)
    image.write_bytes(png(rng.integers(0, 256, (8, 8), dtype=numpy.uint8)))
    rows = tmp_path / "rows.csv"
    table = runs["table"]
    columns = client_for(table).get("/metadata").json()["input"]["columns"]
    rows.write_text(",".join(columns) + "\n" + ",".join(str(10.0 + i) for i in range(len(columns))) + "\n")
    text = tmp_path / "message.txt"
    text.write_text("win a free prize now\n")
    for kind, path, upload in (
        ("image", image, "image/png"),
        ("table", rows, "text/csv"),
        ("text", text, "text/plain"),
    ):
        run = runs[kind]
        bundle = export_run(run, out=tmp_path / f"bundle-{kind}")
        client = TestClient(create_app(bundle, ServeOptions(backend="onnx")), raise_server_exceptions=False)
        with client:
            deadline = time.monotonic() + 30
            while client.get("/health").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert client.get("/metadata").json()["backend"] == "onnx"
            answer = client.post("/predict", files={"files": (path.name, path.read_bytes(), upload)})
            assert answer.status_code == 200, answer.text
        served, expected = answer.json()["predictions"], run.predict([path])
        assert [result["label"] for result in served] == [result["label"] for result in expected]
        for got, want in zip(served, expected, strict=True):
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
            assert got.get("threshold") == want.get("threshold")
