"""`tether services`: the manifest's services with what their handlers still owe; `services
run [NAME...]` runs the pending (or named) ones now, in order; `services forget NAME` clears one.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from tether.config.options import HostOptions, SourceOptions
from tether.errors import UsageError
from tether.exitcodes import ExitCode
from tether.jsondoc import json_document
from tether.reconcile.bringup import ServiceOptions, plan_services, run_handlers
from tether.reconcile.engine import prepare
from tether.reconcile.services import order
from tether.reconcile.session import reconcile_session
from tether.stamps import utc_stamp
from tether.state.services import ServiceRecord, forget, load_services
from tether.state.statedir import ensure_state_dir
from tether.textsafe import printable


def _row(name: str, record: ServiceRecord, known: bool) -> dict[str, object]:
    return {
        "name": name,
        "state": record.state,
        "pending": record.pending,
        "changed": list(record.changed),
        "since": record.since,
        "error": record.error,
        "failed_at": record.failed_at,
        "last_success": utc_stamp(record.last_success) if record.last_success else None,
        "in_manifest": known,
    }


def list_services(
    source: SourceOptions, host: HostOptions, *, explicit_root: bool, as_json: bool
) -> int:
    with reconcile_session(host.state_dir, "services", writes=False, history=False):
        run = prepare(source, host, explicit_root=explicit_root)
        records = load_services(run.state_dir)
    names = [s.name for s in order(ServiceOptions().of(run))]  # in bring-up order
    rows = [_row(n, records.get(n, ServiceRecord()), True) for n in names]
    rows += [_row(n, r, False) for n, r in sorted(records.items()) if n not in names and r.pending]
    if as_json:
        click.echo(json_document({"services": rows}))
    else:
        if not rows:
            click.echo("no services in tether.yaml")
        width = max((len(str(r["name"])) for r in rows), default=0)
        for name in [*names, *(n for n in sorted(records) if n not in names)]:
            record = records.get(name, ServiceRecord())
            if name not in names and not record.pending:
                continue
            extra = "" if name in names else "  (not in tether.yaml: `tether services forget`)"
            if record.pending and record.changed:
                extra += f"  changed: {', '.join(record.changed)}"
            click.echo(printable(f"{name:<{width}}  {record.state}{extra}"))
    pending = any(r["pending"] for r in rows)
    return int(ExitCode.ATTENTION if pending else ExitCode.OK)


def run_services(
    source: SourceOptions,
    host: HostOptions,
    names: Sequence[str],
    *,
    explicit_root: bool,
    as_json: bool,
    wait: float = 0.0,
) -> int:
    """Run the named services (or every pending one) now, in order."""
    with reconcile_session(host.state_dir, "services run", writes=True, wait=wait) as outcome:
        run = prepare(source, host, explicit_root=explicit_root)
        services = ServiceOptions().of(run)
        known = {s.name for s in services}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(
                f"no service {', '.join(map(repr, unknown))} in tether.yaml",
                hint=f"known: {', '.join(sorted(known)) or 'none'}",
            )
        outcome.revision_attempted = run.desired.revision
        chosen = plan_services(run, None, services, only=list(names) if names else None)
        results = run_handlers(
            run, chosen, notify=lambda line: click.echo(f"tether: {line}", err=True)
        )
        outcome.services = [r.to_json(output=True) for r in results]
        failed = [r for r in results if r.result != "ok"]
        outcome.exit_code = int(ExitCode.ATTENTION if failed else ExitCode.OK)
    if as_json:
        click.echo(json_document({"services": [r.to_json() for r in results]}))
    else:
        if not results:
            click.echo("nothing to run: no service is pending")
        for r in results:
            detail = f"{r.seconds:.1f}s" if r.result == "ok" else r.reason
            click.echo(printable(f"{r.name}: {r.result} ({detail})"))
    return outcome.exit_code


def forget_service(host: HostOptions, name: str, *, wait: float = 0.0) -> int:
    ensure_state_dir(host.state_dir)
    with reconcile_session(
        host.state_dir, "services forget", writes=True, wait=wait, history=False
    ):
        if not forget(host.state_dir, name):
            raise UsageError(
                f"no service {name!r} in {host.state_dir}",
                hint="`tether services` lists the services tether knows",
            )
    click.echo(f"{name}: forgotten (no longer pending)")
    return int(ExitCode.OK)
