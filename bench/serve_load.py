"""Load and fault test of `lamina serve` on loopback: concurrent clients mixing valid and malformed requests.

.venv/bin/python bench/serve_load.py RUN [RUN ...] [--requests 10000] [--clients 16] [--time-cap 240]
    [--max-batch 1 32] [--backend torch|onnx] [--output bench/serve_load.json]

For each run folder (an image run such as the MNIST CNN, a text run such as the SMS spam GRU; --backend onnx serves
the bundle folders given instead) and each --max-batch (1: no micro-batching), it starts `lamina serve` on a free
port, times the first /health answer and the first "ok", sends 1,000 warm-up requests of the same mix, reads the
server's resident memory, then sends --requests requests (in 5 parts, memory read after each) from --clients
concurrent asyncio clients (httpx), about 3 in 4 valid and the rest malformed: truncated images, not-an-image
bytes, wrong content types, payloads over the 10 MB limit, non-UTF-8 text, JSON of the wrong shape, bad base64,
empty texts. It reports throughput, p50/p99 latency of the valid requests (p50: the median of the 5 parts', p99:
the worst), the count of each status code, whether every answer was what it should be (valid → 200, malformed →
4xx with a JSON "error"), and the resident memory before, after each part and at the end. It fails (exit 1) on
any 5xx, any wrong answer, or memory growth of 10 % or more.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import gzip
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
HUGE = b"\x89PNG" + b"0" * (10 * 1024 * 1024 + 4096)  # just over the default 10 MB limit


def resident_bytes(pid: int) -> int:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("cannot read the server's resident memory")


def valid_inputs(kind: str, count: int = 64) -> list[dict]:
    """Valid request bodies (as httpx keyword arguments) of real inputs of the run's kind."""
    if kind == "image":
        with gzip.open(SHARED / "mnist" / "t10k-images-idx3-ubyte.gz") as file:
            images = numpy.frombuffer(file.read(), dtype=numpy.uint8, offset=16).reshape(-1, 28, 28)[:count]
        pngs = []
        for image in images:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "PNG")
            pngs.append(buffer.getvalue())
        bodies = [{"json": {"instances": [base64.b64encode(data).decode()]}} for data in pngs]
        return bodies + [{"files": [("files", (f"{index}.png", data, "image/png"))]} for index, data in enumerate(pngs)]
    lines = (SHARED / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:count]
    texts = [line.split("\t", 1)[1] for line in lines]
    bodies = [{"json": {"instances": [text]}} for text in texts]
    return bodies + [{"files": [("files", ("t.txt", text.encode(), "text/plain"))]} for text in texts]


def malformed_inputs(kind: str, valid: list[dict]) -> dict[str, dict]:
    """Malformed request bodies, by name: each must get a 4xx with a message."""
    png = valid[len(valid) // 2]["files"][0][1][1] if kind == "image" else None
    cases = {
        "wrong content type": {"content": b"hello", "headers": {"content-type": "text/plain"}},
        "huge payload": {"content": HUGE, "headers": {"content-type": "application/json"}},
        "non-UTF-8 text": {"files": [("files", ("t.txt", b"caf\xe9 \xff\xfe", "text/plain"))]},
        "JSON of the wrong shape": {"json": {"inputs": [1, 2, 3]}},
        "not JSON": {"content": b"{'instances': oops", "headers": {"content-type": "application/json"}},
        "numbers for the kind": {"json": {"instances": [[1, 2, 3]]}},
    }
    if kind == "image":
        cases |= {
            "truncated image": {"files": [("files", ("t.png", png[: len(png) // 2], "image/png"))]},
            "not an image": {"files": [("files", ("n.png", b"GIF89a but not really", "image/png"))]},
            "bad base64": {"json": {"instances": ["not base64!"]}},
        }
    else:
        cases |= {
            "empty text": {"json": {"instances": ["   "]}},
            "an empty file": {"files": [("files", ("e.txt", b"", "text/plain"))]},
        }
    return cases


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(source: Path, backend: str, max_batch: int) -> tuple[subprocess.Popen, str, dict]:
    port = free_port()
    command = [sys.executable, "-m", "lamina", "serve", str(source), "--port", str(port), "--backend", backend,
               "--max-batch", str(max_batch), "--max-instances", "256"]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url, first, ready = f"http://127.0.0.1:{port}", None, None
    while time.perf_counter() - started < 120 and ready is None:
        try:
            answer = httpx.get(f"{url}/health", timeout=2)
            first = first or (time.perf_counter() - started, answer.status_code)
            if answer.status_code == 200:
                ready = time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.02)
    if ready is None:
        process.kill()
        raise RuntimeError(f"lamina serve {source} did not become ready: {process.stderr.read()}")
    return process, url, {"first_health_seconds": round(first[0], 3), "first_health_status": first[1],
                          "ready_seconds": round(ready, 3)}  # fmt: skip


async def load(url: str, valid: list[dict], malformed: dict[str, dict], requests: int, clients: int, cap: float):
    plan = random.Random(0)
    jobs = []
    for _ in range(requests):
        if plan.random() < 0.75 or not malformed:
            jobs.append(("valid", plan.choice(valid)))
        else:
            small = [name for name in malformed if name != "huge payload"]
            name = "huge payload" if plan.random() < 0.02 else plan.choice(small)  # a few: each is 10 MB
            jobs.append((name, malformed[name]))
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    statuses, wrong, latencies = collections.Counter(), collections.Counter(), []
    by_case: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    deadline = time.perf_counter() + cap

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as session:
            while not queue.empty() and time.perf_counter() < deadline:
                name, body = queue.get_nowait()
                started = time.perf_counter()
                try:
                    answer = await session.post(f"{url}/predict", **body)
                    status = answer.status_code
                    try:
                        message = answer.json().get("error") if status != 200 else None
                    except ValueError:
                        message = None
                except httpx.TransportError as error:
                    status, message = f"transport error: {type(error).__name__}", None
                if name == "valid":
                    latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                by_case[name][status] += 1
                good = status == 200 if name == "valid" else isinstance(status, int) and 400 <= status < 500 and message
                if not good:
                    wrong[name] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    done = sum(statuses.values())
    latencies.sort()
    return {
        "requests": done,
        "seconds": round(seconds, 2),
        "requests_per_second": round(done / seconds, 1),
        "valid_p50_ms": round(1000 * statistics.median(latencies), 2),
        "valid_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2),
        "status_counts": {str(status): count for status, count in sorted(statuses.items(), key=str)},
        "by_case": {name: {str(s): c for s, c in counts.items()} for name, counts in sorted(by_case.items())},
        "wrong_answers": dict(wrong),
        "server_errors": sum(count for status, count in statuses.items() if isinstance(status, int) and status >= 500),
    }


def merged(chunks: list[dict]) -> dict:
    """The figures of the parts together (latency percentiles: the parts' worst p99 and median p50)."""
    seconds = sum(chunk["seconds"] for chunk in chunks)
    requests = sum(chunk["requests"] for chunk in chunks)

    def total(key: str) -> dict:
        counts: collections.Counter = collections.Counter()
        for chunk in chunks:
            counts.update(chunk[key])
        return dict(sorted(counts.items()))

    by_case: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for chunk in chunks:
        for name, counts in chunk["by_case"].items():
            by_case[name].update(counts)
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "requests_per_second": round(requests / seconds, 1),
        "valid_p50_ms": statistics.median(chunk["valid_p50_ms"] for chunk in chunks),
        "valid_p99_ms": max(chunk["valid_p99_ms"] for chunk in chunks),
        "status_counts": total("status_counts"),
        "by_case": {name: dict(counts) for name, counts in sorted(by_case.items())},
        "wrong_answers": total("wrong_answers"),
        "server_errors": sum(chunk["server_errors"] for chunk in chunks),
    }


def input_kind(source: Path) -> str:
    """ "image" or "text": what the run folder's data.json or the bundle's bundle.json says it reads."""
    if (source / "bundle.json").is_file():
        return json.loads((source / "bundle.json").read_text())["input"]["kind"]
    return json.loads((source / "data.json").read_text())["preprocessing"]["type"]


def measure(source: Path, backend: str, max_batch: int, arguments) -> dict:
    kind = input_kind(source)
    valid = valid_inputs(kind)
    malformed = malformed_inputs(kind, valid)
    process, url, startup = start(source, backend, max_batch)
    try:
        asyncio.run(load(url, valid, malformed, 1000, arguments.clients, 120))  # warm-up: the same mix
        before = resident_bytes(process.pid)
        chunks, trace = [], []  # in 5 parts, to see whether memory keeps growing or levels off
        for _ in range(5):
            chunk = arguments.requests // 5
            chunks.append(asyncio.run(load(url, valid, malformed, chunk, arguments.clients, arguments.time_cap / 5)))
            trace.append(round(resident_bytes(process.pid) / 2**20, 1))
        result = merged(chunks)
        after = resident_bytes(process.pid)
        forward_passes = httpx.get(f"{url}/metadata").json()["forward_passes"]
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(60)
    return {"run": source.parent.name if (source / "bundle.json").is_file() else source.name, "kind": kind, "backend": backend, "max_batch": max_batch, **startup, **result,
            "forward_passes": forward_passes, "rss_before_mb": round(before / 2**20, 1),
            "rss_after_mb": round(after / 2**20, 1), "rss_trace_mb": trace, "rss_growth_percent": round(100 * (after - before) / before, 2),
            "sigterm_exit_code": exit_code}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="run folders (or bundles with --backend onnx)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--time-cap", type=float, default=240, help="seconds per configuration at most")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "serve_load.json")
    arguments = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = []
    for source in arguments.sources:
        for max_batch in arguments.max_batch:
            result = measure(source, arguments.backend, max_batch, arguments)
            results.append(result)
            print(json.dumps(result), flush=True)
    arguments.output.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1) + "\n")
    failed = [r for r in results if r["server_errors"] or r["wrong_answers"] or r["rss_growth_percent"] >= 10]
    print(f"{len(results) - len(failed)} of {len(results)} configurations passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
