"""The commands about insight into a run: `lamina explain` and `lamina doctor`, and the doctor's short report that
`lamina train` prints (lamina/cli/commands.py imports them; like every command they import PyTorch when they run)."""

from __future__ import annotations

import json
import textwrap
from argparse import Namespace

__all__ = ["explain", "doctor", "print_doctor", "diagnosed_if_diverged"]


def diagnosed_if_diverged(training):
    """Run `training`; when the run diverges, print the doctor's short report (on stdout; the error goes to stderr)."""
    from lamina.core.errors import TrainingDiverged
    from lamina.run import load_run

    try:
        return training()
    except TrainingDiverged as error:
        if getattr(error, "run_dir", None) is not None:
            print_doctor(load_run(error.run_dir).summary)
        raise


def print_doctor(summary: dict) -> None:
    """The doctor's short report at the end of `lamina train`: a line per warning or error."""
    from lamina.insight.doctor import Finding, short_report

    if isinstance(summary.get("doctor"), list):
        findings = [Finding.from_dict(record) for record in summary["doctor"] if isinstance(record, dict)]
        print("\n".join(short_report(findings)))


def doctor(arguments: Namespace) -> int | None:
    from lamina.insight.doctor import as_overrides
    from lamina.run import load_run  # PyTorch

    run = load_run(arguments.run_dir)
    findings = run.doctor()
    if arguments.json:
        print(json.dumps([finding.to_dict() for finding in findings]))
        return
    serious = sum(finding.severity != "info" for finding in findings)
    print(
        f"{run.dir} ({run.status}): {serious} problem{'s' * (serious != 1)}, {len(findings) - serious} note"
        f"{'s' * (len(findings) - serious != 1)}"
    )
    for finding in findings:
        print(f"\n{finding.severity.upper()}  {finding.kind}")
        for label, text in (("evidence", finding.evidence), ("suggestion", finding.suggestion)):
            print(textwrap.fill(text, 116, initial_indent=f"  {label + ':':<12}", subsequent_indent=" " * 14))
        if finding.changes:
            print(f"  try:        lamina train {run.folder.config} {as_overrides(finding.changes)}")


def explain(arguments: Namespace) -> int | None:
    from lamina.run import load_run  # PyTorch

    run = load_run(arguments.run_dir)
    result = run.explain(
        arguments.inputs or None,
        arguments.method,
        arguments.target,
        arguments.split,
        arguments.count,
        arguments.layer,
        arguments.output,
    )
    record = result.record
    if arguments.json:
        print(json.dumps(record))
        return
    print(f"{record['method']} on {len(result.items)} {record['modality']} inputs; baseline: {record['baseline']}")
    print(result.shown or "\n".join(f"  {line}" for line in explained_lines(record)))
    sanity, deletion = record["sanity_check"], record["deletion"]
    print(
        f"sanity check: rank correlation with a randomized model {sanity['randomized_rank_correlation']:.3f}, with "
        f"itself under input noise {sanity['self_rank_correlation']:.3f} (a faithful method: the first far lower)"
    )
    print(
        f"deletion: area {deletion['auc']:.3f} removing the most attributed units first, {deletion['random_auc']:.3f} "
        f"in a random order; lower than random for {deletion['fraction_below_random']:.0%} of the inputs"
    )
    print(f"{record['seconds']['total']:.1f}s; wrote {result.files[-1].parent}")


def explained_lines(record: dict) -> list[str]:
    lines = []
    for entry in record["inputs"]:
        line = f"{entry['name']}: predicted {entry['predicted']}"
        line += f" ({entry['probability']:.2f})" if "probability" in entry else f" {entry['value']:.4g}"
        line += f", true {entry['true']}" if "true" in entry else ""
        lines.append(line + (f"; explaining {entry['target']}" if entry["target"] != entry["predicted"] else ""))
    return lines
