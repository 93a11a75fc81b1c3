"""What the training doctor finds: `Finding` (plain data any tool can show) and `Records` (a run's records by
kind, which the rules in lamina/insight/doctor_rules.py read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Finding", "Records", "SEVERITIES", "dotted_value"]

SEVERITIES = ("error", "warning", "info")  # error: the run failed or its scores mean little; info: worth knowing


@dataclass(frozen=True)
class Finding:
    """One diagnosis. `evidence`: a sentence with the numbers, the step and the layer; `numbers`: those numbers;
    `suggestion`: what to change, in words; `changes`: the same as dotted config keys → values (pass them as
    `--set KEY=VALUE` or `overrides=`), empty when the fix is not a config change (the data, the labels)."""

    kind: str
    severity: str
    evidence: str
    suggestion: str
    numbers: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Finding:
        return cls(
            **{key: record[key] for key in ("kind", "severity", "evidence", "suggestion") if key in record},
            numbers=dict(record.get("numbers") or {}),
            changes=dict(record.get("changes") or {}),
        )

    def line(self) -> str:
        """One line: 'warning vanishing_gradients: <evidence> → <suggestion>'."""
        return f"{self.severity} {self.kind}: {self.evidence} → {self.suggestion}"


@dataclass
class Records:
    """A run's records, by kind (each list in the order written); `config` the resolved config as a dict."""

    epochs: list[dict]
    steps: list[dict]
    gradients: list[dict]
    activations: list[dict]
    updates: list[dict]
    summary: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]

    @classmethod
    def read(cls, rows: list[dict], summary: dict, data: dict, config: dict) -> Records:
        kinds: dict[str, list[dict]] = {"epoch": [], "step": [], "gradients": [], "activations": [], "updates": []}
        for row in rows:
            if isinstance(row, dict) and row.get("kind") in kinds:
                kinds[row["kind"]].append(row)
        return cls(
            kinds["epoch"],
            kinds["step"],
            kinds["gradients"],
            kinds["activations"],
            kinds["updates"],
            summary or {},
            data or {},
            config or {},
        )

    def setting(self, dotted: str, default: Any = None) -> Any:
        """A value of the config by dotted path ('train.optimizer.learning_rate'); `default` when absent."""
        return dotted_value(self.config, dotted, default)

    @property
    def diverged(self) -> bool:
        return self.summary.get("status") == "diverged"


def dotted_value(config: Any, dotted: str, default: Any = None) -> Any:
    """The value at a dotted path of a config read as plain data ('train.optimizer.learning_rate'); `default`
    when any part is absent."""
    value = config
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value
