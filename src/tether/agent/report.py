"""The fleet report: after each reconcile and capture, this host's status.json goes to
`refs/tether/status/<host>` on the config repo's remote. Git is the only hub.

What is reported: host, tether version, revisions, time, conditions, counts per action,
pending services and drifted paths. Never a value: no file content, no secret, no URL.
A report that cannot be pushed is a warning; the run's result never depends on it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether import __version__
from tether.errors import GitError, TetherError, UsageError, warn

REPORT_FORMAT = 1


def status_document(
    state_dir: Path,
    host: str,
    *,
    drifted: list[str] | None = None,
    pending_services: list[str] | None = None,
) -> dict[str, Any]:
    """status.json: what `tether fleet` shows for this host."""
    # Imported here, as the git layer is in publish(): a run that reports nowhere needs none.
    from tether.agent.health import RECONCILE_KINDS, build_status  # noqa: PLC0415
    from tether.stamps import utc_stamp  # noqa: PLC0415
    from tether.state.runs import load_runs  # noqa: PLC0415
    from tether.state.services import load_services, pending_names  # noqa: PLC0415

    status = build_status(state_dir)
    by_type = {c["type"]: c["status"] for c in status["conditions"]}
    runs = load_runs(state_dir)
    reconciles = [r for r in runs if r.kind in RECONCILE_KINDS]
    last_reconcile = reconciles[-1] if reconciles else None
    last = runs[-1] if runs else None
    if pending_services is None:
        pending_services = pending_names(load_services(state_dir))
    return {
        "format": REPORT_FORMAT,
        "host": host,
        "tether": __version__,
        "time": utc_stamp(),
        "ready": by_type.get("Ready") == "True" and by_type.get("Stalled") != "True",
        "applied_revision": status["last_applied_revision"],
        "attempted_revision": status["last_attempted_revision"],
        "conditions": status["conditions"],
        "counts": dict(last_reconcile.counts) if last_reconcile else {},
        "last_run": (
            {"command": last.command, "exit_code": last.exit_code, "started": last.started}
            if last
            else None
        ),
        "pending_services": sorted(pending_services or []),
        "drifted": sorted(drifted or []),
        "suspended": status["suspended"],
    }


@dataclass
class Reporter:
    """Filled in as a run learns its host and what drifted; publishes once at the end."""

    state_dir: Path
    remote: str | None  # where to report; None: a --source folder run reports nowhere
    host: str | None = None  # the profile's name; else $TETHER_HOST, else the short hostname
    enabled: bool = True
    drifted: list[str] = field(default_factory=list)
    pending_services: list[str] | None = None  # None: read from the state dir

    def publish(self) -> bool:
        """Push the report; a failure is one warning line. True when the remote took it."""
        if not self.enabled or self.remote is None or not self.state_dir.is_dir():
            return False
        # Imported here: dulwich's import is a third of a plan's start-up, and a run without a
        # remote (a --source folder) never reports.
        from tether.config.hosts import host_name  # noqa: PLC0415
        from tether.git import fleetrefs  # noqa: PLC0415
        from tether.git import remote as gitremote  # noqa: PLC0415

        name = host_name(self.host)
        try:
            remote = gitremote.parse_remote(self.remote)
            document = status_document(
                self.state_dir,
                name,
                drifted=self.drifted,
                pending_services=self.pending_services,
            )
            data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
            result = fleetrefs.push_status(remote, name, data, author=f"tether <tether@{name}>")
        except TetherError as exc:
            warn(f"warning: fleet status not reported: {exc.message}")
            return False
        except OSError as exc:
            warn(f"warning: fleet status not reported: {exc.strerror or exc}")
            return False
        if not result.ok:
            warn(f"warning: fleet status not reported: {result.reason}")
        return result.ok


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Publish after the run, whether it succeeded or failed with a tether error (the run is
    recorded in the history first). An interrupted or crashed run, a wrong command line (an
    unknown --host, say) or a run stopped by a git error (the remote unreachable) does not
    report."""
    try:
        yield reporter
    except (UsageError, GitError):  # the remote (or the mirror) failed: no use pushing
        raise
    except TetherError:
        reporter.publish()
        raise
    reporter.publish()
