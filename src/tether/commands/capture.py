"""`tether capture`: host changes flow back into the config repo, redacted, scanned and pushed.

The flow lives in tether.capture.flow (one attempt = fetch, observe, redact, classify, scan); this
module runs the attempts under the lock, writes (store, commit, push, ledger) and reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import click

from tether.agent.report import Reporter, reporting
from tether.capture import journal as capture_journal
from tether.capture.flow import (
    ATTEMPTS,
    COMMITTED,
    Action,
    Plan,
    Settings,
    author_for,
    backoff,
    commit_message,
    counts,
    has_conflict,
    held_text,
    hold_back,
    ledger_updates,
    manifest_remote,
    pending_ref,
    plan_attempt,
    results_json,
)
from tether.commands import style
from tether.config.manifest import DEFAULT_BRANCH, MANIFEST_NAME
from tether.config.options import HostOptions, check_remote
from tether.errors import GitError, UsageError, warn
from tether.exitcodes import ExitCode
from tether.git import mirror as gitmirror
from tether.git import objects as gitobjects
from tether.git import publish as gitpublish
from tether.git import remote as gitremote
from tether.jsondoc import json_document
from tether.secrets.store import save_values
from tether.stamps import utc_stamp
from tether.state.keyring import load_key
from tether.state.ledger import LedgerEntry, load_repo_ledger, repo_ledger_dir
from tether.state.lock import state_lock
from tether.state.runlog import recording
from tether.state.statedir import ensure_state_dir
from tether.textsafe import counted, printable

ATTENTION_ACTIONS = (Action.CONFLICT, Action.REFUSED, Action.MISSING, Action.HELD)


@dataclass(frozen=True)
class CaptureRequest:
    repo: str | None = None
    source: Path | None = None  # a config repo folder whose manifest names capture.remote
    branch: str | None = None
    dry_run: bool = False
    no_push: bool = False
    prune: bool = False
    message: str | None = None
    keep_host: tuple[str, ...] = ()
    to_host: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # --only PATH/GLOB
    add: tuple[str, ...] = ()  # `tether add PATH...`: host files to allowlist and capture
    # the repo whose ledger records this capture (default: the remote captured into);
    # `init --from-host` captures into the new folder for the remote it will be pushed to
    ledger_repo: str | None = None
    strict: bool = False  # any finding stops the whole capture (else it holds back its file)
    attempts: int = ATTEMPTS


@dataclass
class Done:
    code: ExitCode
    plan: Plan | None = None
    revision: str | None = None
    pushed: bool = False
    pending: str | None = None
    lines: tuple[str, ...] = ()


BeforePush = Callable[[int], None]  # called with the attempt number right before each push


def resolve_remote(request: CaptureRequest) -> tuple[str, str]:
    """The remote (--repo, else capture.remote of a config repo folder) and the branch."""
    branch = request.branch
    if request.repo is not None:
        return check_remote(request.repo), branch or DEFAULT_BRANCH
    folder = request.source or Path.cwd()
    if (folder / MANIFEST_NAME).is_file():
        remote, manifest_branch = manifest_remote(folder)
        if remote:
            return check_remote(remote), branch or manifest_branch or DEFAULT_BRANCH
    raise UsageError(
        "capture needs a git remote",
        hint="pass --repo URL, or set capture.remote in the tether.yaml of --source DIR",
    )


def capture(
    request: CaptureRequest,
    host: HostOptions,
    *,
    explicit_root: bool,
    as_json: bool = False,
    metrics_file: Path | None = None,
    wait: float = 0.0,
    before_push: BeforePush | None = None,
) -> int:
    url, branch = resolve_remote(request)
    state_dir = ensure_state_dir(host.state_dir)
    settings = Settings(
        remote=gitremote.parse_remote(url),
        branch=branch,
        state_dir=state_dir,
        ledger_dir=ensure_state_dir(
            repo_ledger_dir(state_dir, gitremote.repo_identity(request.ledger_repo or url))
        ),
        target_root=host.target_root,
        explicit_root=explicit_root,
        target_home=host.target_home,
        keyring=load_key(state_dir),
        secrets_file=host.secrets_file,
        ledger={},
        prune=request.prune,
        keep_host=request.keep_host,
        to_host=request.to_host,
        only=request.only,
        add=request.add,
        host=host.host_name,
    )
    command = "capture --dry-run" if request.dry_run else "capture"
    if request.only or request.add:  # saw some files only: CaptureHeld is not cleared by it
        command += " --only"
    reporter = Reporter(state_dir, url, host.host_name, enabled=host.report and not request.dry_run)
    with (
        reporting(reporter),
        recording(state_dir, command, metrics_file, history=not request.dry_run) as outcome,
    ):
        with _lock(state_dir, wait, dry_run=request.dry_run):
            if not request.dry_run:
                _finish_interrupted(settings)
            settings = _with_ledger(settings)
            done = _attempts(settings, request, before_push)
        if done.plan is not None:
            reporter.host = done.plan.repo.host or reporter.host
        outcome.exit_code = int(done.code)
        outcome.counts = counts(done.plan)
        outcome.revision_attempted = done.plan.tip.commit if done.plan else None
        outcome.revision_applied = done.revision if done.pushed else None
        if done.plan is not None and done.plan.held:
            outcome.message = held_text(done.plan.held)
    _report(settings, request, done, as_json=as_json)
    return int(done.code)


@contextlib.contextmanager
def _lock(state_dir: Path, wait: float, *, dry_run: bool) -> Iterator[None]:
    if dry_run:  # writes nothing of the host's state (the mirror has its own lock)
        yield
        return
    with state_lock(state_dir, "capture", wait):
        yield


def _finish_interrupted(settings: Settings) -> None:
    """Complete (or drop) what a capture killed between its push and its ledger save left."""
    left = capture_journal.pending(settings.ledger_dir)
    if left is None or (left.remote, left.branch) != (settings.remote.key, settings.branch):
        return  # nothing left, or another remote's: a capture to that one judges it
    try:
        fetched = gitmirror.fetch(settings.remote, settings.state_dir)
    except gitremote.FetchFailed:
        return  # cannot tell yet; the attempt that follows reports the remote
    tip = fetched.refs.get(f"refs/heads/{settings.branch}")
    if tip is not None and gitobjects.is_ancestor(fetched.path, left.commit, tip):
        capture_journal.record(settings.ledger_dir, left.entries, settings.keyring.key_id)
        warn(f"recorded capture {left.commit[:12]}, pushed by a run interrupted before saving it")
    else:
        warn(
            f"dropped an interrupted capture's commit {left.commit[:12]}: it never reached "
            f"{settings.remote.display}; its changes are captured again now"
        )
    capture_journal.end(settings.ledger_dir)


def _with_ledger(settings: Settings) -> Settings:
    return replace(settings, ledger=load_repo_ledger(settings.state_dir, settings.ledger_dir))


def _attempts(settings: Settings, request: CaptureRequest, before_push: BeforePush | None) -> Done:
    added: set[str] = set()  # names an earlier attempt already stored
    rotated: set[str] = set()
    for attempt in range(1, max(request.attempts, 1) + 1):
        plan = plan_attempt(settings, want_diffs=request.dry_run)
        added.update(plan.added)
        rotated.update(plan.rotated)
        plan = plan._replace(added=tuple(sorted(added)), rotated=tuple(sorted(rotated - added)))
        if plan.findings:
            held = None if request.strict else hold_back(plan, settings.to_host)
            if held is None:
                lines = tuple(f.text() for f in plan.findings)
                return Done(ExitCode.ATTENTION, plan, plan.tip.commit, lines=lines)
            plan = held
        if request.dry_run:
            return _dry_run(plan)
        _save_store(plan)
        done = _commit_and_push(settings, request, plan, attempt, before_push)
        if done is not None:
            return done
        click.echo(
            f"tether: {settings.remote.display} moved on during the push; "
            f"rebuilding on the new tip (attempt {attempt + 1})",
            err=True,
        )
        time.sleep(backoff(attempt))
    raise GitError(
        f"push to {settings.remote.display}: lost the race {request.attempts} times",
        hint="someone pushes continuously; run capture again later (nothing was lost)",
    )


def _attention(plan: Plan) -> bool:
    return any(r.action in ATTENTION_ACTIONS for r in plan.observation.results.values())


def _dry_run(plan: Plan) -> Done:
    if _attention(plan):
        code = ExitCode.ATTENTION
    elif plan.changes or plan.added or plan.rotated:
        code = ExitCode.CHANGES
    else:
        code = ExitCode.OK
    return Done(code, plan, plan.tip.commit)


def _save_store(plan: Plan) -> None:
    changed = {n: plan.values[n] for n in (*plan.added, *plan.rotated) if n in plan.values}
    if changed and plan.store.path is not None:
        save_values(plan.store.path, changed)
    elif changed:
        raise UsageError("secrets were found but no secret store is configured")


def _commit_and_push(
    settings: Settings,
    request: CaptureRequest,
    plan: Plan,
    attempt: int,
    before_push: BeforePush | None,
) -> Done | None:
    """Commit, push, record; None when the push lost a race (rebuild on the new tip)."""
    moment = dt.datetime.now(dt.UTC)
    final = _final_code(plan)
    template = request.message or plan.repo.manifest.capture.message
    if plan.allowlisted and not request.message:
        template = f"tether add: {', '.join(plan.allowlisted)}"
    commit = None
    if plan.changes:
        commit = gitpublish.build_commit(
            plan.tip.mirror,
            plan.tip.commit,
            plan.changes,
            commit_message(template, moment),
            author=author_for(plan, settings.hostname),
            when=int(moment.timestamp()),
        )
    if has_conflict(plan):  # nothing is pushed and the ledger stays as it was
        ref = None
        if commit is not None:
            ref = pending_ref(moment)
            gitpublish.set_ref(plan.tip.mirror, ref, commit)
        return Done(ExitCode.ATTENTION, plan, plan.tip.commit, pending=ref)
    if commit is None:
        capture_journal.record(
            settings.ledger_dir,
            _ledger_updates(settings, plan, plan.tip.commit),
            settings.keyring.key_id,
        )
        return Done(final, plan, plan.tip.commit)
    if request.no_push:
        gitpublish.set_ref(plan.tip.mirror, f"refs/heads/{settings.branch}", commit)
        return Done(final, plan, commit)
    updates = _ledger_updates(settings, plan, commit)
    capture_journal.begin(
        settings.ledger_dir,
        capture_journal.CaptureJournal(settings.remote.key, settings.branch, commit, updates),
    )
    if before_push is not None:
        before_push(attempt)
    result = gitpublish.push_branch(
        settings.remote, plan.tip.mirror, settings.branch, commit, parent=plan.tip.commit
    )
    if not result.ok:
        capture_journal.end(settings.ledger_dir)  # the commit is not on the remote
    if result.status == "lost-race" or (not result.ok and _moved(settings, plan)):
        return None
    if not result.ok:
        ref = pending_ref(moment)
        gitpublish.set_ref(plan.tip.mirror, ref, commit)
        raise GitError(
            f"push to {settings.remote.display} was rejected: {result.reason}",
            hint=f"nothing was lost: the commit is kept at {ref} in {plan.tip.mirror}",
        )
    capture_journal.record(settings.ledger_dir, updates, settings.keyring.key_id)
    capture_journal.end(settings.ledger_dir)
    gitobjects.list_tree(plan.tip.mirror, commit)  # the next capture diffs its listing from here
    return Done(final, plan, commit, pushed=True)


def _moved(settings: Settings, plan: Plan) -> bool:
    """After a rejection: did the branch move (a race git reported as a lock failure)?"""
    try:
        fresh = gitmirror.fetch(settings.remote, settings.state_dir)
    except gitremote.FetchFailed:
        return False
    return fresh.refs.get(f"refs/heads/{settings.branch}") != plan.tip.commit


def _final_code(plan: Plan) -> ExitCode:
    return ExitCode.ATTENTION if _attention(plan) else ExitCode.OK


def _ledger_updates(settings: Settings, plan: Plan, revision: str) -> dict[str, LedgerEntry | None]:
    saved = {n: plan.values[n] for n in (*plan.added, *plan.rotated) if n in plan.values}
    store = replace(plan.store, file_values={**plan.store.file_values, **saved})
    return ledger_updates(settings, plan, revision, store, utc_stamp())


# ---------------------------------------------------------------------------------------------
# Output


def _report(settings: Settings, request: CaptureRequest, done: Done, *, as_json: bool) -> None:
    plan = done.plan
    if as_json:
        click.echo(json_document(results_json(plan, done.revision, done.pushed, done.pending)))
        if done.lines:
            click.echo(
                f"tether: {counted(len(done.lines), 'finding')}; nothing was committed", err=True
            )
        if plan is not None and plan.held:
            click.echo(printable(f"tether: {_held_line(plan)}"), err=True)
        return
    assert plan is not None
    style.narrate(
        f"tether capture: {settings.remote.display} {settings.branch} @ {plan.tip.commit[:12]}"
    )
    for path, result in sorted(plan.observation.results.items()):
        if result.action == Action.UNCHANGED and result.reason is None:
            style.detail(printable(f"  {'unchanged':<9} {path}"))
            continue
        reason = f": {result.reason}" if result.reason else ""
        needs_person = result.action in (Action.CONFLICT, Action.REFUSED, Action.HELD)
        if not needs_person and style.level() == style.QUIET:
            continue  # -q: the files committed are told by the summary line
        style.echo(style.paint(result.action, printable(f"  {result.action:<9} {path}{reason}")))
        if request.dry_run:
            diff = plan.diffs.get(plan.repo.source_path(path))
            if diff:
                style.echo("\n".join("    " + printable(x) for x in diff.rstrip("\n").split("\n")))
    if plan.allowlisted:
        verb = "would be " if request.dry_run else ""
        click.echo(printable(f"allowlist {verb}extended: {', '.join(plan.allowlisted)}"))
    if plan.added or plan.rotated:
        verb = "would be " if request.dry_run else ""
        parts = []
        if plan.added:
            parts.append(f"{verb}added: {_names(plan.added)}")
        if plan.rotated:
            parts.append(f"{verb}rotated: {_names(plan.rotated)}")
        click.echo(f"secrets {'; '.join(parts)}")
    if plan.held:
        click.echo(printable(_held_line(plan)), err=True)
    click.echo(_summary(settings, request, done), err=True)
    for line in done.lines:
        click.echo(f"  {printable(line)}")


def _held_line(plan: Plan) -> str:
    return (
        f"HELD: {held_text(plan.held)}: a secret remains after redaction, so the file is not "
        "committed (the next capture tries it again). Redact it on the host, name it in "
        "secrets.map, or accept it in the repo's .tether-baseline.json "
        "(`tether scan --update-baseline`); --strict commits nothing while a finding remains"
    )


def _names(names: tuple[str, ...], limit: int = 12) -> str:
    """Names (never values); a long list is cut short (--json lists them all)."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more (--json lists all)"


def _summary(settings: Settings, request: CaptureRequest, done: Done) -> str:
    plan = done.plan
    assert plan is not None
    n = sum(1 for r in plan.observation.results.values() if r.action in COMMITTED)
    if done.lines:
        return (
            f"STOPPED: {counted(len(done.lines), 'secret finding')} "
            f"{'remains' if len(done.lines) == 1 else 'remain'} after redaction; nothing was "
            "committed or stored. Redact them on the host, name them in secrets.map, or accept "
            "them in the repo's .tether-baseline.json (`tether scan --update-baseline`):"
        )
    conflicted = sorted(
        p for p, r in plan.observation.results.items() if r.action == Action.CONFLICT
    )
    if conflicted:
        url = settings.remote.display
        kept = (
            f" This capture is kept at {done.pending} "
            f"(inspect: git --git-dir {plan.tip.mirror} show {done.pending})."
            if done.pending
            else ""
        )
        pushed = "nothing would be pushed" if request.dry_run else "nothing was pushed"
        return (
            f"CONFLICT in {', '.join(conflicted)}: {pushed}.{kept} Resolve: "
            f"`tether reconcile --repo {url} --plan --diff`, then either take upstream with "
            f"`tether reconcile --repo {url} --apply --overwrite`, or merge upstream's change "
            "into the host file and run `tether capture --keep-host PATH`."
        )
    if request.dry_run:
        if not plan.changes:
            return "dry run: nothing to capture"
        return f"dry run: would commit {counted(len(plan.changes), 'file')}; nothing was written"
    if done.revision == plan.tip.commit:
        return "nothing to capture: the repo already describes the host"
    if not done.pushed:
        return (
            f"committed {done.revision[:12] if done.revision else '?'} ({counted(n, 'file')}) to "
            f"refs/heads/{settings.branch} in the mirror {plan.tip.mirror} only (--no-push)"
        )
    return (
        f"committed {done.revision[:12] if done.revision else '?'} ({counted(n, 'file')}) and "
        f"pushed to {settings.remote.display} {settings.branch}"
    )
