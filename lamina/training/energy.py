"""Energy meters: what training drew, measured where the machine tells (RAPL on CPUs, NVML on NVIDIA GPUs) and
estimated otherwise, with the estimate's assumptions said.

- RAPL (Linux powercap): /sys/class/powercap/intel-rapl:N/energy_uj, one counter per CPU package (AMD exposes
  the same files on recent kernels). The counter wraps at max_energy_range_uj. Only the package domains are read
  (intel-rapl:N), not their sub-domains (intel-rapl:N:M: cores, uncore, DRAM), which the package already
  includes. Often readable by root only.
- NVML: nvmlDeviceGetTotalEnergyConsumption (millijoules since the driver loaded) through `pynvml` (the
  nvidia-ml-py package, optional), for each GPU the run uses.
- Otherwise an estimate: watts per core × CPU-seconds (a core busy for one second draws `watts_per_core` joules).

The parsing and arithmetic are plain functions, tested on recorded readings; a meter reads `joules()` since it
was started.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EnergyMeter",
    "RaplMeter",
    "NvmlMeter",
    "EstimateMeter",
    "energy_meter",
    "counter_increase",
    "rapl_packages",
    "estimated_joules",
    "POWERCAP",
    "GRID_SOURCE",
    "WATTS_SOURCE",
]

POWERCAP = Path("/sys/class/powercap")
GRID_SOURCE = (
    "Ember (Global Electricity Review 2024, via Statista): world average carbon intensity of electricity "
    "generation in 2023, 481 g CO2e/kWh"
)
WATTS_SOURCE = (
    "3.5 W per core: the thermal design power of an AMD EPYC 7742 (Zen 2, the family of lamina's test machines) "
    "divided by its cores, 225 W / 64"
)


def counter_increase(readings: list[int], maximum: int) -> int:
    """How much a counter that wraps to 0 after `maximum` rose over `readings` (read often enough that it never
    wraps twice between two readings).

    Example:
        >>> counter_increase([90, 99, 5, 40], maximum=100)  # 9, then 99 → 100 → 5 (6), then 35
        50
    """
    total = 0
    for before, after in zip(readings, readings[1:], strict=False):
        total += after - before if after >= before else maximum - before + after  # as Zeus and CodeCarbon
    return total


def rapl_packages(root: Path = POWERCAP) -> list[Path]:
    """The package domains under a powercap tree (intel-rapl:0, intel-rapl:1, …), not their sub-domains
    (intel-rapl:0:0, …, which the package's counter already includes)."""
    if not root.is_dir():
        return []
    return sorted(path for path in root.glob("intel-rapl:*") if path.name.count(":") == 1)


def estimated_joules(cpu_seconds: float, watts_per_core: float) -> float:
    """The estimate: one core busy for one second draws `watts_per_core` joules.

    Example:
        >>> estimated_joules(cpu_seconds=120.0, watts_per_core=3.5)
        420.0
    """
    return cpu_seconds * watts_per_core


@dataclass
class EnergyMeter:
    """Joules since `start()`; `label` ("measured" or "estimated"), `method` and the `assumptions` behind it."""

    label: str = "estimated"
    method: str = "cpu_estimate"
    assumptions: list[str] = field(default_factory=list)

    def start(self) -> None: ...

    def joules(self) -> float:
        raise NotImplementedError


class RaplMeter(EnergyMeter):
    """Every CPU package's RAPL counter; reads each at most once per `every_seconds` (the counters wrap after
    minutes at full power, so a reading a second is plenty), accumulating across wraps."""

    def __init__(self, packages: list[Path], every_seconds: float = 1.0):
        super().__init__(
            "measured",
            "rapl",
            [
                f"RAPL package counters of {len(packages)} CPU package(s): the whole CPU, including other processes "
                "running on it, and no memory, disk or cooling (PUE 1)"
            ],
        )
        self.packages, self.every_seconds = packages, every_seconds
        self.maxima = [int((path / "max_energy_range_uj").read_text()) for path in packages]
        self.last: list[int] = []
        self.microjoules = 0
        self.read_at = 0.0

    def start(self) -> None:
        self.last = self._read()
        self.microjoules, self.read_at = 0, time.perf_counter()

    def _read(self) -> list[int]:
        return [int((path / "energy_uj").read_text()) for path in self.packages]

    def joules(self, force: bool = False) -> float:
        now = time.perf_counter()
        if force or now - self.read_at >= self.every_seconds:
            readings = self._read()
            for index, (before, after) in enumerate(zip(self.last, readings, strict=True)):
                self.microjoules += counter_increase([before, after], self.maxima[index])
            self.last, self.read_at = readings, now
        return self.microjoules / 1e6


class NvmlMeter(EnergyMeter):
    """NVML's total energy counter (millijoules) of each GPU the run uses, read at most once per second."""

    def __init__(self, nvml: Any, indices: list[int], every_seconds: float = 1.0):
        super().__init__(
            "measured",
            "nvml",
            [
                f"NVML energy counters of GPU {', '.join(map(str, indices))}: the GPU board only, not the CPU, "
                "memory, disk or cooling (PUE 1)"
            ],
        )
        self.nvml, self.every_seconds = nvml, every_seconds
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(index) for index in indices]
        self.first: list[int] = []
        self.value, self.read_at = 0.0, 0.0

    def start(self) -> None:
        self.first = self._read()
        self.value, self.read_at = 0.0, time.perf_counter()

    def _read(self) -> list[int]:
        return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle)) for handle in self.handles]

    def joules(self, force: bool = False) -> float:
        now = time.perf_counter()
        if force or now - self.read_at >= self.every_seconds:
            readings = self._read()
            self.value = sum(after - before for before, after in zip(self.first, readings, strict=True)) / 1e3
            self.read_at = now
        return self.value


class EstimateMeter(EnergyMeter):
    """watts_per_core × the CPU-seconds of this process since `start()` (all its threads)."""

    def __init__(self, watts_per_core: float, default_watts: bool, why_not_measured: str):
        source = WATTS_SOURCE if default_watts else f"{watts_per_core:g} W per core (runtime.energy.watts_per_core)"
        super().__init__(
            "estimated",
            "cpu_estimate",
            [
                f"not measured: {why_not_measured}",
                f"CPU power = {source}, times the CPU-seconds of this process (user + system, all threads): "
                "a core's full-load share of the chip's TDP for each second it was busy",
                "memory, disk, GPU, idle power and cooling (PUE 1) are not counted",
            ],
        )
        self.watts_per_core = watts_per_core
        self.cpu_started = 0.0

    def start(self) -> None:
        self.cpu_started = time.process_time()

    def joules(self, force: bool = False) -> float:
        return estimated_joules(time.process_time() - self.cpu_started, self.watts_per_core)


def energy_meter(
    method: str, watts_per_core: float, default_watts: bool, gpus: list[int], root: Path = POWERCAP
) -> EnergyMeter:
    """The meter `method` asks for ('auto': NVML for a GPU run, else RAPL, else the estimate; 'rapl', 'nvml': that
    one or the estimate, with the reason it could not measure in its assumptions; 'estimate')."""
    meter = _chosen_meter(method, watts_per_core, default_watts, gpus, root)
    if gpus and meter.method != "nvml":
        meter.assumptions.append(f"the energy of GPU {', '.join(map(str, gpus))} is not counted")
    return meter


def _chosen_meter(method: str, watts_per_core: float, default_watts: bool, gpus: list[int], root: Path) -> EnergyMeter:
    reasons = []
    if method in ("auto", "nvml"):
        if gpus:
            nvml, reason = _nvml()
            if nvml is not None:
                return NvmlMeter(nvml, gpus)
            reasons.append(reason)
        elif method == "nvml":
            reasons.append("runtime.energy.meter is nvml, but the run uses no CUDA GPU")
    if method in ("auto", "rapl"):
        packages = rapl_packages(root)
        unreadable = [path for path in packages if not os.access(path / "energy_uj", os.R_OK)]
        if packages and not unreadable:
            try:
                meter = RaplMeter(packages)
                meter.start()
                return meter
            except (OSError, ValueError) as error:
                reasons.append(f"RAPL counters could not be read ({error})")
        elif unreadable:
            reasons.append(f"{unreadable[0] / 'energy_uj'} is readable by root only")
        else:
            reasons.append(f"no RAPL counters ({root} has no intel-rapl package)")
    if method == "estimate":
        reasons.append("runtime.energy.meter is estimate")
    return EstimateMeter(watts_per_core, default_watts, "; ".join(reasons))


def _nvml() -> tuple[Any, str]:
    try:
        import pynvml  # optional (nvidia-ml-py)
    except ImportError:
        return None, "pynvml is not installed (pip install nvidia-ml-py) to read the GPU's energy counter"
    try:
        pynvml.nvmlInit()
    except Exception as error:  # NVMLError and its many kinds
        return None, f"NVML could not start ({error})"
    return pynvml, ""
