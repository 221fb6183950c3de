"""`tether apply PLAN.json`: apply exactly a saved plan, or nothing if anything moved since."""

from __future__ import annotations

from pathlib import Path

import click

from tether.agent.report import Reporter, reporting
from tether.commands import style
from tether.commands.progress import Progress
from tether.config.options import HostOptions, SourceOptions
from tether.errors import StateError
from tether.exitcodes import ExitCode
from tether.hostfs.host import RealHost
from tether.jsondoc import json_document
from tether.reconcile.applier import apply_plan
from tether.reconcile.bringup import ServiceOptions, bring_up_services
from tether.reconcile.engine import prepare
from tether.reconcile.planner import Action, Item, Plan
from tether.reconcile.report import exit_code, render_text, summary, to_json
from tether.reconcile.savedplan import SavedItem, load_plan
from tether.reconcile.session import reconcile_session


def _stale(saved: SavedItem, fresh: Item | None) -> bool:
    if fresh is None or fresh.action == Action.BLOCKED:
        return True
    if fresh.a_hash != saved.actual_hash:
        return True
    return saved.write and fresh.d_hash != saved.desired_hash


def apply_saved(
    plan_file: Path,
    *,
    state_dir: Path | None = None,
    secrets_file: Path | None = None,
    as_json: bool = False,
    wait: float = 0.0,
    metrics_file: Path | None = None,
    bring_up: bool = False,
    handlers: bool = True,
) -> int:
    services = ServiceOptions(bring_up, handlers)
    ctx, saved = load_plan(plan_file)
    if ctx.source is not None:
        source = SourceOptions(folder=Path(ctx.source))
    else:
        source = SourceOptions(repo=ctx.repo, ref=ctx.ref)
    host = HostOptions(
        target_root=Path(ctx.target_root),
        target_home=ctx.target_home,
        state_dir=state_dir or Path(ctx.state_dir),
        secrets_file=secrets_file or (Path(ctx.secrets_file) if ctx.secrets_file else None),
        host_name=ctx.host,
    )
    with (
        reporting(Reporter(host.state_dir, source.repo, ctx.host)),
        reconcile_session(
            host.state_dir,
            f"apply {plan_file.name}",
            writes=True,
            wait=wait,
            metrics_file=metrics_file,
        ) as outcome,
    ):
        run = prepare(source, host, explicit_root=True)
        outcome.revision_attempted = run.desired.revision
        if run.keyring.key_id != ctx.key_id:
            raise StateError(
                f"{plan_file}: made with another state dir's hash key",
                hint="apply a plan on the host and with the --state-dir that made it",
            )
        fresh = {i.dest: i for i in run.make_plan(overwrite=ctx.overwrite, prune=ctx.prune).items}
        stale: list[str] = []
        items: list[Item] = []
        for entry in saved:
            if not (entry.write or entry.remove):
                continue
            now = fresh.get(entry.dest)
            if _stale(entry, now):
                stale.append(entry.dest)
                continue
            assert now is not None
            items.append(
                now._replace(
                    write=entry.write,
                    remove=entry.remove,
                    backup=entry.backup,
                    record=False,
                    forget=False,
                )
            )
        if stale:
            for dest in stale:
                click.echo(f"tether: {dest}: changed since the plan was made", err=True)
            click.echo(
                f"tether: {plan_file}: refused, {len(stale)} destinations are stale; nothing "
                "was written (make a new plan)",
                err=True,
            )
            outcome.exit_code = int(ExitCode.ATTENTION)
            outcome.message = f"saved plan refused: {len(stale)} destinations changed since"
            return outcome.exit_code
        progress = Progress(enabled=not as_json)
        try:
            report = apply_plan(
                run,
                Plan(tuple(items)),
                RealHost(run.confinement),
                progress=progress,
                services=services.of(run),
            )
        finally:
            progress.close()
        bring_up_services(run, report, services, outcome)
        outcome.exit_code = int(exit_code(report))
        outcome.counts = summary(report)
        if not report.failed:
            outcome.revision_applied = run.desired.revision or "folder"
    if as_json:
        click.echo(json_document(to_json(report)))
    else:
        header = f"tether apply: {plan_file} -> {run.root}"
        style.echo(render_text(report, header, detail=style.level(), paint=style.paint))
    for failed in report.failed:
        click.echo(f"tether: {failed.item.dest}: {failed.error}", err=True)
    return outcome.exit_code
