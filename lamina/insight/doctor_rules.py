"""The training doctor's rules: each a function of a run's `Records` returning findings. The thresholds are the
constants below; docs/insight.md explains each rule and why its threshold sits where it does (the shipped healthy
configs' runs stay below every warning, the deliberately broken runs of tests/test_doctor.py above).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable

from lamina.insight.data_rules import class_imbalance, leakage
from lamina.insight.findings import Finding, Records
from lamina.models.options import models
from lamina.training.options import metric_goal, optimizers

__all__ = ["RULES"]

# vanishing: the first layer's gradient norm below this share of the last layer's (median over the logged steps)
VANISHING_RATIO = 1e-3
# exploding without a divergence: a logged gradient norm this many times the median of the previous SPIKE_WINDOW
SPIKE_FACTOR, SPIKE_WINDOW = 100.0, 10
# dead / saturated units: at least this share of a layer's units at each of its last LAST_ROWS logged steps
DEAD_SHARE, SATURATED_SHARE, LAST_ROWS = 0.5, 0.5, 3
# unstable loss: an epoch's mean train loss above the previous one by RISE of the first epoch's mean counts as a rise
# (measured against the first epoch, so the noise of a loss near zero — 0.03 → 0.045 with augmentation — is none);
# twice, or a last epoch that gave back GIVEN_BACK of the fall from the first epoch to the lowest, is unstable
RISE, GIVEN_BACK = 0.10, 0.5
# overfitting: the monitored metric worse than its best for OVERFIT_EPOCHS epochs — by OVERFIT_WORSENING of its best
# for metrics to minimize (losses), by OVERFIT_POINTS for metrics to maximize (accuracy, f1, ...) — while the train
# loss fell by 10 % or more
OVERFIT_EPOCHS, OVERFIT_WORSENING, OVERFIT_POINTS = 3, 0.10, 0.02
# underfitting: the last train loss at least this share of the first one; updates below SMALL_UPDATE are tiny
UNDERFIT_SHARE, SMALL_UPDATE = 0.9, 1e-4
# slow convergence: the train loss still fell by this share over the last fifth of the epochs
STILL_FALLING = 0.10


def _rate_changes(records: Records, clip: bool) -> tuple[dict, str]:
    """A lower learning rate (the optimizer's default, or a tenth of the rate when that is lower), and clipping."""
    rate = records.setting("train.optimizer.learning_rate")
    name = records.setting("train.optimizer.name", "adamw")
    changes: dict = {}
    words = []
    if isinstance(rate, int | float) and rate > 0:
        default = optimizers.get(name).options.model_fields["learning_rate"].default if name in optimizers else rate
        lower = float(f"{min(rate / 10, default):.1g}")
        changes["train.optimizer.learning_rate"] = lower
        words.append(f"lower train.optimizer.learning_rate from {rate:g} to {lower:g}")
    if clip and not records.setting("train.gradient_clip"):
        changes["train.gradient_clip"] = 1.0
        words.append("clip gradients (train.gradient_clip: 1.0)")
    return changes, ", ".join(words)


def _model_option(records: Records, option: str) -> bool:
    name = records.setting("model.name")
    return name in models and option in models.get(name).options.model_fields


def exploding(records: Records) -> list[Finding]:
    """A diverged run (a NaN or runaway loss, non-finite weights), or gradient norms that jump by SPIKE_FACTOR."""
    totals = [(row["step"], row.get("total")) for row in records.gradients if isinstance(row.get("total"), float)]
    growth = ""
    numbers: dict = {}
    if totals:
        top_step, top = max(totals, key=lambda pair: pair[1] if math.isfinite(pair[1]) else math.inf)
        growth = f"; the largest logged gradient norm was {top:.3g}, at step {top_step}"
        numbers.update(largest_gradient_norm=top, largest_gradient_step=top_step)
    if records.diverged:
        error = str(records.summary.get("error", "the training loss stopped being finite"))
        step = re.search(r"(?:at|after) step (\d+)", error)
        epoch = re.search(r"epoch (\d+)", error)
        where = f"step {step[1]}" if step else (f"epoch {epoch[1]}" if epoch else "an unrecorded step")
        numbers.update(
            step=int(step[1]) if step else None,
            epoch=int(epoch[1]) if epoch else None,
            learning_rate=records.setting("train.optimizer.learning_rate"),
        )
        changes, words = _rate_changes(records, clip=True)
        evidence = f"training diverged at {where}: {error.removeprefix('training diverged: ')}{growth}"
        warmup = "" if records.setting("train.schedule.warmup_steps") else ", and warm up (train.schedule.warmup_steps)"
        return [Finding("exploding", "error", evidence, f"{words}{warmup}", numbers, changes)]
    for index in range(SPIKE_WINDOW, len(totals)):
        step, value = totals[index]
        before = statistics.median(total for _, total in totals[index - SPIKE_WINDOW : index])
        if not math.isfinite(value) or (before > 0 and value >= SPIKE_FACTOR * before):
            clipped = bool(records.setting("train.gradient_clip"))
            changes, words = _rate_changes(records, clip=True)
            numbers.update(step=step, gradient_norm=value, median_before=before)
            evidence = (
                f"the gradient norm jumped to {value:.3g} at step {step}, {value / before:.0f} times the median "
                f"{before:.3g} of the {SPIKE_WINDOW} logged steps before"
                + (" (clipping limited the step it took)" if clipped else "")
            )
            return [Finding("exploding", "info" if clipped else "warning", evidence, words, numbers, changes)]
    return []


def vanishing_gradients(records: Records) -> list[Finding]:
    """The first layer's gradient norm orders of magnitude (VANISHING_RATIO) below the last layer's."""
    ratios, pairs = [], []
    for row in records.gradients:
        layers = row.get("layers") or {}
        if len(layers) < 3:
            continue
        names = list(layers)
        first, last = layers[names[0]], layers[names[-1]]
        if first > 0 and last > 0 and math.isfinite(first) and math.isfinite(last):  # 0: no gradient at all (dead)
            ratios.append(first / last)
            pairs.append((row["step"], names[0], first, names[-1], last))
    if not ratios or statistics.median(ratios) >= VANISHING_RATIO:
        return []
    ratio = statistics.median(ratios)
    step, first_name, first, last_name, last = pairs[len(pairs) // 2]
    activation = records.setting("model.activation")
    norm = records.setting("model.norm")
    evidence = (
        f"the gradient reaching the first layer {first_name} is {ratio:.1e} of the last layer {last_name}'s (median "
        f"over {len(ratios)} logged steps; at step {step}: {first:.2g} against {last:.2g})"
        + (f", through a {activation} network" if activation else "")
        + (" without normalization" if norm == "none" else "")
    )
    changes: dict = {}  # the smallest change that fixes it: normalization keeps the chosen activation
    if norm == "none" and _model_option(records, "norm"):
        changes["model.norm"] = "batch"
    elif activation in ("sigmoid", "tanh") and _model_option(records, "activation"):
        changes["model.activation"] = "relu"
        if _model_option(records, "init"):
            changes["model.init"] = "kaiming_normal"
    suggestion = (
        "normalize each layer (model.norm: batch), use a ReLU-family activation with He init "
        "(model.activation: relu, model.init: kaiming_normal), or add residual connections (model: resnet)"
    )
    numbers = {"ratio": ratio, "step": step, "first_layer": first_name, "last_layer": last_name}
    return [Finding("vanishing_gradients", "warning", evidence, suggestion, numbers, changes)]


def _unit_rule(records: Records, key: str, share: float, kind: str) -> list[Finding]:
    """Layers whose `key` ("dead" or "saturated") share is at least `share` at each of their last LAST_ROWS rows."""
    if records.diverged:  # a diverged run kills and saturates units: the divergence is the finding
        return []
    history: dict[str, list[tuple[int, float]]] = {}
    for row in records.activations:
        for layer, values in (row.get("layers") or {}).items():
            if key in values:
                history.setdefault(layer, []).append((row["step"], values[key]))
    affected = []
    for layer, values in history.items():
        last = values[-LAST_ROWS:]
        if min(value for _, value in last) >= share:
            affected.append((layer, last[-1][0], last[-1][1], min(value for _, value in last), len(last)))
    if not affected:
        return []
    layers = ", ".join(f"{layer} {value:.0%}" for layer, _, value, _, _ in affected)
    step, rows = affected[0][1], affected[0][4]
    numbers = {"layers": {layer: value for layer, _, value, _, _ in affected}, "step": step}
    if key == "dead":
        evidence = (
            f"units that never fired over the logged batch at step {step}: {layers} (at least "
            f"{min(low for *_, low, _ in affected):.0%} at each of the last {rows} logged steps)"
        )
        changes, words = _rate_changes(records, clip=False)
        if _model_option(records, "activation"):
            changes = {"model.activation": "leaky_relu", **changes}
            words = f"use a leaky activation (model.activation: leaky_relu), {words}"
        return [Finding(kind, "warning", evidence, words, numbers, changes)]
    evidence = (
        f"outputs within 0.01 of the function's limits at step {step}: {layers} (at each of the last {rows} "
        "logged steps): their gradients are almost zero"
    )
    changes = {"model.norm": "batch"} if records.setting("model.norm") == "none" else {}
    if _model_option(records, "activation"):
        changes["model.activation"] = "relu"
    suggestion = "normalize the pre-activations (model.norm: batch) or use a ReLU-family activation"
    return [Finding(kind, "warning", evidence, suggestion, numbers, changes)]


def dead_units(records: Records) -> list[Finding]:
    return _unit_rule(records, "dead", DEAD_SHARE, "dead_units")


def saturated_units(records: Records) -> list[Finding]:
    return _unit_rule(records, "saturated", SATURATED_SHARE, "saturated_units")


def _losses(records: Records) -> list[tuple[int, float]]:
    return [(row["epoch"], row["train.loss"]) for row in records.epochs if isinstance(row.get("train.loss"), float)]


def unstable_loss(records: Records) -> list[Finding]:
    """The epoch's mean train loss rising by RISE of the first epoch's twice or more, or giving back GIVEN_BACK of
    its fall by the last epoch."""
    losses = _losses(records)
    if len(losses) < 3:
        return []
    first = losses[0][1]
    rises = [
        (epoch, before, after)
        for (_, before), (epoch, after) in zip(losses, losses[1:], strict=False)
        if after - before > RISE * first
    ]
    lowest_epoch, lowest = min(losses, key=lambda pair: pair[1])
    last_epoch, last = losses[-1]
    gave_back = last - lowest > GIVEN_BACK * (first - lowest) and last > lowest
    if len(rises) < 2 and not gave_back:
        return []
    shown = "; ".join(f"epoch {epoch}: {before:.3g} → {after:.3g}" for epoch, before, after in rises[:3])
    evidence = (
        f"the mean train loss rose {len(rises)} times by over {RISE:.0%} of the first epoch's {first:.3g} ({shown})"
        if len(rises) >= 2
        else f"the mean train loss ended at {last:.3g} (epoch {last_epoch}), back up from its lowest {lowest:.3g} "
        f"(epoch {lowest_epoch}) by over half of its fall from {first:.3g}"
    )
    changes, words = _rate_changes(records, clip=False)
    numbers = {"rises": len(rises), "first": first, "lowest": lowest, "lowest_epoch": lowest_epoch, "last": last}
    return [Finding("unstable_loss", "warning", evidence, words, numbers, changes)]


def _monitored(records: Records) -> tuple[str | None, list[dict], dict | None]:
    """The monitored metric, the epoch rows that hold it and the train loss, and the row where it was best."""
    monitor = records.setting("train.monitor") or (records.summary.get("best") or {}).get("monitor")
    rows = [
        row
        for row in records.epochs
        if isinstance(row.get(monitor), float) and isinstance(row.get("train.loss"), float)
    ]
    if not monitor or not rows:
        return monitor, [], None
    goal = metric_goal(monitor.split(".", 1)[1])
    return monitor, rows, (min if goal == "min" else max)(rows, key=lambda row: row[monitor])


def overfitting(records: Records) -> list[Finding]:
    """The monitored metric worse than its best for OVERFIT_EPOCHS epochs while the train loss keeps falling."""
    monitor, rows, best = _monitored(records)
    if best is None or len(rows) <= OVERFIT_EPOCHS:
        return []
    goal = metric_goal(monitor.split(".", 1)[1])
    last = rows[-1]
    waited = last["epoch"] - best["epoch"]
    value, top = last[monitor], best[monitor]
    worse = value >= top * (1 + OVERFIT_WORSENING) if goal == "min" else top - value >= OVERFIT_POINTS
    fell = last["train.loss"] <= 0.9 * best["train.loss"]
    if waited < OVERFIT_EPOCHS or not worse or not fell:
        return []
    restored = bool(records.summary.get("restored_best"))
    evidence = (
        f"{monitor} was best at epoch {best['epoch']} ({top:.4g}) and worse for the {waited} epochs after, "
        f"{value:.4g} at epoch {last['epoch']}, while train.loss fell from {best['train.loss']:.3g} to "
        f"{last['train.loss']:.3g}" + ("; early stopping restored the best epoch's weights" if restored else "")
    )
    changes: dict = {}
    if not records.setting("train.early_stopping"):
        changes["train.early_stopping"] = {"patience": OVERFIT_EPOCHS + 2, "restore_best": True}
    if _model_option(records, "dropout") and not records.setting("model.dropout"):
        changes["model.dropout"] = 0.3
    suggestion = (
        "regularize: early stopping with restore_best, dropout (model.dropout), more weight decay "
        "(train.optimizer.weight_decay), augmentation (data.augment), or more data"
    )
    numbers = {"monitor": monitor, "best_epoch": best["epoch"], "best": top, "last": value, "epochs_worse": waited}
    return [Finding("overfitting", "info" if restored else "warning", evidence, suggestion, numbers, changes)]


def underfitting(records: Records) -> list[Finding]:
    """The train loss barely fell (UNDERFIT_SHARE), or still fell fast at the end (slow convergence, info)."""
    losses = _losses(records)
    first = records.steps[0]["loss"] if records.steps else (losses[0][1] if losses else None)
    if len(losses) < 2 or first is None or not math.isfinite(first) or first <= 0:
        return []
    last = losses[-1][1]
    medians = [statistics.median(row["layers"].values()) for row in records.updates if row.get("layers")]
    update = statistics.median(medians) if medians else None
    rate = records.setting("train.optimizer.learning_rate")
    if last >= UNDERFIT_SHARE * first:
        evidence = f"the train loss went only from {first:.4g} to {last:.4g} in {losses[-1][0]} epochs"
        changes: dict = {}
        if update is not None:
            evidence += f"; a step changed the weights by a median {update:.1e} of their size"
        if update is not None and update < SMALL_UPDATE and isinstance(rate, int | float):
            changes["train.optimizer.learning_rate"] = float(f"{rate * 10:.1g}")
            suggestion = f"raise train.optimizer.learning_rate from {rate:g} to {rate * 10:.1g}"
        else:
            suggestion = "train longer (train.epochs), use a bigger model, or raise the learning rate"
        numbers = {"first_loss": first, "last_loss": last, "median_update_ratio": update}
        return [Finding("underfitting", "warning", evidence, suggestion, numbers, changes)]
    tail = max(2, len(losses) // 5)
    if len(losses) <= tail:
        return []
    start = losses[-tail - 1][1]
    _, _, best = _monitored(records)
    if last <= start * (1 - STILL_FALLING) and (best is None or best["epoch"] == losses[-1][0]):
        epochs = records.setting("train.epochs")
        evidence = (
            f"the train loss still fell {1 - last / start:.0%} over the last {tail} epochs ({start:.3g} → "
            f"{last:.3g}) and the monitored metric was best in the last epoch"
        )
        changes = (
            {"train.epochs": epochs * 2} if isinstance(epochs, int) and not records.setting("train.max_steps") else {}
        )
        numbers = {"loss_before": start, "last_loss": last, "epochs": tail}
        return [Finding("slow_convergence", "info", evidence, "train longer, or with a higher rate", numbers, changes)]
    return []


def chance_level(records: Records) -> list[Finding]:
    """Val accuracy no better than always answering the largest class (regression: val r2 near 0)."""
    half = records.epochs[len(records.epochs) // 2 :]
    counts = (records.data.get("facts") or {}).get("class_counts") or {}
    spec = records.data.get("spec") or {}
    accuracies = [row["val.accuracy"] for row in half if isinstance(row.get("val.accuracy"), float)]
    if accuracies:
        shares = counts.get("val") or counts.get("train")
        chance = max(shares) / sum(shares) if shares else 1 / max(2, spec.get("num_classes") or 2)
        samples = sum(counts["val"]) if counts.get("val") else None
        margin = max(0.02, 2 * math.sqrt(chance * (1 - chance) / samples)) if samples else 0.05
        reached = statistics.median(accuracies)
        if reached > chance + margin:
            return []
        evidence = (
            f"val accuracy stayed at {reached:.1%} (median of the last {len(accuracies)} epochs), no better "
            f"than always answering the largest class ({chance:.1%})"
        )
        numbers = {"val_accuracy": reached, "chance": chance, "margin": margin}
    else:
        scores = [row["val.r2"] for row in half if isinstance(row.get("val.r2"), float)]
        if not scores or statistics.median(scores) > 0.02:
            return []
        evidence = f"val r2 stayed at {statistics.median(scores):.3f}: no better than predicting the mean"
        numbers = {"val_r2": statistics.median(scores)}
    losses = _losses(records)
    if len(losses) >= 2 and losses[-1][1] < 0.9 * losses[0][1]:
        evidence += f", while the train loss fell from {losses[0][1]:.3g} to {losses[-1][1]:.3g}"
    suggestion = (
        "check the data, not the model: do the labels belong to the inputs (shuffled or misaligned labels, the "
        "wrong target column)? 'lamina datasets summary CONFIG' shows samples with their labels"
    )
    return [Finding("chance_level", "warning", evidence, suggestion, numbers, {})]


RULES: list[Callable[[Records], list[Finding]]] = [
    exploding,
    vanishing_gradients,
    dead_units,
    saturated_units,
    unstable_loss,
    overfitting,
    underfitting,
    chance_level,
    class_imbalance,
    leakage,
]
