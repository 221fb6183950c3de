"""The exit codes every tether command uses; `tether --help` and docs/index.md list them.

Scripts can trust them: 0 is success (a plan with changes pending included), any failure is 1,
2 is "changes pending" only when `--detailed-exitcode` asks for it (as terraform's plan does).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the command did what was asked (a plan with changes pending included)
    ERROR = 1  # tether could not do the job: bad input, unreachable remote, permissions...
    CHANGES = 2  # changes pending: only with --detailed-exitcode (else a pending plan is OK)
    ATTENTION = 3  # needs a person: drift, conflict, preexisting, blocked, findings, stale source
    USAGE = 64  # the command line is wrong (EX_USAGE of sysexits.h)
    BUG = 70  # an unexpected exception or a broken install (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    CLOSED_PIPE = 141  # stdout was closed early, e.g. `tether status | head -1` (128 + SIGPIPE)


EXIT_CODE_TABLE = (
    (ExitCode.OK, "success (a plan with changes pending included)"),
    (ExitCode.ERROR, "error (bad input, remote, permissions; one line on stderr)"),
    (ExitCode.CHANGES, "changes pending, only with --detailed-exitcode"),
    (
        ExitCode.ATTENTION,
        "needs attention (drift, conflict, blocked, findings, stale source, lock held)",
    ),
    (ExitCode.USAGE, "usage error"),
    (ExitCode.BUG, "internal error (traceback in the log file named on stderr)"),
    (ExitCode.INTERRUPTED, "interrupted"),
    (ExitCode.CLOSED_PIPE, "stdout closed before the output ended (nothing printed)"),
)

# From least to most severe: what a run reports when two outcomes meet.
_SEVERITY = (
    ExitCode.OK,
    ExitCode.CHANGES,
    ExitCode.ATTENTION,
    ExitCode.ERROR,
    ExitCode.USAGE,
    ExitCode.BUG,
    ExitCode.CLOSED_PIPE,
    ExitCode.INTERRUPTED,
)


def worst(*codes: ExitCode) -> ExitCode:
    """The most severe of `codes` (an error outranks attention, attention outranks changes)."""
    return max(codes, key=_SEVERITY.index)


def for_process(code: int, *, detailed: bool) -> int:
    """The code the process exits with: "changes pending" is success unless asked to tell it."""
    if code == ExitCode.CHANGES and not detailed:
        return int(ExitCode.OK)
    return int(code)
