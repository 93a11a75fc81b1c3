"""The run report: a model card (after Mitchell et al. 2019) of one run folder, written as one self-contained HTML
page (inline CSS, pictures as data URIs, no network) or as Markdown with its pictures beside it.

    >>> import tempfile, lamina
    >>> from lamina.report import write_report
    >>> run = lamina.train({"data": "digits", "model": "mlp", "train": {"epochs": 1}}, runs_dir=tempfile.mkdtemp(),
    ...                    progress="quiet")
    >>> path = write_report(run.dir)
    >>> path.name, "Known limits" in path.read_text()
    ('report.html', True)

It reads only the run's files (no PyTorch): records.py reads them, card.py, results.py and insight.py turn them
into a `Document` of sections (document.py), html.py and markdown.py write it.
"""

from __future__ import annotations

from pathlib import Path

from lamina.artifacts.folder import atomic_write
from lamina.core.errors import ConfigError
from lamina.core.version import __version__
from lamina.report.card import intended_use_and_data, model_details, training
from lamina.report.document import Document
from lamina.report.html import render_html
from lamina.report.insight import doctor, explanations, limits
from lamina.report.markdown import render_markdown
from lamina.report.records import RunRecords, read_records
from lamina.report.results import results

__all__ = ["write_report", "report_document", "FORMATS"]

FORMATS = ("html", "md")


def report_document(records: RunRecords) -> Document:
    """The model card of a run as sections of plain values."""
    summary = records.summary
    subtitle = (
        f"{summary.get('model', records.setting('model.name', '?'))} on {summary.get('data', '?')} · status "
        f"{summary.get('status', 'unknown')} · started {records.date} · written by lamina {__version__} report"
    )
    sections = [
        model_details(records),
        *intended_use_and_data(records),
        *training(records),
        *results(records),
        explanations(records),
        doctor(records),
        limits(records),
    ]
    return Document(f"Model card: {records.folder.id}", subtitle, sections)


def write_report(run_dir: str | Path, format: str = "html", output: str | Path | None = None) -> Path:
    """Write the run's report (default RUN/report.html or RUN/report.md) atomically and return its path.

    Args:
        run_dir: a run folder.
        format: "html" (one self-contained file) or "md" (Markdown; its pictures go to a folder beside it,
            named after it: report.md → report_files/).
        output: the file to write instead of RUN/report.FORMAT.

    Raises:
        RunError: `run_dir` is not a run folder. ConfigError: an unknown format.
    """
    if format not in FORMATS:
        raise ConfigError(
            f"unknown report format {format!r}; formats: {', '.join(FORMATS)}", "pass --format html or --format md"
        )
    records = read_records(run_dir)
    path = Path(output) if output is not None else records.folder.path / f"report.{format}"
    document = report_document(records)
    if format == "html":
        atomic_write(path, render_html(document))
    else:
        atomic_write(path, render_markdown(document, path))
    return path
