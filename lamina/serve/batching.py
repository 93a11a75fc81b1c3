"""Dynamic micro-batching: requests queue up, and one worker thread predicts up to `max_batch` inputs (or what
arrived within `max_wait` seconds of the first) in one forward pass. With `max_batch=1` each request is its own
forward pass, one at a time (the model is never run by two threads at once)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy

__all__ = ["Batcher"]

Predict = Callable[[numpy.ndarray, list[str]], list[dict[str, Any]]]


@dataclass
class _Job:
    stored: numpy.ndarray  # (n, ...) in stored form
    names: list[str]
    future: Future = field(default_factory=Future)


class Batcher:
    """One worker thread in front of `predict`; `submit` returns a Future of the request's results."""

    def __init__(self, predict: Predict, max_batch: int = 1, max_wait: float = 0.0):
        self.predict, self.max_batch, self.max_wait = predict, max(1, max_batch), max(0.0, max_wait)
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.batches = 0  # forward passes run, for /metadata and the load test
        self.thread = threading.Thread(target=self._work, name="lamina-serve-batcher", daemon=True)
        self.thread.start()

    def submit(self, stored: numpy.ndarray, names: list[str]) -> Future:
        job = _Job(stored, names)
        self.jobs.put(job)
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, then stop the worker."""
        self.jobs.put(None)
        self.thread.join(timeout)

    def _work(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            jobs, rows, stop = [first], len(first.stored), False
            deadline = time.monotonic() + self.max_wait
            while rows < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
                rows += len(job.stored)
            self._run(jobs)
            if stop:
                return

    def _run(self, jobs: list[_Job]) -> None:
        """One forward pass per group of jobs whose inputs have the same shape and dtype; each job gets its rows."""
        groups: dict[tuple, list[_Job]] = {}
        for job in jobs:
            groups.setdefault((job.stored.shape[1:], job.stored.dtype.str), []).append(job)
        for group in groups.values():
            try:
                stored = group[0].stored if len(group) == 1 else numpy.concatenate([job.stored for job in group])
                results = self.predict(stored, [name for job in group for name in job.names])
                self.batches += 1
            except Exception as error:  # noqa: BLE001 (handed to each waiting request, which answers for it)
                for job in group:
                    job.future.set_exception(error)
                continue
            start = 0
            for job in group:
                job.future.set_result(results[start : start + len(job.stored)])
                start += len(job.stored)
