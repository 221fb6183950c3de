"""`tether status`: Flux-style conditions, revisions and the last runs, from the state dir."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from tether.agent.health import build_status, counts_text
from tether.commands import style
from tether.exitcodes import ExitCode
from tether.jsondoc import json_document


def _when(started: float) -> str:
    return dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


_LABEL = len("ServicesReady") + 2  # the longest condition, then two spaces


def _echo_text(status: dict[str, Any]) -> None:
    for cond in status["conditions"]:
        message = f": {cond['message']}" if cond["message"] else ""
        click.echo(f"{cond['type']:<{_LABEL}}{cond['status']:<8}{cond['reason']}{message}")
    click.echo(f"{'applied':<{_LABEL}}{status['last_applied_revision'] or '-'}")
    click.echo(f"{'attempted':<{_LABEL}}{status['last_attempted_revision'] or '-'}")
    if status["pending_drift"]:
        click.echo(f"{'pending':<{_LABEL}}{counts_text(status['pending_drift'])}")
    if status["pending_services"]:
        click.echo(f"{'services':<{_LABEL}}pending: {', '.join(status['pending_services'])}")
    if status["suspended"]:
        reason = f" ({status['suspend_reason']})" if status["suspend_reason"] else ""
        click.echo(f"{'suspended':<{_LABEL}}since {status['suspended_since']}{reason}")
    if status["runs"]:  # the history: left out by -q
        style.narrate("")
        style.narrate("started               took    result      command")
        for run in reversed(status["runs"]):
            counts = ", ".join(f"{n} {a}" for a, n in run["counts"].items() if n)
            style.narrate(
                f"{_when(run['started'])}  {run['duration']:>6.1f}s  {run['result']:<10}  "
                f"{run['command']}" + (f"  [{counts}]" if counts else "")
            )


def status(state_dir: Path, *, as_json: bool) -> int:
    """Exit OK when Ready is True and nothing is stalled or held, ATTENTION otherwise."""
    report = build_status(state_dir)
    if as_json:
        click.echo(json_document(report))
    else:
        _echo_text(report)
    by_type = {c["type"]: c["status"] for c in report["conditions"]}
    healthy = (
        by_type["Ready"] == "True"
        and by_type["Stalled"] != "True"
        and by_type["ServicesReady"] != "False"
        and by_type["CaptureHeld"] != "True"
    )
    return int(ExitCode.OK if healthy else ExitCode.ATTENTION)
