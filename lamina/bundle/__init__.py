"""Bundles without PyTorch: a run exported as an ONNX model and its bundle.json (`lamina export`), read and run
with ONNX Runtime and numpy. Nothing here imports PyTorch or a lamina module that does, so `lamina predict BUNDLE`
runs where only the runtime's packages are installed (`pip install 'lamina[runtime]'`).
"""

from __future__ import annotations

from lamina.bundle.loading import Bundle, is_bundle, load_bundle

__all__ = ["Bundle", "load_bundle", "is_bundle"]
