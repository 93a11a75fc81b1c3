"""`lamina serve RUN|BUNDLE`: the HTTP prediction service (lamina/serve/), run with uvicorn. The server starts
before the model loads, so /health answers within a second; FastAPI and uvicorn are the `serve` extra."""

from __future__ import annotations

import signal
from argparse import Namespace
from pathlib import Path


def serve(arguments: Namespace) -> int | None:
    from lamina.core.errors import RunError, resolved
    from lamina.core.packages import install_command

    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401 (python-multipart: file uploads)
        import uvicorn
    except ImportError as error:
        raise RunError(
            f"'lamina serve' needs FastAPI, uvicorn and python-multipart (the 'serve' extra): {error}",
            f"install them: {install_command('fastapi')} uvicorn python-multipart",
        ) from None
    from lamina.serve.app import ServeOptions, create_app

    source = Path(arguments.source)
    if not source.is_dir():
        raise RunError(
            f"{arguments.source} is not a folder{resolved(source)}",
            "pass a run folder (lamina runs lists them) or an exported bundle",
        )
    if not ((source / "summary.json").is_file() or (source / "bundle.json").is_file()):
        raise RunError(
            f"{source} is neither a run folder nor an exported bundle",
            "pass a folder written by 'lamina train' (summary.json) or 'lamina export' (bundle.json)",
        )
    backend = arguments.backend or ("onnx" if (source / "bundle.json").is_file() else "torch")
    options = ServeOptions(
        backend, arguments.max_batch, arguments.max_wait_ms, arguments.max_request_bytes, arguments.max_instances
    )
    for name in ("max_batch", "max_instances", "max_request_bytes"):
        if getattr(options, name) < 1:
            raise RunError(f"--{name.replace('_', '-')} is {getattr(options, name)}", "pass a number of at least 1")
    app = create_app(source, options)
    print(
        f"serving {source} at http://{arguments.host}:{arguments.port} ({backend} backend; API at /docs); "
        "the model loads in the background: GET /health says when it is ok",
        flush=True,
    )
    # uvicorn finishes the in-flight requests on SIGTERM, then raises the signal again for the handler that was there
    # before it: a quiet one, so a stopped server exits 0 (a service manager's SIGTERM is a normal stop)
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level="warning", timeout_graceful_shutdown=30)
