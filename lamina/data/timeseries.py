"""Time series: a CSV of observations in time order → sliding windows → multi-step forecasts.

The series is cut into contiguous train, val and test stretches (in that order, so the model never trains on
the future) before any window is made; inputs are standardized with train statistics. Each sample is
`lookback` steps of the input columns and the next `horizon` values of the target (in its own units). The
naive last-value forecast's MAE and RMSE on each split are computed beside the model's (`naive_mae`,
`naive_rmse` in the run's metrics): a model worth having beats them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lamina.core.errors import DataError
from lamina.data.bundle import DataBundle, Split
from lamina.data.columns import read_number
from lamina.data.options import TimeSeriesOptions
from lamina.data.paths import data_path
from lamina.data.spec import DataSpec
from lamina.data.tabular import check_column, read_table_lines

__all__ = ["sliding_windows", "naive_errors", "timeseries"]


def sliding_windows(
    inputs: Tensor, target: Tensor, lookback: int, horizon: int, stride: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(T, F) inputs and (T,) target → windows (N, lookback, F), futures (N, horizon), last seen values (N,)."""
    starts = torch.arange(0, len(target) - lookback - horizon + 1, stride)
    past = starts[:, None] + torch.arange(lookback)  # (N, lookback)
    future = starts[:, None] + lookback + torch.arange(horizon)  # (N, horizon)
    return inputs[past], target[future], target[starts + lookback - 1]


def naive_errors(futures: Tensor, last: Tensor) -> dict[str, float]:
    """MAE and RMSE of repeating the last observed value over the horizon."""
    error = futures.double() - last.double()[:, None]
    return {"mae": float(error.abs().mean()), "rmse": math.sqrt(float(error.pow(2).mean()))}


def timeseries(config: TimeSeriesOptions, seed: int) -> DataBundle:
    """CSV time series → sliding windows for multi-step forecasting (with a naive last-value baseline)."""
    path = data_path(config.path)
    header, columns, lines = read_table_lines(path)
    features = config.features or [config.target]
    for name in [config.target, *features]:
        check_column(name, header, path, "data.target/features")
    table = {}
    for name in dict.fromkeys([config.target, *features]):
        values = [read_number(text) for text in columns[name]]
        bad = next((i for i, value in enumerate(values) if value is None or not math.isfinite(value)), None)
        if bad is not None:
            raise DataError(
                f"column {name!r} of {path} holds {columns[name][bad]!r} on line {lines[bad]}",
                "time series columns must be finite numbers without gaps; fill or drop that row",
            )
        table[name] = torch.tensor(values, dtype=torch.float64)
    steps = len(table[config.target])
    ends = {
        "train": int(steps * (1 - config.val_fraction - config.test_fraction)),
        "val": int(steps * (1 - config.test_fraction)),
        "test": steps,
    }
    inputs = torch.stack([table[name] for name in features], dim=1)  # (T, F)
    train_inputs = inputs[: ends["train"]]
    mean, std = train_inputs.mean(dim=0), train_inputs.std(dim=0).clamp(min=1e-12)
    scaled = ((inputs - mean) / std).float()
    splits, baselines, start = {}, {}, 0
    for name, end in ends.items():
        if end - start < config.lookback + config.horizon:
            raise DataError(
                f"the {name} stretch of {path} has {end - start} steps, fewer than lookback + horizon "
                f"({config.lookback + config.horizon})",
                "use a longer series",
            )
        stretch = slice(start, end)
        windows, futures, last = sliding_windows(
            scaled[stretch], table[config.target][stretch], config.lookback, config.horizon, config.stride
        )
        splits[name] = Split(windows, futures.float())
        baselines[name] = naive_errors(futures, last)
        start = end
    train_targets = splits["train"].targets.double()
    spec = DataSpec(
        kind="sequence",
        task="regression",
        input_shape=(config.lookback, len(features)),
        num_targets=config.horizon,
        feature_names=features,
        target_names=[f"{config.target}+{step + 1}" for step in range(config.horizon)],
        target_mean=train_targets.mean(dim=0).tolist(),
        target_std=train_targets.std(dim=0).clamp(min=1e-12).tolist(),
        extra={"baselines": {name: baselines[name] for name in ("val", "test")}},
    )
    preprocessing = {
        "type": "sequence",
        "features": features,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "source": {"dataset": "timeseries", "path": str(path)},
    }
    notes = [
        f"naive last-value forecast: {name} MAE {b['mae']:.4g}, RMSE {b['rmse']:.4g}"
        for name, b in baselines.items()
        if name != "train"
    ]
    return DataBundle(spec, splits, preprocessing, _identity, notes)


def _identity(inputs: Tensor) -> Tensor:
    return inputs
