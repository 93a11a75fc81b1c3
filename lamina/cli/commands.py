"""One function per CLI command. Each receives the parsed arguments and returns an exit code (None = 0).

Commands import what they need when they run, so `lamina --help`, `lamina schema`, `lamina models` and
`lamina datasets` never import PyTorch (seconds) and the others import it once they need it."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from typing import Any

from pydantic_core import to_json

from lamina.cli.export import export  # noqa: F401 (a command)
from lamina.cli.insight import diagnosed_if_diverged, doctor, explain, print_doctor  # noqa: F401 (commands)
from lamina.cli.serve import serve  # noqa: F401 (a command)
from lamina.cli.tables import options_table, print_table
from lamina.insight.group_lines import group_table, worst_group_line

# ---- training -----------------------------------------------------------------------------------------


def train(arguments: Namespace) -> int | None:
    from lamina.core.errors import ConfigError
    from lamina.pipeline import resume
    from lamina.pipeline import train as train_run

    progress = "quiet" if arguments.quiet else arguments.progress
    if arguments.resume:
        if arguments.config:
            raise ConfigError(
                "--resume continues a run with its saved config; do not pass CONFIG (--set may raise its budget: "
                "runtime.budget.*)",
                hint=f"run: lamina train --resume {arguments.resume}",
            )
        run = diagnosed_if_diverged(lambda: resume(arguments.resume, progress=progress, overrides=arguments.overrides))
    else:
        if not arguments.config:
            raise ConfigError(
                "lamina train needs a CONFIG file (or --resume RUN_DIR)",
                hint="e.g. lamina train configs/digits_cnn.yaml",
            )
        run = diagnosed_if_diverged(
            lambda: train_run(
                arguments.config, arguments.overrides, runs_dir=arguments.runs_dir, name=arguments.name,
                progress=progress,
            )
        )  # fmt: skip
    summary = run.summary
    if summary.get("status") == "budget":  # stopped cleanly by runtime.budget: not an error (exit 0)
        print(budget_line(summary, run.dir), file=sys.stderr)
        print(run.dir)
        return None
    metrics = summary.get("metrics", {})
    split = "test" if "test" in metrics else "val"  # language models may have no test split (nanoGPT's 90/10)
    shown = {key: value for key, value in metrics.get(split, {}).items() if isinstance(value, float)}
    scores = "  ".join(f"{key} {value:.4f}" for key, value in shown.items())
    epochs = summary.get("epochs")
    print(f"done in {summary.get('wall_seconds', 0):.1f}s, {epochs} epoch{'s' * (epochs != 1)} — {split}: {scores}")
    if isinstance(summary.get("threshold"), dict):
        print(threshold_line(summary["threshold"], split, metrics.get(split, {})))
    for attribute, record in (summary.get("groups") or {}).items():
        print(worst_group_line(attribute, record, split if split in record["splits"] else next(iter(record["splits"]))))
    if summary.get("stopped_early"):
        print(summary["stopped_early"])
    print_doctor(summary)
    print(run.dir)


def evaluate(arguments: Namespace) -> int | None:
    from lamina.run import load_run  # PyTorch

    if len(arguments.run_dir) > 1:
        return _evaluate_ensemble(arguments)
    run = load_run(arguments.run_dir[0])
    metrics = run.evaluate(arguments.split, allow_unfinished=arguments.allow_unfinished)
    _note_unfinished(run)
    if arguments.json:
        print(json.dumps(metrics))
        return
    confusion = metrics.pop("confusion_matrix", None)
    decided = metrics.pop("confusion_matrix_at_threshold", None)
    threshold = metrics.pop("threshold", None)
    groups = metrics.pop("groups", {})
    print_table(["metric", arguments.split], [[name, f"{value:.6g}"] for name, value in metrics.items()])
    if threshold is not None:
        print("\n" + threshold_line(threshold, arguments.split, metrics))
    _print_confusion("confusion matrix (rows: true class, columns: most likely class)", confusion)
    _print_confusion("confusion matrix at the threshold (rows: true class, columns: decided class)", decided)
    for attribute, record in groups.items():
        print("\n" + worst_group_line(attribute, record, arguments.split))
        print_table(*group_table(record["splits"][arguments.split]))


def budget_line(summary: dict, run_dir) -> str:
    """One line for a run its budget stopped: which limit, what was spent, how to go on."""
    budget = summary.get("budget", {})
    reached = budget.get("reached", "minutes")
    spent = budget.get("spent", {}).get(reached, 0)
    return (
        f"budget reached: {spent:.4g} of runtime.budget.{reached}={budget.get(reached, 0):g} at step "
        f"{summary.get('steps')} (checkpoint saved); continue with: lamina train --resume {run_dir} "
        f"--set runtime.budget.{reached}=<more>"
    )


def calibrate(arguments: Namespace) -> int | None:
    from lamina.run import load_run  # PyTorch

    run = load_run(arguments.run_dir)
    record = run.calibrate()
    if arguments.json:
        print(json.dumps(record))
        return
    fitted = record["temperature"]
    print(f"temperature {fitted['value']:.4g} fitted on val (minimum negative log-likelihood); accuracy unchanged")
    rows = [
        [split, name, f"{fitted['before'][split][name]:.4f}", f"{fitted['after'][split][name]:.4f}"]
        for split in fitted["after"]
        for name in ("ece", "mce", "brier", "nll")
    ]
    print_table(["split", "figure", "before", "after"], rows)
    threshold = run.summary.get("threshold")
    if isinstance(threshold, dict):
        print(threshold_line(threshold, "test", run.metrics.get("test")))
    print(f"wrote {run.dir / record['plot']} and the temperature into {run.folder.summary_path}")


def threshold_line(record: dict, split: str | None = None, metrics: dict | None = None) -> str:
    """One line for a two-class run's decision threshold, the same in every command: 'threshold 0.7086 for
    'benign' (chosen on val, max Youden's J): test sensitivity 0.7606, specificity 0.9286'."""
    value, positive = record.get("value", float("nan")), record.get("positive_class")
    chosen_on, rule = record.get("chosen_on", "val"), record.get("rule", "max Youden's J")
    line = f"threshold {value:.4f} for {positive!r} (chosen on {chosen_on}, {rule})"
    if split is not None and metrics and "sensitivity_at_threshold" in metrics:
        line += (
            f": {split} sensitivity {metrics['sensitivity_at_threshold']:.4f}, "
            f"specificity {metrics['specificity_at_threshold']:.4f}"
        )
    return line + (f"; {record['note']}" if record.get("note") else "")


def _print_confusion(title: str, matrix: list[list[int]] | None) -> None:
    if matrix is not None:
        print(f"\n{title}")
        for row in matrix:
            print("  " + " ".join(f"{count:5d}" for count in row))


def _evaluate_ensemble(arguments: Namespace) -> None:
    from lamina.ensemble import evaluate_ensemble  # PyTorch

    result = evaluate_ensemble(arguments.run_dir, arguments.split)
    if arguments.json:
        print(json.dumps(result))
        return
    metrics = result["metrics"]
    members = result["members"]
    names = [name for name, value in metrics["ensemble"].items() if isinstance(value, float)]
    header = ["metric"] + [f"run {index + 1}" for index in range(len(members))] + ["ensemble"]
    rows = [
        [name]
        + [f"{metrics[m][name]:.6g}" if name in metrics[m] else "" for m in members]
        + [f"{metrics['ensemble'][name]:.6g}"]
        for name in names
    ]
    print(f"{arguments.split} split; ensemble = mean of the {len(members)} runs' predictions")
    print_table(header, rows)
    for index, member in enumerate(members):
        print(f"run {index + 1}: {member}")
    if "threshold" in result:
        record = {**result["threshold"], "chosen_on": "the ensemble's val predictions"}
        print(threshold_line(record, arguments.split, metrics["ensemble"]) + "; each run decides at its own")
    _print_confusion(
        "ensemble confusion matrix (rows: true class, columns: most likely class)",
        metrics["ensemble"].get("confusion_matrix"),
    )
    _print_confusion(
        "ensemble confusion matrix at the threshold (rows: true class, columns: decided class)",
        metrics["ensemble"].get("confusion_matrix_at_threshold"),
    )


def predict(arguments: Namespace) -> int | None:
    from lamina.run import load_run  # PyTorch

    run = load_run(arguments.run_dir)
    results = run.predict(arguments.inputs, allow_unfinished=arguments.allow_unfinished)
    _note_unfinished(run)
    if arguments.json:
        for result in results:
            print(json.dumps(result))
        return
    if results and "anomaly_score" in results[0]:
        print_table(
            ["input", "anomaly score", "latent code"],
            [
                [
                    r["input"],
                    f"{r['anomaly_score']:.5f}",
                    " ".join(f"{v:.3f}" for v in r["code"][:8]) + (" …" if len(r["code"]) > 8 else ""),
                ]
                for r in results
            ],
        )
    elif results and run.threshold is not None:  # two classes: decided at the run's threshold
        positive = run.threshold["positive_class"]
        print(threshold_line(run.threshold) + f": {positive!r} where its probability is at least that")
        print_table(
            ["input", "label", f"probability of {positive!r}"],
            [[r["input"], r["label"], f"{r['probabilities'][positive]:.4f}"] for r in results],
        )
    elif results and "probability" in results[0]:
        print_table(
            ["input", "label", "probability"], [[r["input"], r["label"], f"{r['probability']:.4f}"] for r in results]
        )
    elif results and "label" in results[0]:
        print_table(["input", "label"], [[r["input"], r["label"]] for r in results])
    else:
        print_table(["input", "prediction"], [[r["input"], _number(r["prediction"])] for r in results])


def _note_unfinished(run) -> None:
    if run.status != "completed":
        print(f"note: run {run.dir} is {run.status}; used {run.weights_used}", file=sys.stderr)


def generate(arguments: Namespace) -> int | None:
    from lamina.generate import generate as generate_samples  # PyTorch
    from lamina.run import load_run

    options = {
        name: getattr(arguments, name)
        for name in ("samples", "prompt", "max_tokens", "temperature", "top_k", "seed", "output")
    }
    result = generate_samples(load_run(arguments.run_dir), **options)
    if "text" not in result:  # images: the file is the result
        print(result["path"])
        return
    print(result["text"])
    speed = result["tokens"] / result["seconds"] if result["seconds"] > 0 else float("inf")
    print(f"{result['tokens']} tokens in {result['seconds']:.2f}s, {speed:.0f} tokens/s", file=sys.stderr)
    if "path" in result:
        print(f"wrote {result['path']}", file=sys.stderr)


def _number(value: Any) -> str:
    return ", ".join(f"{v:.6g}" for v in value) if isinstance(value, list) else f"{value:.6g}"


def report(arguments: Namespace) -> int | None:
    from lamina.report import write_report  # reads the run's files only: no PyTorch

    print(write_report(arguments.run_dir, arguments.format, arguments.output))


# ---- inspecting configs, models, data -------------------------------------------------------------------


def validate(arguments: Namespace) -> int | None:
    from lamina.config.loading import load_config
    from lamina.pipeline.prepare import prepare  # PyTorch

    session = prepare(load_config(arguments.config, arguments.overrides))
    config = session.config
    parameters = sum(p.numel() for p in session.model.parameters())
    sizes = ", ".join(f"{name} {len(split)}" for name, split in session.data.splits.items())
    print(f"{arguments.config}: valid")
    print(f"  data   {config.data.name}: {session.data.spec.describe()}; {sizes}")
    print(f"  model  {config.model.name}: {parameters:,} parameters, one batch ran through it")
    print(
        f"  train  {config.train.epochs} epochs, batch {config.train.batch_size}, loss {config.train.loss.name}, "
        f"optimizer {config.train.optimizer.name}, schedule {config.train.schedule.name}, device {session.device}"
    )
    for warning in session.data.warnings:
        print(f"warning: {warning}")


def models(arguments: Namespace) -> int | None:
    if arguments.config:
        return _model_summary(arguments)
    from lamina.models.options import models as registry  # the options only: no PyTorch

    _list_entries(registry, "Show a config's model with its parameter count: lamina models CONFIG")


def _list_entries(registry, closing: str) -> None:
    for entry in registry.values():
        print(f"\n{entry.name} — {entry.help}")
        options_table(entry.options)
    print(f"\n{closing}")


def _model_summary(arguments: Namespace) -> None:
    from lamina.config.loading import load_config
    from lamina.models.summary import layer_table  # PyTorch
    from lamina.pipeline.prepare import prepare

    session = prepare(load_config(arguments.config, arguments.overrides))
    config = session.config
    sample = session.data.transform(session.data.splits["train"].inputs[:2])
    rows, total, trainable = layer_table(session.model, sample)
    print(f"model {config.model.name} for {config.data.name} ({session.data.spec.describe()})")
    print_table(["layer", "kind", "output shape", "parameters"], rows)
    print(f"parameters: {total:,} ({trainable:,} trainable)")


def datasets(arguments: Namespace) -> int | None:
    if arguments.action == "summary":
        return _data_summary(arguments)
    from lamina.data.catalogue import datasets as registry  # the options only: no PyTorch

    _list_entries(registry, "Inspect a config's data: lamina datasets summary CONFIG")


def _data_summary(arguments: Namespace) -> None:
    import torch  # PyTorch

    from lamina.config.loading import load_config
    from lamina.data.bundle import iterate_batches
    from lamina.models.output import split_output
    from lamina.pipeline.prepare import prepare
    from lamina.tasks import task_of

    session = prepare(load_config(arguments.config, arguments.overrides))
    config, data, spec = session.config, session.data, session.data.spec
    task = task_of(spec)
    print(f"data {config.data.name}: {spec.describe()}")
    rows = []
    for name, split in data.splits.items():
        inputs = split.inputs
        row = [name, f"{len(split)}", f"{tuple(inputs.shape[1:])} {str(inputs.dtype).replace('torch.', '')}"]
        row.append("no labels" if name == "unlabelled" else task.target_summary(split.targets, spec))
        rows.append(row)
    print_table(["split", "samples", "input", "classes" if task.classes else "target"], rows)
    for note in data.notes:
        print(f"note: {note}")
    for warning in data.warnings:
        print(f"warning: {warning}")
    inputs, targets = next(iterate_batches(data.splits["train"], config.train.batch_size))
    batch = data.transform(inputs)
    print(
        f"one training batch: stored {tuple(inputs.shape)} {inputs.dtype} → model input {tuple(batch.shape)} "
        f"{batch.dtype}, mean {batch.float().mean():.3f}, std {batch.float().std():.3f}"
    )
    with torch.no_grad():
        prediction, _, _ = split_output(session.model.eval()(batch))
    print(f"through model {config.model.name}: outputs {tuple(prediction.shape)}; targets {tuple(targets.shape)}")


def runs(arguments: Namespace) -> int | None:
    from lamina.artifacts.folder import list_runs
    from lamina.core.errors import resolved

    records = list_runs(arguments.runs_dir)
    if not records:
        print(f"no runs in {arguments.runs_dir}{resolved(arguments.runs_dir)}")
        return
    print_table(["id", "model", "data", "best", "test", "status"], [_run_row(record) for record in records])


def _run_row(record: dict) -> list[str]:
    """A row of `lamina runs`: what could be read; a summary of the wrong shape shows as damaged, not an error."""
    best = record.get("best") if isinstance(record.get("best"), dict) else {}
    value = best.get("value")
    best_text = f"{best.get('monitor', '')} {value:.4f}" if isinstance(value, int | float) else "-"
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    monitored = str(best.get("monitor", "")).partition(".")[2]  # the metric the run was trained to watch
    choices = (monitored,) if monitored else ("accuracy", "r2")  # summaries without one: as before
    main = next((k for k in choices if isinstance(test.get(k), int | float)), None)
    status = record.get("status", "?")
    readable = all(isinstance(record.get(key, ""), str) for key in ("model", "data", "status"))
    return [
        record["id"],
        str(record.get("model", "?")),
        str(record.get("data", "?")),
        best_text,
        f"test.{main} {test[main]:.4f}" if main else "-",
        str(status) if readable else "damaged",
    ]


def schema(arguments: Namespace) -> int | None:
    from lamina.config.schema import schema as config_schema  # the options only: no PyTorch

    text = to_json(config_schema(), indent=2).decode()
    if arguments.output:
        from lamina.artifacts.folder import atomic_write

        atomic_write(arguments.output, text + "\n")
        print(f"wrote {arguments.output}", file=sys.stderr)
    else:
        print(text)
