"""Record every reconcile/capture run in the run history (and metrics), however it ends."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import TetherError, warn
from tether.exitcodes import ExitCode
from tether.state.metrics import write_metrics
from tether.state.runs import RunRecord, record_run
from tether.state.services import ServiceRecord, load_services


@dataclass
class RunOutcome:
    """Filled in by the command as it learns what happened."""

    exit_code: int = int(ExitCode.OK)
    counts: Mapping[str, int] = field(default_factory=dict)
    revision_attempted: str | None = None
    revision_applied: str | None = None
    message: str | None = None
    services: list[dict[str, Any]] = field(default_factory=list)  # handler results, masked
    drifted: tuple[str, ...] = ()  # paths changed on the host (for the fleet report only)


def _services(state_dir: Path) -> dict[str, ServiceRecord]:
    try:
        return load_services(state_dir)
    except TetherError:
        return {}  # reported by `tether status` and doctor


@contextlib.contextmanager
def recording(
    state_dir: Path, command: str, metrics_file: Path | None = None, *, history: bool = True
) -> Iterator[RunOutcome]:
    """Yield an outcome to fill; on the way out (an error included) append it to the history
    (unless `history` is off: a capture dry run leaves no trace in the state dir).

    Bookkeeping never changes the run's result: a history that cannot be written is a warning.
    """
    outcome = RunOutcome()
    started = time.time()
    clock = time.monotonic()
    try:
        yield outcome
    except TetherError as exc:
        outcome.exit_code, outcome.message = int(exc.exit_code), exc.line()
        raise
    except KeyboardInterrupt:
        outcome.exit_code, outcome.message = int(ExitCode.INTERRUPTED), "interrupted"
        raise
    except BrokenPipeError:
        outcome.exit_code, outcome.message = int(ExitCode.CLOSED_PIPE), "stdout closed early"
        raise
    except BaseException:
        outcome.exit_code, outcome.message = int(ExitCode.BUG), "internal error"
        raise
    finally:
        run = RunRecord(
            command=command,
            started=started,
            duration=time.monotonic() - clock,
            exit_code=outcome.exit_code,
            counts=dict(outcome.counts),
            revision_attempted=outcome.revision_attempted,
            revision_applied=outcome.revision_applied,
            message=outcome.message,
            services=tuple(outcome.services),
        )
        try:
            if history and state_dir.is_dir():
                record_run(state_dir, run)
            if metrics_file is not None:
                write_metrics(metrics_file, run, _services(state_dir))
        except (TetherError, OSError) as exc:
            why = exc.line() if isinstance(exc, TetherError) else exc.strerror
            warn(f"warning: run not recorded ({why})")
