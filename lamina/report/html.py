"""The report as one self-contained HTML page: inline CSS, pictures as base64 data URIs, every text escaped, no URL
outside the page (links are #anchors only). A few lines of inline script mark the <body>, once the page has
loaded, with how many pictures it holds and how many failed to decode (data-images, data-broken-images) and with
its height in pixels (data-page-height): a browser test reads them from the DOM (tests/test_report.py)."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from PIL import Image

from lamina.report.document import Absent, Block, Code, Document, Items, Paragraph, Picture, Section, Table

__all__ = ["render_html", "data_uri"]

STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --band: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1120px; padding: 24px 32px 64px; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 17px; margin: 24px 0 6px; }
.subtitle { color: var(--muted); margin: 0 0 12px; }
nav { background: var(--band); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
table { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 2px 0 4px; }
th, td { border: 1px solid var(--line); padding: 3px 9px; text-align: left; vertical-align: top; }
thead th { background: var(--band); }
tbody th { font-weight: 500; background: #fbfcfd; }
td { max-width: 520px; }
.absent { color: var(--muted); font-style: italic; }
figure { display: inline-block; margin: 8px 16px 12px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid var(--line); image-rendering: auto; }
figcaption { color: var(--muted); font-size: 13px; }
details { margin: 10px 0; }
summary { cursor: pointer; color: var(--accent); }
pre { background: var(--band); border: 1px solid var(--line); padding: 10px; overflow-x: auto; font-size: 13px; }
"""

# Marks the page once loaded (see the module's docstring): no request, no console output.
SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (image) { return !image.complete || image.naturalWidth === 0; });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-broken-images", String(broken.length));
  document.body.setAttribute("data-page-height", String(document.documentElement.scrollHeight));
});
"""


def data_uri(path: Path) -> str | None:
    """A PNG file as a data URI; None when the file is missing, not a PNG or damaged (decoded in full here, so that
    a truncated file is said in words rather than shown as a broken picture)."""
    try:
        content = path.read_bytes()
        with Image.open(io.BytesIO(content)) as image:
            if image.format != "PNG":
                return None
            image.load()
    except (OSError, SyntaxError, ValueError):  # Pillow: unreadable, unidentified or truncated
        return None
    return "data:image/png;base64," + base64.b64encode(content).decode("ascii")


def render_html(document: Document) -> str:
    contents = " ".join(
        f'<a href="#{section.anchor}">{escape(section.title)}</a>'
        for section in document.sections
        if section.level == 2
    )
    body = "\n".join(_section(section) for section in document.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(document.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(document.title)}</h1>\n"
        f'<p class="subtitle">{escape(document.subtitle)}</p>\n'
        f"<nav>{contents}</nav>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _section(section: Section) -> str:
    tag = f"h{section.level}"
    heading = f'<{tag} id="{section.anchor}">{escape(section.title)}</{tag}>'
    return "\n".join([heading, *(_block(block) for block in section.blocks)])


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Absent):
        return f'<p class="absent">{escape(block.text())}</p>'
    if isinstance(block, Items):
        return "<ul>" + "".join(f"<li>{escape(entry)}</li>" for entry in block.entries) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Picture):
        uri = data_uri(block.path)
        if uri is None:
            return f'<p class="absent">{escape(block.caption)}: {escape(str(block.path))} is missing, not a PNG or damaged.</p>'
        caption = escape(block.caption)
        return f'<figure><img src="{uri}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
    if isinstance(block, Code):
        opened = "" if block.folded else " open"
        return f"<details{opened}><summary>{escape(block.title)}</summary><pre>{escape(block.text)}</pre></details>"
    raise TypeError(f"no HTML for {type(block).__name__}")


def _table(table: Table) -> str:
    parts = ["<table>"]
    if table.caption:
        parts.append(f"<caption>{escape(table.caption)}</caption>")
    if any(table.header):
        parts.append("<thead><tr>" + "".join(f'<th scope="col">{escape(cell)}</th>' for cell in table.header))
        parts.append("</tr></thead>")
    parts.append("<tbody>")
    for row in table.rows:
        label, *cells = row
        parts.append(
            f'<tr><th scope="row">{escape(label)}</th>'
            + "".join(f"<td>{escape(cell)}</td>" for cell in cells)
            + "</tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)
