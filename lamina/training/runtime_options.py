"""The runtime section of a config: where and how fast a run trains, what it may cost (budgets), and how its energy
is measured or estimated. Importing it does not import PyTorch."""

from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from lamina.core.options import Options

__all__ = ["RuntimeOptions", "BudgetOptions", "EnergyOptions"]


class BudgetOptions(Options):
    """Limits on what training may cost, over all sessions of a run (any of them; the first reached ends it)."""

    minutes: float | None = Field(None, gt=0)
    """Training wall time, in minutes."""
    kwh: float | None = Field(None, gt=0)
    """Energy, in kilowatt-hours (measured, or estimated as summary.json's energy record says)."""
    flops: float | None = Field(None, gt=0)
    """Training FLOPs (forward and backward passes, as counted per sample before training), e.g. 1e12."""


class EnergyOptions(Options):
    """How a run's energy is measured or estimated, and how it becomes CO2e (docs/insight.md)."""

    meter: Literal["auto", "rapl", "nvml", "estimate"] = "auto"
    """auto: NVML on a CUDA GPU, else RAPL (Linux CPU counters), else the estimate; rapl or nvml: that meter or the
    estimate with the reason; estimate: always estimate."""
    watts_per_core: float = Field(3.5, gt=0)
    """The estimate's CPU power per busy core (your CPU's TDP / its cores); default 3.5: AMD EPYC 7742, 225 W / 64."""
    grid_intensity: float = Field(481.0, ge=0)
    """Grams of CO2e per kWh of electricity; default 481: world average of 2023 (Ember). Use your grid's figure."""


class RuntimeOptions(Options):
    """Where and how fast: device, CPU threads, compilation; budgets and energy accounting."""

    device: str = "auto"
    """'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    threads: int | None = Field(None, ge=1, le=1024)
    """CPU threads for PyTorch, at most 1024 (threads beyond the cores only slow a run; 100,000 crash PyTorch);
    default: every core this process may use (see docs/performance.md)."""
    compile: bool = False
    """Compile the model with torch.compile (slow first step, faster after; needs a C compiler on CPU)."""
    deterministic: bool = False
    """Deterministic kernels, so a resumed or repeated run on a GPU matches bitwise (slower there; CPU runs are
    bitwise repeatable either way)."""
    keep_freed_memory: bool = True
    """On CPU, let the C library (glibc) reuse freed memory instead of unmapping every large tensor after each
    step: up to a fifth faster conv-net steps, at the cost of holding more memory (docs/performance.md)."""
    budget: BudgetOptions | None = None
    """End training cleanly (checkpoint, status 'budget', resumable) when it reaches any of these: {minutes, kwh,
    flops}. Raise it on resume: lamina train --resume RUN --set runtime.budget.minutes=10."""
    energy: EnergyOptions = EnergyOptions()
    """Energy meter, the estimate's watts per core, and the grid's carbon intensity."""

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        kind = value.split(":")[0]
        if kind not in ("auto", "cpu", "cuda", "mps") or (":" in value and not value.split(":")[1].isdigit()):
            raise PydanticCustomError(
                "unknown_device",
                "unknown device {value}; use auto, cpu, cuda, cuda:N or mps",
                {"value": repr(value)},
            )
        return value
