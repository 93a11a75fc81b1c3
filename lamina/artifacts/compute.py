"""A run's compute and energy records for summary.json, and this machine's measured matmul peak (measured once
per CPU or GPU model, thread count and PyTorch version, and kept in lamina's cache folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lamina.artifacts.folder import atomic_write
from lamina.core.machine import cpu_model
from lamina.data.cache import cache_folder
from lamina.training.accounting import measure_peak_flops
from lamina.training.energy import GRID_SOURCE, EnergyMeter
from lamina.training.loop import TrainState

__all__ = ["peak_flops", "compute_record", "energy_record", "device_name", "PEAK_FILE"]

PEAK_FILE = "peak_flops.json"


def device_name(device: torch.device) -> str:
    """The processor's model: the GPU's name, or the CPU's from /proc/cpuinfo (Linux) or platform."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def peak_flops(device: torch.device, threads: int, folder: Path | None = None) -> float:
    """fp32 matmul FLOP/s of this machine at `threads` threads: read from the cache, or measured (≈1 s) and
    cached. The key names the processor, threads, PyTorch version and device kind."""
    path = (folder or cache_folder(None)) / PEAK_FILE
    key = f"{device_name(device)} | {threads} threads | torch {torch.__version__} | {device.type}"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    if isinstance(cached.get(key), int | float):
        return float(cached[key])
    value = measure_peak_flops(device)
    cached[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(cached, indent=1))
    except OSError:  # a read-only home: measured again next time
        pass
    return value


def compute_record(
    state: TrainState,
    forward_flops: int,
    training_flops: int,
    batch_size: int,
    device: torch.device,
    peak: float | None,
) -> dict[str, Any]:
    """summary.json's "compute": FLOPs per sample, per step and in total; achieved FLOP/s (training FLOPs / training
    wall time, validation included) and its share of the measured peak; wall and CPU seconds."""
    achieved = state.flops / state.wall_seconds if state.wall_seconds > 0 else None
    return {
        "flops_per_sample": forward_flops,
        "training_flops_per_sample": training_flops,
        "flops_per_step": training_flops * batch_size,
        "training_flops": state.flops,
        "achieved_flops_per_second": round(achieved) if achieved else None,
        "peak_flops_per_second": round(peak) if peak else None,
        "peak_share": round(achieved / peak, 4) if achieved and peak else None,
        "wall_seconds": round(state.wall_seconds, 3),
        "cpu_seconds": round(state.cpu_seconds, 3),
        "threads": torch.get_num_threads(),
        "device": str(device),
    }


def energy_record(meter: EnergyMeter, joules: float, grid_intensity: float, default_grid: bool) -> dict[str, Any]:
    """summary.json's "energy": joules (over all sessions), kWh, CO2e = kWh × grid intensity, with the label
    ("measured" or "estimated"), the method and the assumptions."""
    kwh = joules / 3.6e6
    source = GRID_SOURCE if default_grid else "runtime.energy.grid_intensity, as configured"
    return {
        "label": meter.label,
        "method": meter.method,
        "assumptions": [*meter.assumptions, f"grid intensity {grid_intensity:g} g CO2e/kWh: {source}"],
        "joules": round(joules, 3),
        "kwh": kwh,
        "co2e_grams": round(kwh * grid_intensity, 6),
        "grid_intensity_g_per_kwh": grid_intensity,
        "grid_source": source,
    }
