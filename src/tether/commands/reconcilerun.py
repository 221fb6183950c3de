"""`tether reconcile`'s full run (every input read, planned, printed; applied with --apply),
`tether diff` and `tether ls`. Loaded only when a plan is made: a cached one needs none of it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tether.agent.report import Reporter
from tether.commands import style
from tether.commands.progress import Progress
from tether.config.options import HostOptions, SourceOptions
from tether.errors import HostError, warnings_said
from tether.exitcodes import ExitCode, worst
from tether.hostfs.fsutil import write_atomic
from tether.hostfs.host import DryRunHost, RealHost, describe_os_error
from tether.jsondoc import json_document
from tether.reconcile.applier import Report, apply_plan
from tether.reconcile.bringup import ServiceOptions, bring_up_services
from tether.reconcile.dependencies import cache_quiet_plan
from tether.reconcile.desired import StaleSource
from tether.reconcile.engine import Run, prepare
from tether.reconcile.planner import ATTENTION, Action, Item, Plan
from tether.reconcile.report import exit_code, render_text, summary, to_json, unified
from tether.reconcile.session import reconcile_session
from tether.state.runlog import RunOutcome
from tether.textsafe import mask_url, printable

if TYPE_CHECKING:
    from tether.reconcile.savedplan import PlanContext


def host_secrets(data: bytes | None, path: str, known: dict[str, str]) -> dict[str, str]:
    """Secret values in a host file that the store does not hold (an old value, one typed in
    by hand), found by the redaction rules, so the diff masks them too."""
    from tether.secrets.redact import redact  # noqa: PLC0415 (only --diff needs the rules)

    if not data:
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    values = set(known.values())
    found = redact(text, path).secrets
    return {f"{s.name}, host's value": s.value for s in found if s.value not in values}


def diffs_before(run: Run, plan: Plan) -> dict[str, str]:
    """Diffs of every file that changes or needs attention, taken before anything is written."""
    files = {f.dest: f for f in run.desired.files}
    secrets = run.secrets_to_mask()

    def diff_for(item: Item) -> str | None:
        if item.action in (Action.IN_SYNC, Action.BLOCKED):
            return None
        if not (item.changes or item.action in ATTENTION):
            return None
        old = run.read_actual(item.dest)
        desired = files.get(item.dest)
        try:
            new = run.desired.content(desired) if desired and desired.hash else None
        except (StaleSource, OSError) as exc:
            return f"(no diff: {exc})"
        source = f"repo:{run.repo.source_path(item.path)}" if desired else "/dev/null"
        masks = {**secrets, **host_secrets(old, item.path, secrets)}
        return unified(old, new, masks, f"host:{item.dest}", source) or None

    return {i.dest: text for i in plan.items if (text := diff_for(i))}


def plain_url(repo: str) -> str:
    """The URL without its credentials: a saved plan is a file, and credentials never reach
    tether's files (`tether apply` authenticates with TETHER_GIT_TOKEN, or uses the mirror)."""
    from tether.git.remote import parse_remote  # noqa: PLC0415 (dulwich loads only for --repo)

    return parse_remote(repo, environ={}).url


def context(run: Run, host: HostOptions, overwrite: bool, prune: bool) -> PlanContext:
    """What `tether apply` needs to run a saved plan as it was made."""
    from tether.reconcile.savedplan import PlanContext  # noqa: PLC0415 (only --out saves one)

    return PlanContext(
        source=str(run.source.folder) if run.source.folder else None,
        repo=plain_url(run.source.repo) if run.source.repo else None,
        ref=run.source.ref,
        target_root=run.root,
        target_home=run.home,
        # absolute: `tether apply` may run from another folder
        state_dir=str(run.state_dir.absolute()),
        secrets_file=str(host.secrets_file.absolute()) if host.secrets_file else None,
        key_id=run.keyring.key_id,
        overwrite=overwrite,
        prune=prune,
        host=run.repo.host,
    )


def source_status(run: Run) -> dict[str, object]:
    """Where the desired state came from, and whether it is the remote's latest."""
    tree = run.repo.tree
    stale = tree.stale  # set when a fetch failed and the mirror was used
    return {
        "folder": str(run.source.folder) if run.source.folder else None,
        "repo": mask_url(run.source.repo) if run.source.repo else None,
        "ref": run.source.ref,
        "stale": stale is not None,
        "reason": stale,
        "forced": tree.forced,
        "host": run.repo.host,
    }


def output(
    run: Run,
    report: Report,
    *,
    as_json: bool,
    diffs: dict[str, str] | None,
    verb: str,
    saved: tuple[Path, PlanContext] | None,
) -> str | None:
    """Print the plan or the apply; the text printed (None for JSON)."""
    if saved is not None:
        from tether.reconcile.savedplan import plan_document  # noqa: PLC0415 (only for --out)

        out, ctx = saved
        save_plan(out, plan_document(report, ctx))
    status = source_status(run)
    if as_json:
        click.echo(json_document(to_json(report, {"source": status})))
        return None
    label = run.source.folder or mask_url(run.source.repo or "")
    revision = f" @ {report.revision[:12]}" if report.revision else ""
    on_host = f", host {run.repo.host}" if run.repo.host else ""
    header = f"tether {verb}: {label}{revision} -> {run.root} (home {run.home}{on_host})"
    if status["stale"]:
        header += f"\nsource is stale: {status['reason']} (using the last fetched revision)"
    if status["forced"]:
        header += "\nthe remote's history was rewritten (force-push); following it"
    diff_for = (lambda item: diffs.get(item.dest)) if diffs is not None else None
    text = render_text(report, header, diff_for, detail=style.level(), paint=style.paint)
    style.echo(text)
    if saved is not None:
        out = saved[0]
        click.echo(f"plan saved to {out}; apply it with `tether apply {out}`", err=True)
    return text


def save_plan(out: Path, doc: dict[str, object]) -> None:
    """Write the plan whole and private (it names every destination and the source's URL)."""
    try:
        write_atomic(out, (json.dumps(doc, indent=1) + "\n").encode("utf-8"), 0o600)
    except OSError as exc:
        raise HostError(
            f"{out}: cannot save the plan ({describe_os_error(exc)})",
            hint="pass --out a path in a writable folder",
        ) from None


def run_reconcile(  # noqa: PLR0917 (the command's options, passed through)
    source: SourceOptions,
    host: HostOptions,
    outcome: RunOutcome,
    reporter: Reporter,
    explicit_root: bool,
    apply: bool,
    require_fresh: bool,
    overwrite: bool,
    prune: bool,
    diff: bool,
    as_json: bool,
    out: Path | None,
    services: ServiceOptions,
    by_env: list[str],
    only: tuple[str, ...],
    key: dict[str, Any] | None,
) -> int:
    """Plan in full (and apply with `apply`); `key`: cache the plan under it if quiet."""
    # Before anything is read: a plan that warned, or read a path changed since, is not cached.
    started_ns, said = time.time_ns(), warnings_said()
    run = prepare(
        source,
        host,
        explicit_root=explicit_root,
        require_fresh=require_fresh,
        keep_content=apply or diff,
    )
    reporter.host = run.repo.host or reporter.host
    reporter.enabled = reporter.enabled and run.repo.tree.stale is None  # remote unreachable
    target = RealHost(run.confinement) if apply else DryRunHost(run.confinement)
    outcome.revision_attempted = run.desired.revision
    plan = run.make_plan(overwrite=overwrite, prune=prune).only(only)
    diffs = diffs_before(run, plan) if diff and not as_json else None
    progress = Progress(enabled=not as_json and not target.dry_run)
    try:
        report = apply_plan(run, plan, target, progress=progress, services=services.of(run))
    finally:
        progress.close()
    bring_up_services(run, report, services, outcome)
    verb = "reconcile plan" if target.dry_run else "reconcile apply"
    if by_env:
        verb += f" ({', '.join(by_env)} in the environment)"
    text = output(
        run,
        report,
        as_json=as_json,
        diffs=diffs,
        verb=verb,
        saved=(out, context(run, host, overwrite, prune)) if out is not None else None,
    )
    for failed in report.failed:
        click.echo(f"tether: {failed.item.dest}: {failed.error}", err=True)
    code = exit_code(report)
    if key is not None and text is not None:
        cache_quiet_plan(
            run,
            report,
            key,
            warned=warnings_said() != said,
            explicit_root=str(host.target_root) if explicit_root else None,
            text=text,
            exit_code=int(code),
            started_ns=started_ns,
        )
    stale = run.repo.tree.stale
    if stale is not None:
        outcome.message = f"source is stale ({stale}): converged on the last fetched revision"
        # converged on the last known state, not the latest one
        code = worst(code, ExitCode.ATTENTION)
    outcome.counts = summary(report)
    outcome.drifted = tuple(
        i.path for i in report.plan.items if i.action in (Action.DRIFT, Action.CONFLICT)
    )
    if not target.dry_run and not report.failed:
        outcome.revision_applied = run.desired.revision or "folder"
    return int(code)


def rebuild(source: SourceOptions, host: HostOptions, *, explicit_root: bool, as_json: bool) -> int:
    """Record destinations that already match the desired state; nothing else."""
    run = prepare(source, host, explicit_root=explicit_root, rebuild_ledger=True)
    full = run.make_plan(overwrite=False, prune=False)
    in_sync = tuple(i._replace(record=True) for i in full.items if i.action == Action.IN_SYNC)
    report = apply_plan(run, Plan(in_sync), RealHost(run.confinement))
    if as_json:
        click.echo(json_document(to_json(report, {"rebuilt_ledger": len(in_sync)})))
    else:
        others = len(full.items) - len(in_sync)
        click.echo(
            f"ledger rebuilt: {len(in_sync)} destinations in sync recorded; "
            f"{others} others left out (run `tether reconcile` to see them)"
        )
    return int(ExitCode.OK)


def _view(
    source: SourceOptions, host: HostOptions, *, explicit_root: bool, only: tuple[str, ...]
) -> tuple[Run, Plan]:
    """The plan as `reconcile --plan` makes it (no history: a look, not a run)."""
    run = prepare(source, host, explicit_root=explicit_root)
    return run, run.make_plan(overwrite=False, prune=True).only(only)


def diff(
    source: SourceOptions, host: HostOptions, *, explicit_root: bool, only: tuple[str, ...]
) -> int:
    """`tether diff [PATH...]`: the plan's diffs only (secret values masked), host -> repo."""
    with reconcile_session(host.state_dir, "diff", writes=False, history=False):
        run, plan = _view(source, host, explicit_root=explicit_root, only=only)
        diffs = diffs_before(run, plan)
    for item in plan.items:
        if item.dest in diffs:
            click.echo("\n".join(printable(line) for line in diffs[item.dest].splitlines()))
    return int(ExitCode.OK)


def ls(
    source: SourceOptions,
    host: HostOptions,
    *,
    explicit_root: bool,
    only: tuple[str, ...],
    as_json: bool,
) -> int:
    """`tether ls`: every managed file with its planned action, layer and destination."""
    with reconcile_session(host.state_dir, "ls", writes=False, history=False):
        run, plan = _view(source, host, explicit_root=explicit_root, only=only)
    rows = [
        {
            "path": i.path,
            "action": i.action.value,
            "layer": run.repo.layer(i.path),
            "destination": i.dest,
        }
        for i in sorted(plan.items, key=lambda i: i.path)
    ]
    if as_json:
        click.echo(json_document({"files": rows}))
        return int(ExitCode.OK)
    width = max((len(r["action"]) for r in rows), default=0)
    for r in rows:
        layer = " (host)" if r["layer"] == "host" else ""
        click.echo(printable(f"{r['action']:<{width}}  {r['path']}{layer} -> {r['destination']}"))
    return int(ExitCode.OK)
