"""Render `lamina report` of finished runs in headless Chromium, as tests/test_report.py does for a small run: the
page's own script counts its pictures and the broken ones, the console must stay silent, and a full-page screenshot
must not be blank. Prints one line per run; exits 1 when any check fails.

    .venv/bin/python bench/report_render.py runs/insight/*-cifar10_airbench runs/insight/*-breastmnist_resnet \
        runs/<fsdd-crnn-speakers run> [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def render(run: Path, screenshots: Path, profile: Path) -> tuple[bool, str]:
    from PIL import Image, ImageStat

    from lamina.report import write_report

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium binary (Debian: apt-get install chromium)")
    page = write_report(run)
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    dumped = subprocess.run(
        [*command, "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    body = re.search(r"<body([^>]*)>", dumped.stdout)
    marks = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body.group(1))) if body else {}
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    height = int(marks.get("page-height", 0))
    shot = screenshots / f"{run.name}.png"
    subprocess.run(
        [*command, f"--window-size=1200,{max(height, 600)}", f"--screenshot={shot}", page.resolve().as_uri()],
        capture_output=True,
        timeout=120,
    )
    spread = ImageStat.Stat(Image.open(shot).convert("L")).stddev[0] if shot.is_file() else 0.0
    passed = (
        dumped.returncode == 0
        and int(marks.get("images", 0)) > 0
        and marks.get("broken-images") == "0"
        and not console
        and spread > 20
    )
    line = (
        f"{run.name}: {'ok' if passed else 'FAILED'}; report {page.stat().st_size:,} bytes, "
        f"{marks.get('images', '?')} pictures, {marks.get('broken-images', '?')} broken, {len(console)} console "
        f"lines, page {height:,} px, screenshot {shot} (grey-level spread {spread:.0f})"
    )
    return passed, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--screenshots", type=Path, default=None, help="default: a temporary folder")
    arguments = parser.parse_args()
    screenshots = arguments.screenshots or Path(tempfile.mkdtemp(prefix="lamina-report-"))
    screenshots.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as profile:
        for run in arguments.runs:
            passed, line = render(
                run, screenshots, Path(profile) / run.name
            )  # a fresh profile each: no window size carried over
            print(line, flush=True)
            results.append(passed)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
