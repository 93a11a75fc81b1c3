"""`lamina serve`: an HTTP prediction service for a run folder (PyTorch) or an exported bundle (onnxruntime).

`create_app(path, ServeOptions(...))` gives the FastAPI app (lamina/serve/app.py); `lamina serve` runs it with
uvicorn. Requests are read as `lamina predict` reads files (lamina/serve/requests.py), and predicted by a
`Predictor` (lamina/serve/backends.py), through a micro-batching worker (lamina/serve/batching.py).
"""

from lamina.serve.app import ServeOptions, create_app

__all__ = ["ServeOptions", "create_app"]
