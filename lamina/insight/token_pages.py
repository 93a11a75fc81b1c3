"""Token attributions shown to people: a self-contained HTML page (tokens coloured by score, the value on hover)
and lines for the terminal (the text with its strongest tokens coloured, and the top tokens for and against).

A row is one explained input: a heading (what was predicted, with which probability, the true label) and its
pieces — (text, score) in reading order: tokens, or for fastText the words its n-grams came from. Each row is
coloured on its own scale, full colour at its largest |score|, which the row names.
"""

from __future__ import annotations

import html
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from lamina.artifacts.folder import atomic_write
from lamina.insight.heatmaps import scale_of, signed_color

__all__ = ["TokenRow", "write_page", "terminal_lines", "visible"]

TOP = 5  # tokens listed for and against in the terminal
TERMINAL_CHARACTERS = 240  # longer texts are cut in the terminal (the page shows them whole)


@dataclass
class TokenRow:
    """One input's pieces and what is said about it; `after`: a piece shown after the text, outside the scores
    (a language model's predicted next token)."""

    name: str
    heading: str
    pieces: list[tuple[str, float]]
    after: str | None = None


def visible(text: str) -> str:
    """A token as a listing shows it: quoted, with line breaks and tabs escaped."""
    return repr(text)


def _span(text: str, score: float, scale: float) -> str:
    red, green, blue = signed_color(score, scale)
    shown = html.escape(text).replace("\n", "⏎<br>")
    return f'<span style="background:rgb({red},{green},{blue})" title="{score:+.4g}">{shown}</span>'


def write_page(path: Path, rows: list[TokenRow], title: str, notes: list[str]) -> Path:
    """A self-contained HTML page (inline style, no scripts, every text escaped) with one row per input."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}"
        ".row{margin:1.2em 0;padding:.6em;border:1px solid #ddd;border-radius:4px}"
        ".head{font-size:.9em;color:#444;margin-bottom:.4em}"
        ".tokens{font-family:monospace;white-space:pre-wrap;line-height:1.7}"
        ".after{border:1px solid #888;padding:0 .2em;margin-left:.3em}"
        ".key span{padding:0 .4em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p>{html.escape(note)}</p>" for note in notes),
        '<p class="key">colour: <span style="background:rgb(214,39,40);color:white">towards the explained class</span>'
        ' <span style="background:rgb(31,119,180);color:white">against it</span> — each row on its own scale; '
        "hover over a token for its score</p>",
    ]
    for row in rows:
        scale = scale_of(score for _, score in row.pieces)
        spans = "".join(_span(text, score, scale) for text, score in row.pieces)
        after = f'<span class="after">{html.escape(row.after)}</span>' if row.after is not None else ""
        parts.append(
            f'<div class="row"><div class="head"><b>{html.escape(row.name)}</b> — {html.escape(row.heading)} '
            f'(full colour: ±{scale:.3g})</div><div class="tokens">{spans}{after}</div></div>'
        )
    parts.append("</body></html>")
    atomic_write(path, "\n".join(parts) + "\n")
    return path


def _strongest(pieces: list[tuple[str, float]], sign: int) -> str:
    chosen = sorted((piece for piece in pieces if piece[1] * sign > 0), key=lambda piece: -abs(piece[1]))[:TOP]
    return ", ".join(f"{visible(text)} {score:+.3g}" for text, score in chosen) or "none"


def terminal_lines(rows: list[TokenRow], explained: list[str], colour: bool | None = None) -> str:
    """The rows for a terminal: heading, the text (its strongest tokens red or blue where the output is a
    terminal that shows colour; `colour` forces it either way), and the top tokens towards and against
    `explained[i]`, the class (or token) each row explains."""
    colour = sys.stdout.isatty() if colour is None else colour
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=colour, no_color=not colour, width=120, highlight=False)
    for row, target in zip(rows, explained, strict=True):
        console.print(Text(f"{row.name}  {row.heading}", style="bold"))
        scale, line, used = scale_of(score for _, score in row.pieces), Text("  "), 0
        for text, score in row.pieces:
            if used >= TERMINAL_CHARACTERS:
                line.append(" …")
                break
            shown = text.replace("\n", "⏎")
            strength = abs(score) / scale
            style = ("bold red" if score > 0 else "bold blue") if strength >= 0.5 else ("red" if score > 0 else "blue")
            line.append(shown, style=style if strength >= 0.25 else None)
            used += len(shown)
        if row.after is not None:
            line.append(f"  → {row.after}", style="bold")
        console.print(line)
        console.print(f"  towards {target}: {_strongest(row.pieces, 1)}", markup=False)
        console.print(f"  against {target}: {_strongest(row.pieces, -1)}", markup=False)
    return buffer.getvalue().rstrip("\n")
