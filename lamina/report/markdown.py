"""The report as Markdown: the same content as the HTML page; its pictures are copied into a folder beside the file,
named after it (report.md → report_files/), and linked relatively, so the file and its folder move together. Text
from the run's files is escaped (<, >, & as entities; | inside tables), so a viewer renders it as text."""

from __future__ import annotations

from pathlib import Path

from lamina.artifacts.folder import atomic_write
from lamina.report.document import Absent, Block, Code, Document, Items, Paragraph, Picture, Table

__all__ = ["render_markdown", "pictures_folder"]


def pictures_folder(path: Path) -> Path:
    """Where the pictures of the Markdown report `path` go: report.md → report_files/."""
    return path.with_name(f"{path.stem}_files")


def render_markdown(document: Document, path: Path) -> str:
    """The Markdown text of `document`, to be written at `path`; copies its pictures beside it (atomically)."""
    folder, used = pictures_folder(Path(path)), set()
    lines = [f"# {_text(document.title)}", "", f"*{_text(document.subtitle)}*", ""]
    for section in document.sections:
        lines += [f"{'#' * section.level} {_text(section.title)}", ""]
        for block in section.blocks:
            lines += [*_block(block, folder, used), ""]
    return "\n".join(lines).rstrip() + "\n"


def _text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|").replace("\n", " ")


def _block(block: Block, folder: Path, used: set[str]) -> list[str]:
    if isinstance(block, Paragraph):
        return [_text(block.text)]
    if isinstance(block, Absent):
        return [f"*{_text(block.text())}*"]
    if isinstance(block, Items):
        return [f"- {_text(entry)}" for entry in block.entries]
    if isinstance(block, Table):
        header = block.header if any(block.header) else [""] * len(block.header)
        lines = [f"**{_cell(block.caption)}**", ""] if block.caption else []
        lines.append("| " + " | ".join(_cell(cell) for cell in header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in block.rows]
        return lines
    if isinstance(block, Picture):
        name = _unique(f"{block.path.parent.name}-{block.path.name}", used)
        try:
            atomic_write(folder / name, block.path.read_bytes())
        except OSError:
            return [f"*{_text(block.caption)}: {_text(str(block.path))} could not be read.*"]
        return [f"![{_cell(block.caption)}]({folder.name}/{name})"]
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return [f"{_text(block.title)}:", "", f"{fence}yaml", block.text.rstrip("\n"), fence]
    raise TypeError(f"no Markdown for {type(block).__name__}")


def _unique(name: str, used: set[str]) -> str:
    stem, suffix, index = Path(name).stem, Path(name).suffix, 2
    while name in used:
        name, index = f"{stem}-{index}{suffix}", index + 1
    used.add(name)
    return name
