"""`tether reconcile`: plan (default) or apply the config repo onto the host, three-way.

A plan that found nothing to do is cached (`state.plancache`); the next plan made the same way
checks the stat signatures of what it depended on and, when none moved, prints it again without
loading the modules a full plan needs (`reconcilerun`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tether import __version__
from tether.agent.report import Reporter, reporting
from tether.commands import style
from tether.config.options import HostOptions, SourceOptions, env_flag
from tether.errors import UsageError
from tether.reconcile.session import reconcile_session
from tether.state.plancache import cached_plan


def reconcile(
    source: SourceOptions,
    host: HostOptions,
    *,
    explicit_root: bool,
    apply: bool | None = None,
    overwrite: bool = False,
    prune: bool = False,
    diff: bool = False,
    as_json: bool = False,
    out: Path | None = None,
    rebuild_ledger: bool = False,
    wait: float = 0.0,
    require_fresh: bool = False,
    metrics_file: Path | None = None,
    bring_up: bool = False,
    handlers: bool = True,
    only: tuple[str, ...] = (),
) -> int:
    dry_run, env_overwrite = env_flag("DRY_RUN"), env_flag("OVERWRITE")  # bad values: usage
    by_env = []  # what the environment turned on, said in the plan's first line
    if apply is None:
        apply = dry_run is not None and not dry_run.value
        by_env += [str(dry_run)] if apply else []
    if not overwrite and env_overwrite is not None and env_overwrite.value:
        overwrite = True
        by_env.append(str(env_overwrite))
    if apply and out is not None:
        raise UsageError(
            "--out saves a plan to apply later, so it goes with --plan, not --apply",
            hint="run `tether reconcile --out PLAN.json`, then `tether apply PLAN.json`",
        )
    if rebuild_ledger:  # bookkeeping, not a run: status keeps reporting the last real one
        with reconcile_session(
            host.state_dir, "reconcile --rebuild-ledger", writes=True, wait=wait, history=False
        ):
            from tether.commands.reconcilerun import rebuild  # noqa: PLC0415 (see run_reconcile)

            return rebuild(source, host, explicit_root=explicit_root, as_json=as_json)
    if only and out is not None:
        raise UsageError("--only and --out: a saved plan is the whole plan", hint="drop --only")
    # A plan printed as text, whole, from a folder: one that found nothing to do is cached.
    key = None
    if not (apply or diff or as_json or only or out is not None or source.folder is None):
        key = cache_key(source, host, explicit_root, overwrite, prune, bring_up, handlers, by_env)
    command = f"reconcile --{'apply' if apply else 'plan'}"
    reporter = Reporter(host.state_dir, source.repo, host.host_name, enabled=host.report)
    with (
        reporting(reporter),
        reconcile_session(
            host.state_dir, command, writes=apply, wait=wait, metrics_file=metrics_file
        ) as rec,
    ):
        started = time.monotonic()
        cached = cached_plan(host.state_dir, key) if key is not None else None
        if cached is not None:  # nothing changed since a plan found nothing to do
            style.echo(cached.text)
            rec.revision_attempted, rec.counts = cached.revision, cached.counts
            style.detail(f"{command}: {time.monotonic() - started:.2f} s (cached)", err=True)
            rec.exit_code = cached.exit_code
            return rec.exit_code
        # Loaded here: the modules of a full plan cost more than a cached plan takes.
        from tether.commands.reconcilerun import run_reconcile  # noqa: PLC0415
        from tether.reconcile.bringup import ServiceOptions  # noqa: PLC0415

        rec.exit_code = run_reconcile(
            source, host, rec, reporter, explicit_root, apply, require_fresh, overwrite, prune,
            diff, as_json, out, ServiceOptions(bring_up, handlers), by_env, only, key,
        )  # fmt: skip
        if not as_json:
            style.detail(f"{command}: {time.monotonic() - started:.2f} s", err=True)
        reporter.drifted = list(rec.drifted)
        return rec.exit_code


def cache_key(  # noqa: PLR0917 (each is a part of the key)
    source: SourceOptions,
    host: HostOptions,
    explicit_root: bool,
    overwrite: bool,
    prune: bool,
    bring_up: bool,
    handlers: bool,
    by_env: list[str],
) -> dict[str, Any]:
    """Everything a plan depends on besides paths: a cached plan is used for the same key only."""
    return {
        "tether": __version__,
        "cwd": str(Path.cwd()),
        "source": str(source.folder),
        "target_root": str(host.target_root) if explicit_root else None,
        "target_home": host.target_home,
        "state_dir": str(host.state_dir),
        "secrets_file": str(host.secrets_file) if host.secrets_file else None,
        "host": host.host_name,
        "hostname": os.uname().nodename,  # what gethostname() returns, without loading socket
        "euid": os.geteuid(),
        "environ": {name: os.environ.get(name) for name in ("TETHER_HOST", "HOME")},
        "overwrite": overwrite,
        "prune": prune,
        "services": [bring_up, handlers],
        "by_env": by_env,
        "detail": style.level(),
    }
