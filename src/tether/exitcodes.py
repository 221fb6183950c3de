"""The exit codes every tether command uses; `tether --help` and docs/index.md list them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing to do, or the command did what was asked
    CHANGES = 1  # changes pending (a plan with writes in it)
    USAGE = 2  # the command line is wrong (click's own code)
    ATTENTION = 3  # needs a person: drift, conflict, preexisting, blocked, findings, stale source
    ERROR = 4  # tether could not do the job: bad input, unreachable remote, permissions...
    BUG = 70  # an unexpected exception; the traceback is in the log file named on stderr
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODE_TABLE = (
    (ExitCode.OK, "nothing to do / success"),
    (ExitCode.CHANGES, "changes pending (plan only)"),
    (ExitCode.USAGE, "usage error"),
    (
        ExitCode.ATTENTION,
        "needs attention (drift, conflict, blocked, findings, stale source, lock held)",
    ),
    (ExitCode.ERROR, "error (bad input, remote, permissions; one line on stderr)"),
    (ExitCode.BUG, "internal error (traceback in the log file named on stderr)"),
    (ExitCode.INTERRUPTED, "interrupted"),
)
