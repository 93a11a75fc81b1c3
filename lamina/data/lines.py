"""Lines of a text file, by one rule wherever lamina reads lines (labelled text, CSV tables, time series, texts
to predict): a line ends at `\\n` or `\\r\\n`, and nowhere else.

`str.splitlines()` also breaks at `\\r`, `\\x0b`, `\\x0c`, `\\x1c`–`\\x1e`, U+0085, U+2028 and U+2029, which occur
inside real messages (pasted text, old encodings); breaking there cuts a text in two and moves every later line
number away from the one an editor shows. A line number here is the count of `\\n` before the line, plus one.

    >>> split_lines("ham\\tsee you\\x85soon\\r\\nspam\\twin\\u2028now\\x0c\\n")
    ['ham\\tsee you\\x85soon', 'spam\\twin\\u2028now\\x0c']
"""

from __future__ import annotations

import csv
from pathlib import Path

from lamina.core.errors import DataError

__all__ = ["split_lines", "delimited_rows", "separator_hint", "SEPARATORS"]

SEPARATORS = (",", "\t", ";", "|")  # the separators a delimited file commonly uses


def split_lines(text: str) -> list[str]:
    """The lines of `text`, without their `\\n` or `\\r\\n`; a final line break ends the last line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def delimited_rows(lines: list[str], separator: str, path: Path, what: str = "") -> tuple[list[list[str]], list[int]]:
    """The rows of a delimited (CSV) file's `lines` that are not blank, and the line number each row starts on (a
    quoted field may span lines; blank lines are counted, so the number is an editor's). DataError for broken
    quoting."""
    reader = csv.reader((line + "\n" for line in lines), delimiter=separator)
    rows, starts, previous = [], [], 0
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
                starts.append(previous + 1)
            previous = reader.line_num
    except csv.Error as error:
        line = reader.line_num
        if "new-line character" in str(error):  # csv reads a lone \r as the end of a record
            raise DataError(
                f"{what}{path}, line {line}: a carriage return (\\r) inside an unquoted field",
                "quote that field, or remove the stray \\r",
            ) from None
        raise DataError(f"{what}{path}, line {line}: {error}", "check the quoting on that line") from None
    return rows, starts


def separator_hint(line: str, separator: str, expected: int) -> str | None:
    """A hint naming the separator, when it is the likely cause of a line with the wrong number of fields: the
    line splits into `expected` fields (or more) at another common separator. None otherwise.

    >>> separator_hint("ham,see you soon", "\\t", 2)
    "data.separator is '\\\\t', but this line splits into 2 fields at ','; set data.separator: ','"
    >>> separator_hint("no label here", "\\t", 2) is None
    True
    """
    for other in SEPARATORS:
        if other != separator and len(line.split(other)) >= expected >= 2:
            return (
                f"data.separator is {separator!r}, but this line splits into {len(line.split(other))} fields at "
                f"{other!r}; set data.separator: {other!r}"
            )
    return None
