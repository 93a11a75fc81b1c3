"""Field descriptions from the docstring written below each field, reading each source file once.

pydantic's `use_attribute_docstrings` finds a class's source with `inspect.getmodule`, which scans every loaded
module for each class: with PyTorch loaded, lamina's ~130 options classes spent seconds of every import there.
This finds the class statement the same way (the frame executing it) but compares module names, and parses each
file once.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import sys
from collections.abc import Iterator

__all__ = ["attribute_docstrings", "help_text"]

_SCOPES = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "cf.", "vs.")


def help_text(docstring: str | None) -> str:
    """The help a table shows for a docstring: its first line, continued to the end of the sentence that line is
    in, so no sentence is cut where the source happened to wrap. A period ends a sentence when a space or the end
    follows it, outside brackets and after no abbreviation.

    Example:
        >>> help_text('''Initial bias of the gates; 0 is the default. 1 keeps memory from fading early in
        ...     training (Jozefowicz et al., 2015). Helps long sequences.
        ...
        ...     Example: ...''')
        'Initial bias of the gates; 0 is the default. 1 keeps memory from fading early in training (Jozefowicz et al., 2015).'
    """
    paragraph = []
    for line in inspect.cleandoc(docstring or "").splitlines():
        if not line.strip():
            break
        paragraph.append(line.strip())
    if not paragraph:
        return ""
    text = " ".join(paragraph)
    depth = 0
    for index, character in enumerate(text):
        depth += (character in "([{") - (character in ")]}")
        ends = character in ".!?" and text[index + 1 : index + 2] in ("", " ")
        if ends and depth <= 0 and index + 1 >= len(paragraph[0]) and not text[: index + 1].endswith(_ABBREVIATIONS):
            return text[: index + 1]
    return text


def attribute_docstrings(cls: type) -> dict[str, str]:
    """Field name → the string written below it in `cls`'s class statement; empty when there is no source.

    Call it while `cls` is being created: its statement is the one a frame of its module is executing, so a class
    made without a statement (`create_model`) gets nothing of its own and keeps the descriptions it inherits.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == cls.__module__:
            found = _class_statements_in(frame.f_code.co_filename, frame.f_globals).get(frame.f_lineno)
            if found is not None and found[0] == cls.__name__:
                return dict(found[1])
        frame = frame.f_back
    return {}


def _class_statements_in(filename: str, module_globals: dict) -> dict[int, tuple[str, dict[str, str]]]:
    linecache.checkcache(filename)  # a file edited since it was read (importlib.reload) is read again
    return _class_statements("".join(linecache.getlines(filename, module_globals)))


@functools.lru_cache(maxsize=64)
def _class_statements(source: str) -> dict[int, tuple[str, dict[str, str]]]:
    """Line of each class statement and of its decorators → (class name, its attribute docstrings)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    statements = {}
    for node in _class_definitions(tree.body):
        entry = (node.name, _docstrings_below_fields(node.body))
        for line in (node.lineno, *(decorator.lineno for decorator in node.decorator_list)):
            statements[line] = entry
    return statements


def _class_definitions(statements: list[ast.stmt]) -> Iterator[ast.ClassDef]:
    """Every class statement, also those nested in functions and classes (walking statements, not expressions)."""
    for statement in statements:
        if isinstance(statement, ast.ClassDef):
            yield statement
        for block in _nested_blocks(statement):
            yield from _class_definitions(block)


def _docstrings_below_fields(statements: list[ast.stmt]) -> dict[str, str]:
    """`name: type` followed by a string statement → {name: the string, dedented}. Blocks such as `if` count;
    nested classes and functions do not (their attributes are not this class's). The same rules as pydantic."""
    docstrings = {}
    for previous, statement in zip([None, *statements], statements, strict=False):
        if isinstance(previous, ast.AnnAssign) and isinstance(previous.target, ast.Name) and _is_string(statement):
            docstrings[previous.target.id] = inspect.cleandoc(statement.value.value)
        if not isinstance(statement, _SCOPES):
            for block in _nested_blocks(statement):
                docstrings.update(_docstrings_below_fields(block))
    return docstrings


def _is_string(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _nested_blocks(statement: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists inside a compound statement: bodies, else, finally, except handlers, match cases."""
    for _, value in ast.iter_fields(statement):
        if not isinstance(value, list):
            continue
        if value and isinstance(value[0], ast.stmt):
            yield value
        for item in value:
            if isinstance(item, (ast.excepthandler, ast.match_case)):
                yield item.body
