"""A run folder's records as the report reads them: summary.json, data.json, config.yaml, metrics.jsonl, plots and
explanations. Reading them needs no PyTorch; whatever is missing or damaged reads as absent, so a report can be
written for any run, finished or not."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lamina.artifacts.folder import RunFolder
from lamina.insight.doctor import diagnose
from lamina.insight.findings import dotted_value

__all__ = ["RunRecords", "Explained", "read_records"]


@dataclass(frozen=True)
class Explained:
    """One folder of explanations/: its record (explanation.json) and its pictures, in the record's input order."""

    folder: Path
    record: dict[str, Any]
    pictures: list[Path]


@dataclass
class RunRecords:
    folder: RunFolder
    summary: dict[str, Any]
    data: dict[str, Any]
    config_text: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    plots: dict[str, Path]  # file stem → path
    explained: list[Explained] = field(default_factory=list)
    doctor: list[dict[str, Any]] | None = None  # the findings (recorded, or diagnosed now)
    doctor_recorded: bool = True

    @property
    def spec(self) -> dict[str, Any]:
        return _mapping(self.data.get("spec"))

    @property
    def facts(self) -> dict[str, Any]:
        return _mapping(self.data.get("facts"))

    @property
    def class_names(self) -> list[str]:
        names = self.spec.get("class_names")
        count = self.spec.get("num_classes")
        if isinstance(names, list) and names:
            return [str(name) for name in names]
        return [str(index) for index in range(count)] if isinstance(count, int) else []

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        metrics = _mapping(self.summary.get("metrics"))
        return {split: values for split, values in metrics.items() if isinstance(values, dict)}

    def setting(self, dotted: str, default: Any = None) -> Any:
        """A value of the config by dotted path ('train.optimizer.learning_rate'); `default` when absent."""
        return dotted_value(self.config, dotted, default)

    @property
    def config_hash(self) -> str:
        """The first 12 hex digits of config.yaml's SHA-256: two runs with the same config share it."""
        return hashlib.sha256(self.config_text.encode()).hexdigest()[:12]

    @property
    def date(self) -> str:
        """When the run started: from its folder's name (YYYYmmdd-HHMMSS-…), else config.yaml's modification time."""
        found = re.match(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})", self.folder.id)
        if found:
            year, month, day, hour, minute, second = found.groups()
            return f"{year}-{month}-{day} {hour}:{minute}:{second}"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.folder.config.stat().st_mtime))


def read_records(run_dir: str | Path) -> RunRecords:
    """Everything the report shows, read from the run folder (RunError when it is not one)."""
    folder = RunFolder.open(run_dir)
    summary = folder.summary()
    if summary.get("status") == "running" and not folder.training_now():
        summary = {**summary, "status": "stopped"}
    data = _json(folder.data)
    config_text = folder.config.read_text()
    try:
        config = _mapping(yaml.safe_load(config_text))
    except yaml.YAMLError:
        config = {}
    rows = folder.rows()
    plots = {path.stem: path for path in sorted(folder.plots.glob("*.png"))} if folder.plots.is_dir() else {}
    records = RunRecords(folder, summary, data, config_text, config, rows, plots, _explanations(folder.path))
    findings = summary.get("doctor")
    if isinstance(findings, list):
        records.doctor = [finding for finding in findings if isinstance(finding, dict)]
    elif summary:  # a run from before the doctor kept its findings: diagnose its records now
        records.doctor = [finding.to_dict() for finding in diagnose(rows, summary, data, config)]
        records.doctor_recorded = False
    return records


def _explanations(run_dir: Path) -> list[Explained]:
    found = []
    for record_path in sorted((run_dir / "explanations").glob("*/explanation.json")):
        record = _json(record_path)
        if not record:
            continue
        pictures = sorted(record_path.parent.rglob("*.png"))
        order = {str(entry.get("name", "")).replace(":", "_"): index for index, entry in enumerate(_inputs(record))}
        pictures.sort(key=lambda path: order.get(path.stem, len(order)))  # as the record lists the inputs
        found.append(Explained(record_path.parent, record, pictures))
    return found


def _inputs(record: dict) -> list[dict]:
    inputs = record.get("inputs")
    return [entry for entry in inputs if isinstance(entry, dict)] if isinstance(inputs, list) else []


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
