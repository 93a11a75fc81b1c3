"""Checkpoints: safetensors for tensors, JSON for everything else. Never pickle, so loading runs no code.

A checkpoint is a folder:
    model.safetensors   the model's weights and buffers (loadable by any safetensors reader)
    state.safetensors   optimizer moments and random-number-generator states
    state.json          training position, schedule step, callback state, and the rest of the optimizer state

It is written into a temporary folder and swapped into place by renames, so a crash (even kill -9) leaves
either the previous checkpoint or the new one, never a half-written mix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lamina.artifacts.folder import new_file_mode
from lamina.core.errors import RunError

__all__ = [
    "save_checkpoint",
    "read_checkpoint",
    "save_weights",
    "load_weights",
    "flatten_tensors",
    "unflatten_tensors",
    "rng_state",
    "set_rng_state",
    "checkpoint_path",
]

FORMAT = 1


def flatten_tensors(value: Any, prefix: str = "") -> tuple[Any, dict[str, Tensor]]:
    """Split a nested structure (a state_dict) into JSON-able data and a flat {key: tensor} dict."""
    tensors: dict[str, Tensor] = {}

    def walk(item: Any, key: str) -> Any:
        if isinstance(item, Tensor):
            tensors[key] = item.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(item, dict):
            if all(isinstance(k, str) for k in item):
                return {k: walk(v, f"{key}.{k}") for k, v in item.items()}
            return {
                "__dict__": [[walk(k, f"{key}.k{i}"), walk(v, f"{key}.{i}")] for i, (k, v) in enumerate(item.items())]
            }
        if isinstance(item, tuple):
            return {"__tuple__": [walk(v, f"{key}.{i}") for i, v in enumerate(item)]}
        if isinstance(item, list):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(item)]
        if isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            return {"__float__": repr(item)}
        return item

    return walk(value, prefix), tensors


def unflatten_tensors(value: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of `flatten_tensors`."""
    if isinstance(value, list):
        return [unflatten_tensors(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__tuple__" in value:
        return tuple(unflatten_tensors(v, tensors) for v in value["__tuple__"])
    if "__dict__" in value:
        return {unflatten_tensors(k, tensors): unflatten_tensors(v, tensors) for k, v in value["__dict__"]}
    if "__float__" in value:
        return float(value["__float__"])
    return {k: unflatten_tensors(v, tensors) for k, v in value.items()}


def rng_state() -> dict[str, Any]:
    """Every random stream a training step draws from (dropout, noise): CPU, and each CUDA device."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def write_tensors(tensors: dict[str, Tensor], path: Path) -> None:
    """safetensors' save_file, with its I/O failures raised as the OSError they are (a full disk, a size limit),
    naming the file, and the permissions of any other file of the run (safetensors writes 0600)."""
    try:
        save_file(tensors, str(path))
        os.chmod(path, new_file_mode())
    except SafetensorError as error:
        code = re.search(r"os error (\d+)", str(error))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from None


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # a torch.compile'd module wraps the original


def save_checkpoint(directory: Path, model: nn.Module, state: dict[str, Any]) -> None:
    """Atomically write `model`'s weights and `state` (nested dicts with tensors inside) to `directory`."""
    directory = Path(directory)
    partial = directory.with_name(directory.name + ".partial")
    previous = directory.with_name(directory.name + ".previous")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_weights(model, partial / "model.safetensors")
    document, tensors = flatten_tensors(state)
    write_tensors(tensors, partial / "state.safetensors")
    (partial / "state.json").write_text(json.dumps({"format": FORMAT, **document}, indent=1))
    for path in partial.iterdir():
        _fsync(path)
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        os.replace(directory, previous)
    os.replace(partial, directory)
    shutil.rmtree(previous, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def checkpoint_path(directory: Path) -> Path | None:
    """The checkpoint folder to read: `directory`, or its `.previous` copy if a crash interrupted a swap."""
    directory = Path(directory)
    for candidate in (directory, directory.with_name(directory.name + ".previous")):
        if (candidate / "state.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    return None


def read_checkpoint(directory: Path) -> dict[str, Any]:
    """The state saved by `save_checkpoint` (tensors restored), plus 'path' of the folder it came from."""
    found = checkpoint_path(directory)
    if found is None:
        raise RunError(f"no checkpoint in {directory}", "the run stopped before its first checkpoint; start it again")
    damaged = "the checkpoint is damaged or incomplete; copy the run folder again, or start the run again"
    try:
        document = json.loads((found / "state.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"cannot read {found / 'state.json'}: {str(error).splitlines()[0]}", damaged) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found_format = document.get("format") if isinstance(document, dict) else None
        raise RunError(
            f"checkpoint {found} has format {found_format}, expected {FORMAT}",
            "it was written by another lamina version",
        )
    try:
        tensors = load_file(str(found / "state.safetensors"))
    except (SafetensorError, OSError) as error:
        raise RunError(f"cannot read {found / 'state.safetensors'}: {str(error).splitlines()[0]}", damaged) from None
    try:
        state = unflatten_tensors(document, tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(
            f"cannot read {found}: state.json names a tensor {error} that state.safetensors lacks", damaged
        ) from None
    state["path"] = found
    return state


def _alias_groups(state: dict[str, Tensor]) -> list[list[str]]:
    """Names in a state_dict that are one tensor (tied weights): same memory, offset, shape and strides."""
    groups: dict[tuple, list[str]] = {}
    for name, tensor in state.items():
        if tensor.numel() == 0:
            groups[(name,)] = [name]
            continue
        key = (
            tensor.device,
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.stride(),
            tensor.dtype,
        )
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def save_weights(model: nn.Module, path: Path) -> None:
    """Write `model`'s state_dict as safetensors. A tied weight is stored once, under the first of its names in
    sorted order (as safetensors' save_model does, so files stay interchangeable). Tensors that are views into
    one larger buffer, such as an LSTM's weights on CUDA (cuDNN packs them into one flat buffer), are copied
    out first: safetensors refuses to write tensors that share memory."""
    state = _unwrap(model).state_dict()
    groups = _alias_groups(state)

    def storage(tensor: Tensor) -> tuple:
        return tensor.device, tensor.untyped_storage().data_ptr()

    storages = Counter(storage(state[names[0]]) for names in groups if state[names[0]].numel())
    tensors = {}
    for names in groups:
        tensor = state[names[0]].detach()
        shared = tensor.numel() and storages[storage(tensor)] > 1
        tensors[sorted(names)[0]] = tensor.clone() if shared else tensor.contiguous()
    write_tensors(tensors, path)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load safetensors weights into `model` (strict, tied weights stored under any one of their names);
    RunError if they do not fit."""
    module = _unwrap(model)
    try:
        stored = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise RunError(
            f"cannot read the weights in {path}: {str(error).splitlines()[0]}",
            "the file is damaged or incomplete; copy the run folder again, or retrain",
        ) from None
    state = module.state_dict()
    loadable, missing = {}, []
    for names in _alias_groups(state):
        found = [name for name in names if name in stored]
        if found:
            loadable.update({name: stored[found[0]] for name in names})
        else:
            missing.extend(names)
    unexpected = sorted(set(stored) - set(state))
    try:
        if missing or unexpected:
            raise RuntimeError(f"missing {', '.join(missing) or 'none'}; unexpected {', '.join(unexpected) or 'none'}")
        module.load_state_dict(loadable, strict=True)
    except (RuntimeError, KeyError) as error:
        raise RunError(
            f"weights in {path} do not fit the model: {str(error).splitlines()[0]}",
            "the run's config.yaml must match the weights; was it edited?",
        ) from None
    return model
