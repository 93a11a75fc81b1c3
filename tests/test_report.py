"""`lamina report`: the model card of a run folder, as HTML (one self-contained file) and Markdown, read as text
and rendered in headless Chromium (skipped where no chromium binary exists). A short digits run is trained once;
copies of it get the summary entries of the other insight features (groups, calibration, compute, energy) in the
shapes docs/insight.md gives, and hostile text (a class named '<script>…')."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageStat

from conftest import run_cli, tiny_config
from lamina.core.errors import ConfigError, RunError
from lamina.report import write_report
from lamina.report.document import NOT_RECORDED, number
from lamina.report.limits import known_limits, wilson_interval
from lamina.report.markdown import pictures_folder
from lamina.report.records import read_records

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-epoch digits CNN with three test images explained at the end (pictures in explanations/)."""
    import lamina

    config = tiny_config(epochs=1) | {"explain": {"enabled": True, "count": 3}}
    run = lamina.train(config, runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")
    return run.dir


def _interval(value: float, low: float, high: float) -> dict:
    return {"value": value, "low": low, "high": high}


@pytest.fixture(scope="module")
def audited(trained, tmp_path_factory) -> Path:
    """A copy of the run with every new summary entry, a reliability diagram, a hostile class name and warning."""
    path = tmp_path_factory.mktemp("audited") / trained.name
    shutil.copytree(trained, path, ignore=shutil.ignore_patterns("checkpoints", "*.safetensors"))
    summary = json.loads((path / "summary.json").read_text())
    group = {"count": 16, "accuracy": _interval(0.8125, 0.701, 0.9), "recall_macro": 0.8}
    summary["groups"] = {
        "writer": {
            "source": "a regular expression on the file name",
            "unseen": ["w9"],
            "interval": {"method": "bootstrap percentile", "resamples": 1000, "level": 0.95},
            "splits": {
                "test": {
                    "groups": {"w1": group, "w9": {**group, "count": 4, "accuracy": _interval(0.5, 0.25, 0.75)}},
                    "gaps": {
                        "accuracy": {**_interval(0.3125, 0.0625, 0.55), "between": ["w1", "w9"]},
                        "demographic_parity_difference": _interval(0.1, -0.05, 0.2),
                        "equalized_odds_difference": _interval(0.2, 0.0, 0.4),
                    },
                    "worst_group": {"name": "w9", "accuracy": _interval(0.5, 0.25, 0.75)},
                }
            },
        }
    }
    figures = {"ece": 0.0712, "mce": 0.2, "brier": 0.3, "nll": 0.9}
    summary["calibration"] = {
        "bins": 15,
        "splits": {"val": figures, "test": figures},
        "plot": "plots/reliability.png",
        "temperature": {
            "value": 1.7,
            "fitted_on": "val",
            "before": {"test": figures},
            "after": {"test": {"ece": 0.0231, "mce": 0.1, "brier": 0.28, "nll": 0.7}},
        },
    }
    summary["compute"] = {"flops_per_sample": 123456, "training_flops": 9.87e12, "threads": 1, "device": "cpu"}
    summary["energy"] = {
        "label": "estimated",
        "method": "cpu_estimate",
        "assumptions": ["7.5 W per busy core (the configured default)"],
        "joules": 42.5,
        "kwh": 42.5 / 3.6e6,
        "co2e_grams": 0.0047,
        "grid_intensity_g_per_kwh": 400.0,
        "grid_source": "a documented default",
    }
    (path / "summary.json").write_text(json.dumps(summary))
    data = json.loads((path / "data.json").read_text())
    data["spec"]["class_names"] = [HOSTILE, *map(str, range(1, 10))]
    data["warnings"] = ["<img src=x onerror=alert(2)> in a warning"]
    (path / "data.json").write_text(json.dumps(data))
    Image.new("RGB", (120, 90), (200, 60, 40)).save(path / "plots" / "reliability.png")
    return path


def _attributes(html: str) -> tuple[list[str], list[str]]:
    """The src of every <img> and the href of every link of a page, as a browser parses them."""

    class Reader(HTMLParser):
        sources: list[str] = []
        links: list[str] = []

        def handle_starttag(self, tag, attrs):
            values = dict(attrs)
            if "src" in values:
                self.sources.append(values["src"])
            if "href" in values:
                self.links.append(values["href"])

    reader = Reader()
    reader.sources, reader.links = [], []
    reader.feed(html)
    return reader.sources, reader.links


def _text(html: str) -> str:
    """The text a reader sees (tags dropped, entities read, runs of space collapsed)."""
    from html import unescape

    html = re.sub(r"<(style|script)>.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_html_report_of_a_trained_run_holds_its_figures_and_nothing_from_outside(trained):
    path = write_report(trained)
    html = path.read_text()
    text = _text(html)
    summary = json.loads((trained / "summary.json").read_text())
    for heading in ("Model details", "Intended use and data", "Training", "Results", "Explanations", "Known limits"):
        assert f">{heading}</h2>" in html
    accuracy = summary["metrics"]["test"]["accuracy"]
    assert f"accuracy {number(summary['metrics']['val']['accuracy'])} {number(accuracy)}" in text
    assert f"parameters {summary['parameters']:,}" in text
    matrix = summary["metrics"]["test"]["confusion_matrix"]
    correct, total = sum(matrix[i][i] for i in range(10)), sum(map(sum, matrix))
    low, high = wilson_interval(correct, total)
    assert correct / total == pytest.approx(accuracy) and f"[{low:.4f}, {high:.4f}] of {total}" in text
    assert f"Groups: {NOT_RECORDED}" in text  # no data.groups in this config
    # every run records its compute and (here, with no RAPL/NVML: estimated) energy
    energy = summary["energy"]
    assert f"Energy and CO2e: {NOT_RECORDED}" not in text and energy["label"].upper() in text
    assert "Class balance class train val test 0 " in text  # data.json's facts: every split
    # curves, the reliability diagram, the explanation grid: each a PNG inside the page; links only inside it
    sources, links = _attributes(html)
    assert len(sources) == 4 and all(source.startswith("data:image/png;base64,") for source in sources)
    assert links and all(link.startswith("#") for link in links)
    assert "http" not in "".join(sources + links)
    explained = summary["explain"]
    assert (
        f"rank correlation with a randomized model {number(explained['sanity_check']['randomized_rank_correlation'])}"
        in text
    )


def test_the_recorded_audits_show_with_their_intervals_labels_and_limits(audited):
    html = write_report(audited).read_text()
    text = _text(html)
    assert "writer: a regular expression on the file name Samples per writer group writer test w1 16 w9 4" in text
    assert "w9 4 0.5000 [0.2500, 0.7500] 0.8000" in text  # per group: count, accuracy [interval], a plain figure
    assert (
        "accuracy (w1 − w9) 0.3125 [0.0625, 0.5500]" in text
        and "worst group: w9 accuracy 0.5000 [0.2500, 0.7500]" in text
    )
    assert "test ECE 0.0712 0.0231" in text  # before and after temperature scaling
    assert "42.5 J = 0.000012 kWh (ESTIMATED)" in text and "7.5 W per busy core (the configured default)" in text
    assert "training flops 9.87 TFLOPs (9,870,000,000,000)" in text
    limits = text.rsplit("Known limits", 1)[1]
    assert "1 writer group(s) in test never appear in train (w9)" in limits
    assert "Accuracy differs across writer groups in test by 0.3125 (95 % interval [0.0625, 0.5500]" in limits
    assert "The energy (42.5 J) and CO2e are estimated (cpu_estimate)" in limits
    assert "miscalibrated on test (ECE 0.0712)" in limits
    # text from the run's files is text: one script (the report's own), no image but the four PNGs
    assert html.count("<script") == 1 and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<img") == 4 and "onerror=alert(2)" in text


def test_a_damaged_picture_is_said_in_words_not_embedded(audited, tmp_path):
    path = tmp_path / audited.name
    shutil.copytree(audited, path)
    whole = (path / "plots" / "reliability.png").read_bytes()
    (path / "plots" / "reliability.png").write_bytes(whole[: len(whole) // 2])  # a PNG cut short: its header reads
    html = write_report(path).read_text()
    assert html.count("<img") == 3
    assert f"reliability diagram: {path / 'plots' / 'reliability.png'} is missing, not a PNG or damaged." in _text(html)


DAMAGED = {
    "groups": {"writer": {"splits": {"test": {"groups": {"w1": 3}, "gaps": [1], "worst_group": "w1"}}, "unseen": "w9"}},
    "calibration": {"splits": {"test": 3}, "temperature": {"before": {"test": 1}, "after": 2}, "plot": 5},
    "energy": {"assumptions": "one", "joules": "many", "label": "estimated"},
    "compute": [1],
    "budget": "kwh",
    "doctor": [3, {"kind": "x"}],
    "threshold": [0.5],
    "metrics": {"test": {"confusion_matrix": [[1, 2]], "accuracy": "high"}, "val": 3},
    "warnings": "one",
    "best": 3,
}


@pytest.mark.parametrize("key", sorted(DAMAGED))
def test_summary_entries_of_another_shape_read_as_absent_not_as_an_error(audited, tmp_path, key):
    path = tmp_path / audited.name
    shutil.copytree(audited, path, ignore=shutil.ignore_patterns("*.png"))
    summary = json.loads((path / "summary.json").read_text())
    (path / "summary.json").write_text(json.dumps(summary | {key: DAMAGED[key]}))
    text = _text(write_report(path).read_text())
    assert "Known limits" in text and write_report(path, "md").is_file()


def test_a_regression_run_gets_the_sections_that_apply(tmp_path):
    path = tmp_path / "20260101-120000-mlp-regression"
    path.mkdir()
    (path / "config.yaml").write_text(
        yaml.safe_dump({"seed": 1, "data": {"name": "diabetes"}, "model": {"name": "mlp"}})
    )
    spec = {"kind": "tabular", "task": "regression", "input_shape": [10], "output_size": 1}
    (path / "data.json").write_text(json.dumps({"spec": spec, "preprocessing": {"type": "table"}}))
    metrics = {"test": {"loss": 0.51, "mae": 0.43, "r2": 0.4812}}
    (path / "summary.json").write_text(json.dumps({"status": "completed", "metrics": metrics, "doctor": []}))
    text = _text(write_report(path).read_text())
    assert "metric test loss 0.5100 mae 0.4300 r2 0.4812" in text
    assert "Confusion matrix" not in text and "Calibration" not in text and "Class balance" not in text
    assert "date 2026-01-01 12:00:00" in text and "The doctor found no problems." in text
    assert "Known limits The records show none; that does not mean there are none." in text


def test_known_limits_are_written_from_the_facts(trained, tmp_path):
    path = tmp_path / trained.name
    shutil.copytree(trained, path, ignore=shutil.ignore_patterns("checkpoints", "*.safetensors"))
    data = json.loads((path / "data.json").read_text())
    data["facts"]["class_counts"]["train"] = [400, 40] + [100] * 8
    data["facts"]["duplicates"]["test"] = {"count": 7, "of": 360, "examples": [1, 2]}
    (path / "data.json").write_text(json.dumps(data))
    summary = json.loads((path / "summary.json").read_text())
    summary["doctor"] = [{"kind": "overfitting", "severity": "warning", "evidence": "val loss rose", "suggestion": "x"}]
    summary["status"] = "interrupted"
    (path / "summary.json").write_text(json.dumps(summary))
    limits = known_limits(read_records(path))
    assert limits[0] == "The run's status is 'interrupted', not 'completed': its figures are of unfinished weights."
    (path / "summary.json").write_text(
        json.dumps(summary | {"status": "budget", "budget": {"kwh": 1, "reached": "kwh"}})
    )
    assert known_limits(read_records(path))[0].startswith("Training stopped when its kwh budget was reached")
    assert "The classes are imbalanced in train: '0' has 400 samples, '1' 40 (10.0×)" in limits[2]
    assert "7 of the 360 test samples are copies of training samples" in " ".join(limits)
    assert "The training doctor warns (overfitting): val loss rose" in limits


def test_the_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 0/10 → [0, 0.2775], 81/263 → [0.2553, 0.3662]
    assert [round(bound, 4) for bound in wilson_interval(0, 10)] == [0.0, 0.2775]
    assert [round(bound, 4) for bound in wilson_interval(81, 263)] == [0.2553, 0.3662]


def test_the_markdown_report_has_the_same_content_and_its_pictures_beside_it(audited, tmp_path):
    output = tmp_path / "card.md"
    path = write_report(audited, "md", output)
    markdown = path.read_text()
    assert path == output and "## Known limits" in markdown and "### Groups and fairness" in markdown
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(pictures) == 4 and all((tmp_path / picture).read_bytes()[:4] == b"\x89PNG" for picture in pictures)
    assert {Path(picture).parent.name for picture in pictures} == {pictures_folder(output).name} == {"card_files"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and HOSTILE not in markdown
    assert "| w9 | 4 | 0.5000 [0.2500, 0.7500] | 0.8000 |" in markdown


def test_the_command_writes_the_report_without_pytorch_and_refuses_what_it_cannot_read(trained, tmp_path):
    script = (
        "import sys; from lamina.cli.main import main; code = main(sys.argv[1:]); "
        "print('torch' in sys.modules); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "report", str(trained), "--format", "md"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.split() == [str(trained / "report.md"), "False"]
    missing = run_cli("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.startswith(
        f"error: run folder '{tmp_path / 'nowhere'}' does not exist"
    )
    with pytest.raises(ConfigError, match=r"unknown report format 'pdf'; formats: html, md"):
        write_report(trained, "pdf")
    with pytest.raises(RunError, match="is not a lamina run folder"):
        write_report(tmp_path)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium)")
def test_the_report_renders_in_headless_chromium_without_broken_images_or_console_output(audited, tmp_path):
    page = write_report(audited).resolve().as_uri()
    browser = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--user-data-dir=" + str(tmp_path / "profile"),
    ]

    def rendered(uri: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
        dumped = subprocess.run(
            [*browser, "--enable-logging=stderr", "--v=0", "--dump-dom", uri],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        body = re.search(r"<body([^>]*)>", dumped.stdout).group(1)
        return dumped, dict(re.findall(r'data-([a-z-]+)="(\d+)"', body))

    dumped, marks = rendered(page)
    assert marks["images"] == "4" and marks["broken-images"] == "0"  # set by the page's script once it loaded
    assert [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line] == []
    text = _text(dumped.stdout)
    accuracy = json.loads((audited / "summary.json").read_text())["metrics"]["test"]["accuracy"]
    assert "Results Metrics metric val test loss" in text and f" {number(accuracy)} " in text
    assert f"true \\ predicted {HOSTILE} 1 2" in text  # the class name as text, in the confusion matrix
    damaged = tmp_path / "damaged.html"  # the check sees a picture that does not decode
    damaged.write_text(dumped.stdout.replace("<h1>", '<img src="data:image/png;base64,AAAA" alt=""><h1>', 1))
    assert rendered(damaged.as_uri())[1]["broken-images"] == "1"
    height = int(marks["page-height"])
    shot = tmp_path / "report.png"
    taken = subprocess.run(
        [*browser, f"--window-size=1200,{min(height, 8000)}", f"--screenshot={shot}", page],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1200, min(height, 8000)) and height > 3000
    assert ImageStat.Stat(image).stddev[0] > 20  # text, tables and plots: far from a blank page


def test_many_classes_recalls_per_group_get_a_table_of_their_own(audited, tmp_path):
    """Ten classes' recalls per group would make the group table ten columns wider: they get a classes × groups
    table instead, values only."""
    path = tmp_path / audited.name
    shutil.copytree(audited, path)
    summary = json.loads((path / "summary.json").read_text())
    groups = summary["groups"]["writer"]["splits"]["test"]["groups"]
    for index, name in enumerate(groups):
        groups[name] = {key: value for key, value in groups[name].items() if key != "recall_macro"}
        groups[name].update({f"recall_{c}": _interval(0.5 + 0.05 * c - 0.1 * index, 0.0, 1.0) for c in range(10)})
    (path / "summary.json").write_text(json.dumps(summary))
    text = _text(write_report(path).read_text())
    assert "test: per writer group writer count accuracy w1 16 0.8125 [0.7010, 0.9000] w9 4" in text
    assert (
        "recall of each class per writer group (intervals in summary.json) class w1 w9 0 0.5000 0.4000 1 0.5500" in text
    )
