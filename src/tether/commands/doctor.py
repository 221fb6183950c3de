"""`tether doctor`: can this host reconcile? A list of small checks, each ok/warning/error.

Add a check by writing `def check_x(ctx: DoctorContext) -> list[CheckResult]` and listing it
in CHECKS. A check never raises a TetherError: it turns it into an error result saying what
to do. Secret values never appear in results, only secret names.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import click
import yaml

from tether.agent.loop import suspension
from tether.agent.units import (
    RECONCILE,
    exec_program,
    pid1_name,
    systemd_booted,
    unit_dir,
    wants_link,
)
from tether.commands import style
from tether.config.checks import Level, check_config_repo
from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.options import HostOptions, SourceOptions
from tether.config.sourcetree import SourceTree
from tether.errors import GitError, SourceError, StateError, TetherError
from tether.exitcodes import ExitCode
from tether.jsondoc import json_document
from tether.reconcile.desired import open_tree
from tether.reconcile.engine import source_identity
from tether.secrets.render import has_marker, render
from tether.secrets.store import SecretStore, load_store, store_path
from tether.state.ledger import ledger_path, load_repo_ledger, repo_ledger_dir
from tether.state.lock import INFO_NAME, LOCK_NAME, lock_held
from tether.state.services import load_services, pending_names, stuck
from tether.textsafe import counted

REMOTE_TIMEOUT = 20.0  # seconds per socket operation of the remote probe


@dataclass(frozen=True)
class CheckResult:
    check: str
    level: Level
    message: str
    hint: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "level": self.level,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class DoctorContext:
    """What the checks look at; the expensive parts are read once, on first use."""

    source: tuple[Path | None, str | None, str | None]  # --source, --repo, --ref as given
    host: HostOptions
    root: Path | None = None  # where the units live (`--root` of agent install)
    user: bool = False
    environ: dict[str, str] | None = field(default=None)
    remote_timeout: float = REMOTE_TIMEOUT
    unreachable: bool = False  # set by check_remote: the --repo remote did not answer

    @cached_property
    def tree(self) -> SourceTree:
        return open_tree(SourceOptions.resolve(*self.source))

    @cached_property
    def repo(self) -> ConfigRepo:
        return open_config_repo(self.tree, host=self.host.host_name)

    @cached_property
    def store_path(self) -> Path:
        # the very file reconcile fills from
        return store_path(self.host.secrets_file, self.repo.manifest.secrets_file)

    @cached_property
    def store(self) -> SecretStore:
        return load_store(self.store_path, self.environ)

    @cached_property
    def placeholder_files(self) -> dict[str, bytes]:
        """Tracked files that hold a placeholder, by inventory path."""
        found = {}
        for path in self.repo.tracked_paths:
            try:
                data = self.tree.read_bytes(self.repo.source_path(path))
            except SourceError:
                continue  # validate reports missing files
            if has_marker(data):
                found[path] = data
        return found


Check = Callable[[DoctorContext], list[CheckResult]]


def _failed(check: str, exc: TetherError) -> list[CheckResult]:
    return [CheckResult(check, "error", exc.message, exc.hint or "")]


def _skipped(check: str, what: str) -> CheckResult:
    # the check of `what` already reported why; one cause is counted once
    return CheckResult(check, "warning", f"not checked: {what} is unusable")


def check_manifest(ctx: DoctorContext) -> list[CheckResult]:
    name = "manifest"
    try:
        findings = check_config_repo(ctx.tree, ctx.host.host_name)
    except TetherError as exc:
        if ctx.unreachable and isinstance(exc, GitError):
            return [_skipped(name, "the remote")]  # nothing fetched yet: the remote check said why
        return _failed(name, exc)
    results = [
        CheckResult(
            name,
            f.level,
            f"{f.where}: {f.message}" if f.where else f.message,
            "fix it, then run `tether validate`" if f.level == "error" else "",
        )
        for f in findings
        if f.level != "ok"
    ]
    if any(r.level == "error" for r in results):
        return results
    count = len(ctx.repo.tracked_paths)
    return [*results, CheckResult(name, "ok", f"{ctx.tree.label}: valid, {count} tracked files")]


def check_secret_store(ctx: DoctorContext) -> list[CheckResult]:
    name = "secret store"
    try:
        path = ctx.store_path
    except TetherError:
        return [_skipped(name, "the config repo")]
    try:
        needed = bool(ctx.placeholder_files)
    except TetherError:
        needed = True
    try:
        st = path.lstat()
    except FileNotFoundError:
        if not needed:
            return [CheckResult(name, "ok", f"{path}: absent, and no tracked file needs it")]
        return [
            CheckResult(
                name,
                "error",
                f"{path}: no secret store, and tracked files hold placeholders",
                f"create it (one NAME=value per line) and run `chmod 600 {path}`",
            )
        ]
    if stat.S_ISLNK(st.st_mode):
        return [CheckResult(name, "error", f"{path}: is a symlink", "point at the real file")]
    try:
        store = ctx.store
    except TetherError as exc:
        return _failed(name, exc)
    mode = stat.S_IMODE(st.st_mode)
    return [CheckResult(name, "ok", f"{path}: {len(store.names())} secrets, mode {mode:04o}")]


def check_placeholders(ctx: DoctorContext) -> list[CheckResult]:
    name = "placeholders"
    try:
        files = ctx.placeholder_files
    except TetherError:
        return [_skipped(name, "the config repo")]
    if not files:
        return [CheckResult(name, "ok", "no tracked file holds a placeholder")]
    try:
        store = ctx.store
    except TetherError:
        return [_skipped(name, "the secret store")]
    results = []
    for path, data in sorted(files.items()):
        rendered = render(data, store.get, ctx.repo.manifest.secret_names_for(path))
        if rendered.missing:
            results.append(
                CheckResult(
                    name,
                    "error",
                    f"{ctx.repo.source_path(path)}: no value for {', '.join(rendered.missing)}",
                    f"add them to {ctx.store_path}; reconcile leaves this file blocked until then",
                )
            )
    if results:
        return results
    return [CheckResult(name, "ok", f"every placeholder in {len(files)} files has a value")]


def _remote_location(ctx: DoctorContext) -> tuple[str | None, str]:
    """The remote to probe and where it was configured: --repo, else capture.remote."""
    if ctx.source[1] is not None:
        return ctx.source[1], "--repo"
    if ctx.repo.manifest.capture.remote:
        return ctx.repo.manifest.capture.remote, "capture.remote in tether.yaml"
    from tether.git.clone import origin_url  # noqa: PLC0415 (dulwich)

    folder = SourceOptions.resolve(*ctx.source).folder
    origin = origin_url(folder) if folder is not None else None
    return origin, "the clone's origin"


def check_remote(ctx: DoctorContext) -> list[CheckResult]:
    """One ls-remote (no objects fetched): can the next run reach the config repo's remote?"""
    from tether.git.remote import FetchFailed, ls_remote, parse_remote  # noqa: PLC0415 (dulwich)

    name = "remote"
    try:
        location, origin = _remote_location(ctx)
    except TetherError:
        return [_skipped(name, "the config repo")]
    if location is None:
        return [CheckResult(name, "ok", "no remote configured (a --source folder, no capture)")]
    try:
        remote = parse_remote(location)
        refs = ls_remote(remote, timeout=ctx.remote_timeout)
    except FetchFailed as exc:
        ctx.unreachable = origin == "--repo"
        return [
            CheckResult(
                name,
                "error",
                f"{remote.display} ({origin}): unreachable: {exc.reason}",
                "check the URL, the network and the credentials (TETHER_GIT_TOKEN, ssh key); "
                "until then reconcile --repo uses the last fetched revision, if any",
            )
        ]
    except TetherError as exc:
        return _failed(name, exc)
    heads = sum(ref.startswith("refs/heads/") for ref in refs)
    return [CheckResult(name, "ok", f"{remote.display} ({origin}): reachable, {heads} branches")]


def check_clone(ctx: DoctorContext) -> list[CheckResult]:
    """A --source folder that is a git clone: uncommitted edits, commits it lacks upstream."""
    from tether.git.clone import clone_state  # noqa: PLC0415 (dulwich)

    name = "clone"
    try:
        folder = SourceOptions.resolve(*ctx.source).folder
    except TetherError:
        return []
    if folder is None:
        return []
    state = clone_state(folder, ctx.host.state_dir)
    if state is None:
        return []
    lines = state.lines()
    if not lines:
        shown = f", up to date with {state.upstream}" if state.upstream else ", no upstream"
        return [CheckResult(name, "ok", f"{folder}: a git clone, nothing uncommitted{shown}")]
    return [CheckResult(name, "warning", line) for line in lines]


def check_ledger(ctx: DoctorContext) -> list[CheckResult]:
    name = "ledger"
    state_dir = ctx.host.state_dir
    try:
        ledger_dir = repo_ledger_dir(
            state_dir, source_identity(SourceOptions.resolve(*ctx.source), ctx.repo)
        )
        path = ledger_path(ledger_dir)
        entries = load_repo_ledger(state_dir, ledger_dir, ctx.repo.tracked_paths)
    except StateError as exc:
        return _failed(name, exc)
    except TetherError:
        return []  # no config repo to name the ledger: the repo's own checks say why
    if not entries and not path.exists():
        return [CheckResult(name, "ok", f"{path}: none yet (the first apply writes it)")]
    return [CheckResult(name, "ok", f"{path}: readable, {len(entries)} destinations")]


def _lock_info(state_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((state_dir / INFO_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def check_lock(ctx: DoctorContext) -> list[CheckResult]:
    """flock dies with its holder, so a lock is never really stale; a left-over info file is."""
    name = "lock"
    state_dir = ctx.host.state_dir
    info = _lock_info(state_dir)
    who = (
        f"pid {info.get('pid', '?')} ({info.get('command', '?')}) since {info.get('since', '?')}"
        if info
        else "a process"
    )
    if lock_held(state_dir):
        return [CheckResult(name, "ok", f"a run is in progress: {who} holds {LOCK_NAME}")]
    if info is not None:
        return [
            CheckResult(
                name,
                "warning",
                f"{state_dir / INFO_NAME}: left by {who}, which is no longer running "
                "(killed or crashed mid-run)",
                "nothing to do: the next run takes the lock over; run `tether reconcile` to "
                "see what the interrupted run left",
            )
        ]
    return [CheckResult(name, "ok", "no run holds the lock")]


_HOOKS_FIX = "run `tether hooks install` in the config repo (or `pre-commit install`)"
_PRE_COMMIT_MARK = "File generated by pre-commit"
_SCAN_IDS = frozenset({"tether-scan", "tether-scan-push"})


def _hook_kind(path: Path) -> str | None:
    """ "tether", "pre-commit" or None for an installed, executable git hook."""
    from tether.secrets.hooks import MARKER  # noqa: PLC0415

    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return None
    if not os.access(path, os.X_OK):
        return None
    if MARKER in text:
        return "tether"
    return "pre-commit" if _PRE_COMMIT_MARK in text else None


def _config_uses_scan(top: Path) -> bool:
    try:
        doc = yaml.safe_load((top / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    repos = doc.get("repos") if isinstance(doc, dict) else None
    for repo in repos if isinstance(repos, list) else []:
        hooks = repo.get("hooks") if isinstance(repo, dict) else None
        for hook in hooks if isinstance(hooks, list) else []:
            if isinstance(hook, dict) and hook.get("id") in _SCAN_IDS:
                return True
    return False


def check_hooks(ctx: DoctorContext) -> list[CheckResult]:
    """tether's own git hooks, or pre-commit's running tether-scan, in the config repo."""
    from tether.git.read import hooks_dir, work_tree  # noqa: PLC0415
    from tether.secrets.hooks import HOOK_NAMES  # noqa: PLC0415

    name = "hooks"
    try:
        folder = SourceOptions.resolve(*ctx.source).folder
    except TetherError:
        return [_skipped(name, "the config repo")]
    if folder is None:
        return [CheckResult(name, "ok", "not checked for --repo (check the clone you commit in)")]
    top = work_tree(folder)
    if top is None:
        return [CheckResult(name, "ok", f"{folder}: not a git work tree, no hooks to check")]
    hooks = hooks_dir(top)
    kinds = {hook: _hook_kind(hooks / hook) for hook in HOOK_NAMES}
    if all(kind == "tether" for kind in kinds.values()):
        return [CheckResult(name, "ok", f"{hooks}: tether's pre-commit and pre-push hooks")]
    if "pre-commit" in kinds.values() and _config_uses_scan(top):
        return [CheckResult(name, "ok", f"{top}: pre-commit runs tether-scan")]
    missing = [hook for hook, kind in kinds.items() if kind is None]
    if "pre-commit" in kinds.values():
        what = f"{top / '.pre-commit-config.yaml'} does not use tether-scan"
        fix = "add the tether-scan hook (see docs/hooks.md), then run `pre-commit install`"
    else:
        what = f"no {' or '.join(missing)} hook in {hooks}"
        fix = _HOOKS_FIX
    return [
        CheckResult(name, "warning", f"{what}: commits that leak a secret are not blocked", fix)
    ]


def check_units(ctx: DoctorContext) -> list[CheckResult]:
    name = "units"
    folder = unit_dir(user=ctx.user, root=ctx.root)
    service, timer = folder / f"{RECONCILE}.service", f"{RECONCILE}.timer"
    if not service.exists() or not (folder / timer).exists():
        return [
            CheckResult(
                name,
                "warning",
                f"no {RECONCILE} units in {folder}",
                "run `tether agent install`, or keep `tether agent run` going",
            )
        ]
    link = wants_link(folder, timer)
    if not link.is_symlink() and not link.exists():
        return [
            CheckResult(
                name,
                "error",
                f"{folder / timer} is installed but not enabled",
                f"run `systemctl enable --now {timer}`",
            )
        ]
    try:
        program = exec_program(service.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        program = None
    if program is None:
        return [
            CheckResult(name, "error", f"{service}: no ExecStart=", "run `tether agent install`")
        ]
    seen = Path(f"{ctx.root}/{program}") if ctx.root is not None else Path(program)
    if not os.access(seen, os.X_OK):
        return [
            CheckResult(
                name,
                "error",
                f"{service.name} runs {program}, which is missing or not executable",
                "tether moved or its venv was rebuilt: run `tether agent install` again",
            )
        ]
    if ctx.root is None and not systemd_booted():
        return [
            CheckResult(
                name,
                "warning",
                f"{timer} is installed and enabled, but systemd is not running here "
                f"(PID 1 is {pid1_name()}): the timer never fires",
                "run `tether agent run` (a foreground loop) instead",
            )
        ]
    return [CheckResult(name, "ok", f"{timer} installed and enabled in {folder}")]


def check_suspended(ctx: DoctorContext) -> list[CheckResult]:
    held = suspension(ctx.host.state_dir)
    if held is None:
        return [CheckResult("suspended", "ok", "the agent is not suspended")]
    why = f": {held.reason}" if held.reason else ""
    return [
        CheckResult(
            "suspended",
            "warning",
            f"scheduled runs are suspended since {held.since}{why}",
            "run `tether agent resume` when ready",
        )
    ]


def check_services(ctx: DoctorContext) -> list[CheckResult]:
    """A service pending for more than a day: its handler keeps failing, or nothing retries it."""
    name = "services"
    try:
        records = load_services(ctx.host.state_dir)
    except StateError as exc:
        return _failed(name, exc)
    late = stuck(records, time.time())
    if late:
        return [
            CheckResult(
                name,
                "warning",
                f"service {n} pending since {records[n].since}"
                + (f" (last attempt: {records[n].error})" if records[n].error else ""),
                f"see `tether services`; fix it and run `tether services run {n}`, "
                f"or `tether services forget {n}`",
            )
            for n in late
        ]
    pending = pending_names(records)
    if pending:
        return [CheckResult(name, "ok", f"pending (for less than a day): {', '.join(pending)}")]
    return [CheckResult(name, "ok", "no service is pending")]


CHECKS: tuple[Check, ...] = (
    check_remote,  # first: an unreachable --repo explains why the manifest cannot be read
    check_manifest,
    check_secret_store,
    check_placeholders,
    check_clone,
    check_ledger,
    check_lock,
    check_hooks,
    check_units,
    check_suspended,
    check_services,
)


def run_checks(ctx: DoctorContext, checks: tuple[Check, ...] = CHECKS) -> list[CheckResult]:
    results: list[CheckResult] = []
    for check in checks:
        results.extend(check(ctx))
    return results


def _echo(results: list[CheckResult], *, as_json: bool) -> None:
    errors = sum(r.level == "error" for r in results)
    warnings = sum(r.level == "warning" for r in results)
    if as_json:
        payload: dict[str, Any] = {
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "checks": [r.to_json() for r in results],
        }
        click.echo(json_document(payload))
        return
    for r in results:
        hint = f" -> {r.hint}" if r.hint else ""
        line = f"{r.level:<8} {r.check}: {r.message}{hint}"
        if r.level == "ok":
            style.narrate(line)  # -q: only what needs fixing
        else:
            style.echo(style.paint(r.level, line))
    click.echo(f"doctor: {counted(errors, 'error')}, {counted(warnings, 'warning')}", err=True)


def doctor(
    source: tuple[Path | None, str | None, str | None],
    host: HostOptions,
    *,
    root: Path | None,
    user: bool,
    as_json: bool,
    environ: dict[str, str] | None = None,
) -> int:
    """Exit OK when no check found an error (warnings allowed), ERROR otherwise."""
    ctx = DoctorContext(source, host, root, user, environ)
    results = run_checks(ctx)
    _echo(results, as_json=as_json)
    return int(ExitCode.ERROR if any(r.level == "error" for r in results) else ExitCode.OK)
