"""What a run cost, wired into the pipeline: the accounting callback (FLOPs, CPU time, energy, budget), the
"compute", "energy" and "budget" records of summary.json, and raising a budget when resuming
(docs/insight.md, "Compute and energy")."""

from __future__ import annotations

from typing import Any

import torch
import yaml

from lamina.artifacts.compute import compute_record, energy_record, peak_flops
from lamina.artifacts.folder import RunFolder, atomic_write
from lamina.config.loading import load_config, parse_overrides
from lamina.config.schema import Config
from lamina.core.errors import ConfigError, Problem, RunError
from lamina.training.accounting import Accounting, budget_reached
from lamina.training.energy import energy_meter
from lamina.training.loop import Loop, TrainState
from lamina.training.runtime_options import EnergyOptions

__all__ = ["accounting_for", "accounting_of", "cost_summary", "resumed_config", "BUDGET_KEY"]

BUDGET_KEY = "runtime.budget"  # the only settings a resumed run may change


def accounting_for(session) -> Accounting:
    """The run's accounting callback, with the energy meter its runtime asks for."""
    runtime = session.config.runtime
    energy = runtime.energy
    gpus = [session.device.index or 0] if session.device.type == "cuda" else []
    default_watts = energy.watts_per_core == EnergyOptions.model_fields["watts_per_core"].default
    meter = energy_meter(energy.meter, energy.watts_per_core, default_watts, gpus)
    return Accounting(session.training_sample_flops, meter, runtime.budget)


def accounting_of(loop: Loop) -> Accounting | None:
    return next((callback for callback in loop.callbacks if isinstance(callback, Accounting)), None)


def cost_summary(session, loop: Loop) -> dict[str, Any]:
    """summary.json's "compute", "energy" and "budget" (when the run has one) for the state training is in."""
    accounting = accounting_of(loop)
    if accounting is None:
        return {}
    accounting.finish(loop)
    state, runtime = loop.state, session.config.runtime
    energy = runtime.energy
    default_grid = energy.grid_intensity == EnergyOptions.model_fields["grid_intensity"].default
    record = {
        "compute": compute_record(
            state,
            session.sample_flops,
            session.training_sample_flops,
            session.config.train.batch_size,
            session.device,
            peak_flops(session.device, torch.get_num_threads()),
        ),
        "energy": energy_record(accounting.meter, state.energy_joules, energy.grid_intensity, default_grid),
    }
    if runtime.budget is not None:
        record["budget"] = budget_record(runtime.budget, state, accounting.reached)
    return record


def budget_record(budget, state: TrainState, reached: str | None) -> dict[str, Any]:
    """The limits set, which one was reached (None: none), and what was spent of each."""
    limits = {name: value for name, value in budget.model_dump().items() if value is not None}
    spent = {"minutes": round(state.wall_seconds / 60, 4), "kwh": state.energy_joules / 3.6e6, "flops": state.flops}
    return {**limits, "reached": reached, "spent": spent}


def resumed_config(folder: RunFolder, overrides: dict[str, Any] | list[str] | None, state: dict | None) -> Config:
    """The run's config, with `overrides` applied — runtime.budget.* only — and written to its config.yaml. A
    budget that training (its checkpoint's `state`) has already reached is refused before anything is written."""
    values = (parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)) if overrides else {}
    refused = [key for key in values if key != BUDGET_KEY and not key.startswith(f"{BUDGET_KEY}.")]
    if refused:
        raise ConfigError(
            [
                Problem(
                    key,
                    "cannot change when resuming (the run keeps its config, so it ends with the weights of an "
                    "uninterrupted run)",
                    "only runtime.budget.* may change, e.g. --set runtime.budget.minutes=10",
                )
                for key in refused
            ]
        )
    config = load_config(folder.config, values)
    reached = state and budget_reached(
        config.runtime.budget, state["wall_seconds"], state.get("energy_joules", 0.0), state.get("flops", 0.0)
    )
    if reached:
        spent = {
            "minutes": f"{state['wall_seconds'] / 60:.2f} minutes",
            "kwh": f"{state.get('energy_joules', 0.0) / 3.6e6:.3g} kWh",
            "flops": f"{state.get('flops', 0.0):.4g} FLOPs",
        }[reached]
        limit = getattr(config.runtime.budget, reached)
        raise RunError(
            f"run {folder.path} has spent {spent}, which reaches runtime.budget.{reached}={limit:g}",
            f"raise it: lamina train --resume {folder.path} --set runtime.budget.{reached}=<more>",
        )
    if values:
        atomic_write(folder.config, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return config
