"""Turn exceptions into one line on stderr and an exit code; never show a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from tether import __version__
from tether.errors import TetherError
from tether.exitcodes import ExitCode
from tether.stamps import file_stamp
from tether.textsafe import printable


def crash_log_dir() -> Path:
    import tempfile  # noqa: PLC0415 (a crash is rare; every command loads this module)

    return Path(os.environ.get("TETHER_LOG_DIR") or tempfile.gettempdir())


def write_crash_log(exc: BaseException) -> Path:
    """Keep the traceback in a private file; the user sees only its name."""
    import tempfile  # noqa: PLC0415 (see crash_log_dir)
    import traceback  # noqa: PLC0415

    stamp = file_stamp()
    folder = crash_log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"tether-crash-{stamp}-", suffix=".log", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as log:
        log.write(f"tether {__version__}, python {sys.version.split()[0]}\n")
        log.write(f"argv: {' '.join(sys.argv[1:2])} ...\n\n")  # later args may hold secrets
        log.write("".join(traceback.format_exception(exc)))
    return Path(name)


def silence_stdout() -> None:
    """The reader went away (`tether status | head -1`): end quietly, no flush error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test runner's capture)
        pass
    finally:
        os.close(devnull)


@contextlib.contextmanager
def error_handler() -> Iterator[list[int]]:
    """Yields a one-item list the caller may set to an exit code; maps exceptions otherwise."""
    result = [int(ExitCode.OK)]
    try:
        yield result
    except BrokenPipeError:
        silence_stdout()
        result[0] = int(ExitCode.CLOSED_PIPE)
    except TetherError as exc:
        click.echo(f"tether: {printable(exc.line())}", err=True)
        result[0] = int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("tether: interrupted", err=True)
        result[0] = int(ExitCode.INTERRUPTED)
    except click.exceptions.Exit as exc:
        result[0] = exc.exit_code
    except click.ClickException:
        raise
    except Exception as exc:
        try:
            where = f"the traceback is in {write_crash_log(exc)}"
        except OSError:
            where = "no log could be written"
        click.echo(
            f"tether: internal error ({type(exc).__name__}); {where}; please report it",
            err=True,
        )
        result[0] = int(ExitCode.BUG)
