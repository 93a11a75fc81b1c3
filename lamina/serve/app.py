"""The HTTP prediction service: FastAPI endpoints in front of a `Predictor` (lamina/serve/backends.py).

The app answers /health at once and loads the model (PyTorch, seconds) in a background thread; until then
/health and /predict answer 503 {"status": "loading"}. Every client mistake is a 4xx with a JSON body
{"error": what was wrong, "hint": what is allowed}; anything else is a 500 with a generic message, logged, and the
server keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from lamina.core.errors import LaminaError
from lamina.serve.batching import Batcher
from lamina.serve.requests import ServeError, Upload, json_files, upload_files

__all__ = ["ServeOptions", "create_app"]

log = logging.getLogger("lamina.serve")


@dataclass(frozen=True)
class ServeOptions:
    """How the service batches and what it accepts."""

    backend: str = "torch"  # torch: a run folder through PyTorch; onnx: an exported bundle through onnxruntime
    max_batch: int = 32  # inputs per forward pass (1: no micro-batching)
    max_wait_ms: float = 2.0  # how long the first queued request waits for others to join its batch
    max_request_bytes: int = 10 * 1024 * 1024  # larger bodies get 413
    max_instances: int = 256  # inputs per request; more get 413


REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["instances"],
                "properties": {
                    "instances": {
                        "type": "array",
                        "description": "table rows (lists in the order of /metadata's columns, or objects by column "
                        "name), texts (strings), images or WAV files (base64 strings), arrays (nested lists)",
                        "items": {},
                    }
                },
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            }
        },
    },
}
ERROR = {"content": {"application/json": {"example": {"error": "what was wrong", "hint": "what is allowed"}}}}
ERROR_ANSWERS = {
    413: {"description": "body or inputs over the limits", **ERROR},
    415: {"description": "neither JSON nor multipart, or a file of another kind than the run's", **ERROR},
    422: {"description": "inputs that cannot be read as the run's", **ERROR},
    503: {"description": "the model is still loading", **ERROR},
}


class Service:
    """The loaded predictor (or why it is not loaded yet) and its batcher."""

    def __init__(self, source: Path, options: ServeOptions, loader: Callable[[], Any] | None):
        self.source, self.options = source, options
        self.loader = loader or (lambda: _load(source, options.backend))
        self.status, self.error, self.predictor, self.batcher = "loading", None, None, None

    def start(self) -> None:
        threading.Thread(target=self._load, name="lamina-serve-load", daemon=True).start()

    def _load(self) -> None:
        try:
            predictor = self.loader()
            self.batcher = Batcher(predictor.predict_stored, self.options.max_batch, self.options.max_wait_ms / 1000)
            self.predictor, self.status = predictor, "ok"
            log.info("loaded %s (%s backend)", self.source, self.options.backend)
        except Exception as error:  # noqa: BLE001 (reported by /health; the server stays up to say so)
            self.error, self.status = str(error), "failed"
            log.error("cannot serve %s: %s", self.source, error)

    def ready(self) -> Any:
        if self.status == "failed":
            raise ServeError(503, f"the model failed to load: {self.error}", "fix the run folder and restart")
        if self.predictor is None:
            raise ServeError(503, "the model is still loading", "retry in a moment; GET /health says when it is ok")
        return self.predictor

    def read(self, kind: str, body: bytes | list[Upload]) -> tuple[Any, list[str]]:
        """The request's inputs in stored form, read from files in a private temporary folder."""
        predictor, folder = self.ready(), Path(tempfile.mkdtemp(prefix="lamina-serve-"))
        record, files = predictor.metadata["input"], {}
        try:
            if kind == "json":
                files = json_files(body, record["kind"], record.get("columns"), folder, self.options.max_instances)
            else:
                files = upload_files(body, record["kind"], folder, self.options.max_instances)
            stored, names = predictor.read(list(files))
        except LaminaError as error:  # said with the names the client sent, not the temporary files'
            raise ServeError(422, _named(error.message, files, folder), error.hint) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        names = [_named(name, files, folder) for name in names]
        if len(stored) == 0:
            raise ServeError(422, "the request holds no inputs (empty files or texts)", "send at least one input")
        if len(stored) > self.options.max_instances:
            raise ServeError(
                413,
                f"{len(stored)} inputs in one request, more than the limit of {self.options.max_instances}",
                "split them over several requests",
            )
        return stored, names


def _named(text: str, files: dict[Path, str], folder: Path) -> str:
    """`text` with each temporary file's path replaced by the name the client sent it as."""
    for path, name in files.items():
        text = text.replace(str(path), name)
    return text.replace(f"{folder}/", "")


def _load(source: Path, backend: str) -> Any:
    from lamina.serve.backends import load_predictor  # PyTorch: after the server answers /health

    return load_predictor(source, backend)


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes gets 413 (by its Content-Length, or while it streams in)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            if int(length) <= 8 * self.limit:  # read it, so the client hears the answer instead of a reset
                while (await receive()).get("more_body"):
                    pass
            return await _error(413, *self._message(int(length)))(scope, receive, send)
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise ServeError(413, *self._message(received))
            return message

        await self.app(scope, limited, send)

    def _message(self, size: int) -> tuple[str, str]:
        return (
            f"the request body has {size:,} bytes, more than the limit of {self.limit:,}",
            "send fewer or smaller inputs per request (the server's --max-request-bytes)",
        )


def _error(code: int, message: str, hint: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint, **extra}, status_code=code)


def create_app(source: str | Path, options: ServeOptions | None = None, loader: Callable | None = None) -> FastAPI:
    """The service for a run folder (or a bundle, with backend onnx); `loader` replaces how the predictor loads.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app("no-such-run", loader=lambda: (_ for _ in ()).throw(ValueError("no run")))
        >>> with TestClient(app) as client:
        ...     client.get("/health").json()["status"] in ("loading", "failed")
        True
    """
    options = options or ServeOptions()
    service = Service(Path(source), options, loader)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        if service.batcher is not None:  # uvicorn has finished the in-flight requests
            await asyncio.to_thread(service.batcher.close)

    app = FastAPI(
        title="lamina serve",
        version="1",
        lifespan=lifespan,
        description=f"Predictions of {Path(source).name}, as 'lamina predict' gives them.",
    )
    app.state.service = service
    app.add_middleware(BodyLimit, limit=options.max_request_bytes)

    @app.exception_handler(ServeError)
    async def client_error(request: Request, error: ServeError) -> JSONResponse:
        extra = {"status": service.status} if error.status == 503 else {}  # loading, or failed
        response = _error(error.status, error.message, error.hint, **extra)
        if error.status == 503:
            response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(LaminaError)
    async def input_error(request: Request, error: LaminaError) -> JSONResponse:
        return _error(422, error.message, error.hint)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error answering %s %s", request.method, request.url.path)
        return _error(500, "internal error while predicting; the server logged it", "report it with the server log")

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 {"status": "ok"} once the model is loaded; 503 {"status": "loading"} before, or "failed"."""
        if service.status == "ok":
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": service.status, "error": service.error}, status_code=503)

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        """What the model takes and gives: kind of input, classes, metrics, backend, lamina version, limits."""
        predictor = service.ready()
        return {**predictor.metadata, "options": asdict(options), "forward_passes": service.batcher.batches}

    @app.post("/predict", openapi_extra={"requestBody": REQUEST_BODY}, responses=ERROR_ANSWERS)
    async def predict(request: Request) -> dict[str, Any]:
        """JSON {"instances": [...]} or multipart files → {"predictions": [one result per input]}."""
        service.ready()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            kind, body = "json", await request.body()
        elif content_type == "multipart/form-data":
            form = await request.form(max_files=options.max_instances + 1, max_fields=options.max_instances + 1)
            kind, body = "files", []
            for _, value in form.multi_items():
                if isinstance(value, UploadFile):
                    body.append(Upload(value.filename or "", value.content_type, await value.read()))
            await form.close()
        else:
            raise ServeError(
                415,
                f"content type {content_type or 'none'!r} is not accepted",
                'send application/json {"instances": [...]} or multipart/form-data files',
            )
        stored, names = await run_in_threadpool(service.read, kind, body)
        results = await asyncio.wrap_future(service.batcher.submit(stored, names))
        return {"predictions": results}

    return app
