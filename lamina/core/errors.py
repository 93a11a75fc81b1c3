"""Errors a user can cause. Each says what was received, what is allowed and how to fix it.

The CLI prints a `LaminaError` in one or two lines and exits 2; anything else is a bug in lamina (exit 1).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable

__all__ = [
    "LaminaError",
    "ConfigError",
    "DataError",
    "ModelError",
    "RunError",
    "UsageError",
    "RunInterrupted",
    "TrainingDiverged",
    "Problem",
    "did_you_mean",
    "resolved",
]


def did_you_mean(received: str, allowed: Iterable[str]) -> str | None:
    """The closest allowed name to `received`, or None when nothing is close.

    Example:
        >>> did_you_mean("adamm", ["sgd", "adam", "adamw"]), did_you_mean("acc", ["accuracy", "roc_auc"])
        ('adam', 'accuracy')
    """
    allowed = list(allowed)
    lowered = {name.lower(): name for name in allowed}
    text = str(received).lower()
    matches = difflib.get_close_matches(text, list(lowered), n=1, cutoff=0.6)
    if matches:
        return lowered[matches[0]]
    # an abbreviation such as 'acc' for 'accuracy'
    starts = [name for name in lowered if len(text) >= 2 and name.startswith(text)]
    return lowered[starts[0]] if len(starts) == 1 else None


def resolved(path: str | os.PathLike) -> str:
    """' (resolved to /the/absolute/path)' for a relative path or one starting with ~, '' for an absolute one: where
    lamina looked for a path it did not find, said after the path as the user gave it.

    Example:
        >>> resolved("/data/x.csv"), resolved("x.csv") == f" (resolved to {os.path.join(os.getcwd(), 'x.csv')})"
        ('', True)
    """
    text = os.fspath(path)
    return "" if os.path.isabs(text) else f" (resolved to {os.path.abspath(os.path.expanduser(text))})"


class LaminaError(Exception):
    """Base class of every error a user can cause (bad config, data, files or run folders): what is wrong, and a
    hint on how to fix it.

    Example:
        >>> print(DataError("CSV file 'x.csv' does not exist", "check data.path"))
        CSV file 'x.csv' does not exist
          hint: check data.path
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class Problem:
    """One problem found in a config: where (dotted path), what is wrong, and how to fix it."""

    def __init__(self, path: str, message: str, hint: str | None = None):
        self.path, self.message, self.hint = path, message, hint

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return text if not self.hint else f"{text}; {self.hint}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class ConfigError(LaminaError):
    """A config (YAML, overrides or Python dict) that does not validate. Lists every problem at once.

    Example:
        >>> print(ConfigError([Problem("train.epochs", "should be at least 1; received 0"),
        ...                    Problem("model.name", "unknown model 'cnnn'", "did you mean 'cnn'?")], "bad.yaml"))
        config has 2 problems in bad.yaml:
          - train.epochs: should be at least 1; received 0
          - model.name: unknown model 'cnnn'; did you mean 'cnn'?
    """

    def __init__(self, problems: list[Problem] | str, source: str | None = None, hint: str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", problems, hint)]
            hint = None
        self.problems = problems
        where = f" in {source}" if source else ""
        if len(problems) == 1:
            message = f"config problem{where}: {problems[0]}"
        else:
            lines = "\n".join(f"  - {problem}" for problem in problems)
            message = f"config has {len(problems)} problems{where}:\n{lines}"
        super().__init__(message, hint)


class DataError(LaminaError):
    """Data that cannot be read or does not fit the task: missing folders, corrupt files, bad columns."""


class ModelError(LaminaError):
    """A model that cannot be built for the data it is given (e.g. a CNN on tabular rows)."""


class RunError(LaminaError):
    """A run folder that is missing, incomplete or cannot be resumed."""


class UsageError(LaminaError):
    """A command-line option that does not fit the command or the run it is given, or a value out of its range
    (`lamina generate --samples 4` on a language model)."""


class TrainingDiverged(LaminaError):
    """Training diverged: the loss or the weights are no longer finite, or the loss exploded. The run's status
    becomes `diverged`; its last finite checkpoint and its best one stay."""

    HINT = (
        "lower train.optimizer.learning_rate, set train.gradient_clip (e.g. 1.0), or add warmup_steps to the "
        "schedule, then train again"
    )

    def __init__(self, message: str, hint: str = HINT):
        super().__init__(f"training diverged: {message}", hint)


class RunInterrupted(Exception):
    """Training stopped on Ctrl-C after saving a resumable checkpoint (not a user error: exit code 130)."""

    def __init__(self, run_dir):
        super().__init__(f"interrupted; resume with: lamina train --resume {run_dir}")
        self.run_dir = run_dir
