"""One run of reconcile, the same for `reconcile --plan`, `reconcile --apply`, `apply PLAN.json`
and the agent's ticks: the state dir, the run history, the lock, the journal's recovery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tether.errors import warn
from tether.reconcile.journal import recover
from tether.state.lock import state_lock
from tether.state.runlog import RunOutcome, recording
from tether.state.statedir import ensure_state_dir


@contextlib.contextmanager
def reconcile_session(
    state_dir: Path,
    command: str,
    *,
    writes: bool,
    wait: float = 0.0,
    metrics_file: Path | None = None,
    history: bool = True,
) -> Iterator[RunOutcome]:
    """Yield the run's outcome to fill in; it is recorded in the history (and metrics) however
    the run ends. A run that `writes` holds the lock and first finishes a killed apply; a plan
    only tidies a killed apply's leftovers when no one holds the lock.
    """
    ensure_state_dir(state_dir)
    with recording(state_dir, command, metrics_file, history=history) as outcome:
        if not writes:
            recover(state_dir, have_lock=False)
            yield outcome
            return
        with state_lock(state_dir, command, wait):
            removed = recover(state_dir, have_lock=True)
            if removed:
                warn(f"removed {removed} temp files of an interrupted apply")
            yield outcome
