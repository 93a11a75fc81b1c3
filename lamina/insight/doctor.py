"""The training doctor: what went wrong in a run, read from its records, with the evidence and a config change.

`diagnose` is a pure function of a run's records — the rows of metrics.jsonl (epochs, logged steps, gradient norms,
activation statistics, update ratios), summary.json, data.json and the resolved config as a dict — so it needs no
PyTorch and works on a finished, diverged or failed run alike. Each rule (lamina/insight/doctor_rules.py) returns
`Finding`s: plain data (kind, severity, evidence, suggestion, the numbers behind the evidence, and the suggested
change as dotted config keys) that the CLI, the report or a dashboard can show. Thresholds are documented where
they are defined and in docs/insight.md.

    >>> rows = [{"kind": "epoch", "epoch": 1, "step": 10, "train.loss": 2.3, "val.loss": 2.3, "val.accuracy": 0.1}]
    >>> findings = diagnose(rows, {"status": "diverged", "error": "training diverged: the training loss became nan "
    ...                            "at step 14 (epoch 2)"}, {}, {"train": {"optimizer": {"name": "adamw",
    ...                            "learning_rate": 3.0}}})
    >>> findings[0].kind, findings[0].severity, findings[0].numbers["step"], findings[0].changes
    ('exploding', 'error', 14, {'train.optimizer.learning_rate': 0.001, 'train.gradient_clip': 1.0})
"""

from __future__ import annotations

import json
from typing import Any

from lamina.insight.doctor_rules import RULES
from lamina.insight.findings import SEVERITIES, Finding, Records

__all__ = ["Finding", "Records", "diagnose", "SEVERITIES", "CAUSES", "SYMPTOMS", "short_report", "as_overrides"]

# kinds that explain a loss that does not fall, or a model at chance
CAUSES = ("exploding", "vanishing_gradients", "dead_units", "saturated_units")
# a finding of the kind on the left is reported as information ("see … first") when a finding of one of the kinds on
# the right is a warning or an error: it is their symptom (overfitting at chance level is memorized noise)
SYMPTOMS = {"underfitting": CAUSES, "chance_level": CAUSES, "overfitting": ("chance_level",)}


def diagnose(rows: list[dict], summary: dict, data_record: dict, config: dict) -> list[Finding]:
    """Every finding of every rule on a run's records, errors first, then warnings, then information.

    Args:
        rows: the rows of metrics.jsonl (any kinds; unknown kinds are ignored).
        summary: summary.json. data_record: data.json (its "facts" feed the data rules). config: the resolved
            config as a dict (config.yaml).
    """
    records = Records.read(rows, summary, data_record, config)
    findings = [finding for rule in RULES for finding in rule(records)]
    serious = [finding.kind for finding in findings if finding.severity != "info"]
    findings = [_as_symptom(finding, serious) for finding in findings]
    return sorted(findings, key=lambda finding: SEVERITIES.index(finding.severity))


def _as_symptom(finding: Finding, serious: list[str]) -> Finding:
    causes = [kind for kind in SYMPTOMS.get(finding.kind, ()) if kind in serious]
    if not causes or finding.severity == "info":
        return finding
    return Finding(finding.kind, "info", finding.evidence, f"see {', '.join(causes)} first", finding.numbers, {})


def short_report(findings: list[Finding]) -> list[str]:
    """The lines `lamina train` prints at the end: one per warning or error, or 'doctor: no problems found'."""
    serious = [finding for finding in findings if finding.severity != "info"]
    if not serious:
        return ["doctor: no problems found"]
    return [f"doctor: {finding.line()}" for finding in serious]


def as_overrides(changes: dict[str, Any]) -> str:
    """Changes as command-line options: "--set train.gradient_clip=1.0 --set model.norm=batch"."""

    def shown(value: Any) -> str:
        return json.dumps(value) if isinstance(value, dict | list) else str(value)

    return " ".join(f"--set {key}={shown(value)}" for key, value in changes.items())
