"""The only errors a user sees. Each says what is wrong, where, and what to do."""

from __future__ import annotations

import sys

from tether.exitcodes import ExitCode
from tether.textsafe import printable

_said = [0]  # warnings said by this process (a plan that warned is never cached)


def warn(line: str) -> None:
    """One `tether: ...` line on stderr, from layers below the CLI (which never import click)."""
    _said[0] += 1
    print(f"tether: {printable(line)}", file=sys.stderr, flush=True)


def warnings_said() -> int:
    return _said[0]


class TetherError(Exception):
    """An error that reaches the user as one line on stderr.

    `where` is a location such as ``tether.yaml:3:5`` or a path; `hint` says what to do.
    """

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def line(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text

    def __str__(self) -> str:
        return self.line()


class UsageError(TetherError):
    """Options that do not fit together."""

    exit_code = ExitCode.USAGE


class ProblemsError(TetherError):
    """A file with several problems, each a `where: what` line, all reported at once."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        super().__init__(problems[0] if problems else f"invalid {self.subject}", hint=hint)
        self.problems = problems

    subject = "file"

    def line(self) -> str:
        return "\n".join(self.problems) if len(self.problems) > 1 else super().line()


class ManifestError(ProblemsError):
    """tether.yaml is unreadable, not YAML, or not valid against the schema."""

    subject = "manifest"


class InventoryError(ProblemsError):
    """include-paths.txt is unreadable or holds an unsafe path."""

    subject = "inventory"


class SourceError(TetherError):
    """The desired state cannot be read (no tether.yaml, missing folder, bad ref)."""


class GitError(TetherError):
    """A remote or the local mirror failed."""


class SecretError(TetherError):
    """The secret store is unsafe, unreadable or incomplete."""


class HostError(TetherError):
    """Writing to the host failed (permissions, full disk, unsafe path)."""


class StateError(TetherError):
    """The state dir, ledger or a saved plan is unusable."""


class LockError(TetherError):
    """Another tether run holds the lock."""

    exit_code = ExitCode.ATTENTION
