"""`tether fleet --repo URL`: every host's last report (refs/tether/status/<host>) beside the
branch, from the repo alone: no server, no inventory of hosts beyond what git holds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tether.config.options import check_remote
from tether.errors import UsageError
from tether.exitcodes import ExitCode
from tether.git import fleetrefs
from tether.git import mirror as gitmirror
from tether.git import remote as gitremote
from tether.jsondoc import json_document
from tether.stamps import parse_utc_stamp
from tether.state.metrics import family, label
from tether.state.statedir import ensure_state_dir
from tether.textsafe import counted

DEFAULT_STALE_AFTER = 3 * 5 * 60.0  # three agent intervals of the default 5min
SHOWN_COUNTS = ("drift", "conflict", "blocked")


@dataclass(frozen=True)
class HostRow:
    host: str
    applied_revision: str | None
    behind: int | None
    ready: bool
    stale: bool
    last_run: str | None  # the report's time (UTC)
    age: float | None  # seconds since the report
    counts: dict[str, int]
    pending_services: list[str]
    problem: str | None = None  # an unreadable report

    @property
    def healthy(self) -> bool:
        return self.ready and not self.stale and self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "applied_revision": self.applied_revision,
            "behind": self.behind,
            "ready": self.ready,
            "stale": self.stale,
            "last_run": self.last_run,
            "counts": self.counts,
            "pending_services": self.pending_services,
            "problem": self.problem,
        }


def _row(
    report: fleetrefs.HostReport, mirror: Path, tip: str | None, stale_after: float, now: float
) -> HostRow:
    try:
        doc = json.loads(report.document)
        if not isinstance(doc, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        return HostRow(report.host, None, None, False, True, None, None, {}, [], "unreadable")
    applied = doc.get("applied_revision")
    applied = applied if isinstance(applied, str) else None
    behind = None
    if applied is not None and tip is not None and len(applied) == 40:
        behind = fleetrefs.commits_behind(mirror, tip, applied)
    when = doc.get("time")
    stamp = parse_utc_stamp(when) if isinstance(when, str) else None
    age = max(0.0, now - stamp) if stamp is not None else None
    counts = doc.get("counts")
    services = doc.get("pending_services")
    return HostRow(
        host=report.host,
        applied_revision=applied,
        behind=behind,
        ready=doc.get("ready") is True,
        stale=age is None or age > stale_after,
        last_run=when if isinstance(when, str) else None,
        age=age,
        counts={k: v for k, v in counts.items() if isinstance(v, int)}
        if isinstance(counts, dict)
        else {},
        pending_services=[s for s in services if isinstance(s, str)]
        if isinstance(services, list)
        else [],
    )


def _age_text(age: float | None) -> str:
    if age is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{int(age // size)}{unit}"
    return f"{int(age)}s"


def _line(row: HostRow) -> str:
    revision = row.applied_revision[:12] if row.applied_revision else "-"
    if row.behind:
        revision += f" ({row.behind} behind)"
    elif row.behind is None and row.applied_revision:
        revision += " (not on the branch)"
    ready = "Ready" if row.ready else "NotReady"
    if row.stale:
        ready += ",stale"
    if row.problem:
        ready = row.problem
    counts = " ".join(f"{a}={row.counts.get(a, 0)}" for a in SHOWN_COUNTS)
    services = ",".join(row.pending_services) or "-"
    return (
        f"{row.host:<16} {revision:<30} {_age_text(row.age) + ' ago':<9} {ready:<15} "
        f"{counts}  pending services: {services}"
    )


def _prometheus(rows: list[HostRow]) -> str:
    def per_host(value: Any) -> list[tuple[str, float]]:
        return [(f'host="{label(r.host)}"', float(value(r))) for r in rows]

    lines = [
        *family("tether_fleet_hosts", "gauge", "Hosts that reported.", [("", len(rows))]),
        *family(
            "tether_fleet_host_ready",
            "gauge",
            "1 when the host reported Ready within --stale-after, else 0.",
            per_host(lambda r: r.healthy),
        ),
        *family(
            "tether_fleet_host_behind_commits",
            "gauge",
            "Commits the branch has that the host's applied revision lacks (-1: unknown).",
            per_host(lambda r: -1 if r.behind is None else r.behind),
        ),
        *family(
            "tether_fleet_host_report_age_seconds",
            "gauge",
            "Seconds since the host's last report (-1: unknown).",
            per_host(lambda r: -1 if r.age is None else round(r.age)),
        ),
        *family(
            "tether_fleet_host_pending_services",
            "gauge",
            "Services the host has pending.",
            per_host(lambda r: len(r.pending_services)),
        ),
        *family(
            "tether_fleet_host_files",
            "gauge",
            "Files per plan action in the host's last reconcile.",
            [
                (f'host="{label(r.host)}",action="{label(a)}"', float(r.counts.get(a, 0)))
                for r in rows
                for a in SHOWN_COUNTS
            ],
        ),
    ]
    return "\n".join(line.replace("{}", "") for line in lines) + "\n"


def fleet(
    repo: str,
    state_dir: Path,
    *,
    branch: str | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    as_json: bool = False,
    prometheus: bool = False,
    now: float | None = None,
) -> int:
    """One line per host; ATTENTION when a host is not Ready, has not reported in time, or
    no host has reported at all."""
    if as_json and prometheus:
        raise UsageError("--json and --prometheus print two formats", hint="give one")
    remote = gitremote.parse_remote(check_remote(repo))
    fetched = gitmirror.fetch(remote, ensure_state_dir(state_dir))
    name = branch or (fetched.head or "refs/heads/main").removeprefix("refs/heads/")
    tip = fetched.refs.get(f"refs/heads/{name}")
    if branch is not None and tip is None:
        raise UsageError(
            f"{remote.display}: no branch {branch!r}", hint="pass an existing --branch"
        )
    reports = fleetrefs.fetch_statuses(remote, fetched.path)
    clock = time.time() if now is None else now
    rows = [_row(r, fetched.path, tip, stale_after, clock) for r in reports]
    if as_json:
        doc = {"branch": name, "branch_revision": tip, "hosts": [r.to_json() for r in rows]}
        click.echo(json_document(doc))
    elif prometheus:
        click.echo(_prometheus(rows), nl=False)
    else:
        click.echo(
            f"branch {name} @ {tip[:12] if tip else '-'}: {counted(len(rows), 'host')} reported"
        )
        for row in rows:
            click.echo(_line(row))
    if not rows:
        click.echo("no host has reported to this repo yet (refs/tether/status/*)", err=True)
    healthy = bool(rows) and all(r.healthy for r in rows)
    return int(ExitCode.OK if healthy else ExitCode.ATTENTION)
