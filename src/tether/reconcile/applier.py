"""Run a Plan on a Host and say what happened.

Order: mark the apply as running (so a killed run's temp files are found), back up what will
be overwritten, write in chunks (temp files, one flush, renames), remove pruned files, then
save the ledger. A crash at any moment leaves each destination with its old or its new bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from tether.config.manifest import Service
from tether.errors import StateError
from tether.hostfs.host import DEFAULT_DIR_MODE, Host, WriteOp, describe_os_error, read_regular
from tether.hostfs.probe import Sig, sig_size
from tether.reconcile import journal
from tether.reconcile.desired import DesiredFile, StaleSource
from tether.reconcile.engine import Run
from tether.reconcile.planner import NEW_FILE_MODE, Action, Item, Plan
from tether.reconcile.services import Selected, ServiceResult, owners, with_handlers
from tether.stamps import utc_stamp
from tether.state.ledger import LedgerEntry, save_ledger
from tether.state.services import mark_pending
from tether.state.statedir import ensure_state_dir

if TYPE_CHECKING:
    from tether.state.backups import Backup, BackupStore

CHUNK_FILES = 2000
CHUNK_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    item: Item
    done: bool = False  # the planned write or removal happened (or would, on a dry run)
    error: str | None = None
    backup: Backup | None = None


@dataclass
class Report:
    plan: Plan
    revision: str | None
    dry_run: bool
    results: dict[str, Outcome]  # dest -> what apply did, for the items it acted on
    warnings: list[str] = field(default_factory=list)
    layers: dict[str, str] = field(default_factory=dict)  # path -> "host" (else "shared")
    services: list[Selected] = field(default_factory=list)  # who runs after the apply, and why
    service_results: list[ServiceResult] = field(default_factory=list)

    def outcome(self, item: Item) -> Outcome:
        return self.results.get(item.dest) or Outcome(item)

    @property
    def outcomes(self) -> Iterator[Outcome]:
        """Every item's outcome in plan order, made as read (most items are in sync: a run
        holds no outcome for them)."""
        return map(self.outcome, self.plan.items)

    def where(self, chosen: Callable[[Item], bool], *, in_sync: bool = False) -> list[Outcome]:
        """The outcomes of the items `chosen`, in plan order; of items in sync only when asked
        (the many a text report never lists)."""
        items = self.plan.items if in_sync else self._not_in_sync
        return [self.outcome(i) for i in items if chosen(i)]

    @cached_property
    def _not_in_sync(self) -> list[Item]:
        return [i for i in self.plan.items if i.action != Action.IN_SYNC]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self._acted() if o.error]

    @property
    def backups(self) -> list[Backup]:
        return [o.backup for o in self._acted() if o.backup]

    def _acted(self) -> list[Outcome]:
        results = self.results
        return [results[i.dest] for i in self.plan.items if i.dest in results]


def _chunks(items: list[Item], files: dict[str, DesiredFile]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    size = 0
    for item in items:
        chunk.append(item)
        sig = files[item.dest].source_sig
        size += sig_size(sig) if sig else 4096
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _offset(
    progress: Callable[[int, int], None] | None, base: int, total: int
) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda n: progress(base + n, total)


def apply_plan(  # noqa: PLR0915
    run: Run,
    plan: Plan,
    host: Host,
    *,
    progress: Callable[[int, int], None] | None = None,
    services: Sequence[Service] = (),
) -> Report:
    """Apply `plan`; the `services` owning a file it changes become pending (in the journal
    before the first write, in the services file before the journal goes)."""
    # The desired files this apply reads: those it writes, and on a real apply those it records
    # as in sync (a plan of many files in sync holds no second index of them).
    wanted = {i.dest for i in plan.items if i.write or (not host.dry_run and i.action == "in_sync")}
    files = {f.dest: f for f in run.desired.files if f.dest in wanted}
    services = with_handlers(services)
    now = utc_stamp()
    outcomes: dict[str, Outcome] = {}  # only the items acted on
    report = Report(plan, run.desired.revision, host.dry_run, outcomes, list(run.desired.warnings))
    report.layers = dict.fromkeys(run.repo.overlay, "host")
    writes = [i for i in plan.items if i.write]
    writing = {i.dest: i for i in writes}
    removes = [i for i in plan.items if i.remove]
    total = len(writes) + len(removes)
    if total and not host.dry_run:
        journal.begin(
            run.state_dir,
            journal.Journal(
                root=run.confinement.root,
                folders=journal.folders_of(i.dest for i in writes + removes),
                entries={i.dest: _entry(run, i, files[i.dest], None, now) for i in writes},
                temp_token=host.temp_token,
                services=owners(services, (i.path for i in writes + removes)),
                ledger_dir=str(run.ledger_dir),
            ),
        )
    backups: BackupStore | None = None  # opened for the first item to back up
    blocked_by_backup: set[str] = set()
    for item in writes + removes:
        if item.backup:
            backups = backups or _backup_store(run)
            outcome = _backup(run, item, backups, host.dry_run)
            outcomes[item.dest] = outcome
            if outcome.error:
                blocked_by_backup.add(item.dest)
    done = 0
    for chunk in _chunks([i for i in writes if i.dest not in blocked_by_backup], files):
        ops: list[WriteOp] = []
        for item in chunk:
            desired = files[item.dest]
            try:  # a dry run writes nothing: reading and rendering again would be wasted
                data = b"" if host.dry_run else run.desired.content(desired)
            except (StaleSource, OSError) as exc:
                outcomes[item.dest] = Outcome(item, error=f"not written: {exc}")
                continue
            ops.append(
                WriteOp(
                    item.dest,
                    data,
                    item.mode if item.mode is not None else NEW_FILE_MODE,
                    -1 if os.geteuid() else item.uid,
                    -1 if os.geteuid() else item.gid,
                    desired.dir_mode if desired.dir_mode is not None else DEFAULT_DIR_MODE,
                    item.a_sig,  # None: nothing there when planned
                )
            )
        results = host.write_files(ops, _offset(progress, done, total))
        for result in results:
            item = writing[result.dest]
            backup = report.outcome(item).backup  # taken before the write, if any
            outcomes[result.dest] = Outcome(item, result.ok, result.error, backup)
            run.desired.release(result.dest)
            if result.ok and not host.dry_run:
                run.ledger[result.dest] = _entry(run, item, files[result.dest], result.sig, now)
        done += len(chunk)
    for item in removes:
        if item.dest in blocked_by_backup:
            continue
        assert item.a_sig is not None
        error = host.remove(item.dest, item.a_sig)
        backup = report.outcome(item).backup  # taken before the removal, if any
        outcomes[item.dest] = Outcome(item, error is None, error, backup)
        if error is None and not host.dry_run:
            run.ledger.pop(item.dest, None)
        done += 1
        if progress:
            progress(done, total)
    if not host.dry_run:
        _record_in_sync(run, plan, files)
        ensure_state_dir(run.ledger_dir)
        save_ledger(run.ledger_dir, run.ledger, run.keyring.key_id)
        changed = [o.item.path for o in outcomes.values() if o.done and o.item.changes]
        mark_pending(run.state_dir, owners(services, changed))
        if total:
            journal.end(run.state_dir)
    return report


def _entry(run: Run, item: Item, desired: DesiredFile, sig: Sig | None, when: str) -> LedgerEntry:
    """The ledger entry for writing `desired` as `item` says."""
    assert desired.hash is not None
    euid = os.geteuid()
    return LedgerEntry(
        path=desired.path,
        hash=desired.hash,
        mode=item.mode if item.mode is not None else NEW_FILE_MODE,
        uid=item.uid if item.uid != -1 and euid == 0 else euid,
        gid=item.gid if item.gid != -1 and euid == 0 else os.getegid(),
        revision=run.desired.revision,
        time=when,
        blob=desired.blob or "",
        secrets=desired.secrets,
        secret_digest=desired.secret_digest,
        sig=sig,
        source_sig=desired.source_sig,
    )


def _record_in_sync(run: Run, plan: Plan, files: dict[str, DesiredFile]) -> None:
    """Record (or refresh the stat cache of) destinations already as desired."""
    for item in plan.items:
        if item.forget:
            run.ledger.pop(item.dest, None)
            continue
        if item.action != "in_sync":
            continue
        desired = files[item.dest]
        known = run.ledger.get(item.dest)
        if (
            known is not None
            and not item.record
            and known.sig == item.a_sig
            and known.source_sig == desired.source_sig
        ):
            continue
        assert desired.hash is not None and item.mode is not None
        run.ledger[item.dest] = LedgerEntry(
            path=desired.path,
            hash=desired.hash,
            mode=item.mode,
            uid=item.uid,
            gid=item.gid,
            revision=known.revision if known and not item.record else run.desired.revision,
            time=known.time if known and not item.record else utc_stamp(),
            blob=desired.blob or (known.blob if known else ""),
            secrets=desired.secrets,
            secret_digest=desired.secret_digest,
            sig=item.a_sig,  # in sync: mode and owner are the host's, as planned
            source_sig=desired.source_sig,
        )


def _backup_store(run: Run) -> BackupStore:
    from tether.state.backups import BackupStore  # noqa: PLC0415 (most runs back nothing up)

    return BackupStore(run.state_dir, run.keyring)


def _backup(run: Run, item: Item, store: BackupStore, dry_run: bool) -> Outcome:
    if item.a_sig is None or dry_run:  # nothing there to keep (or nothing will be replaced)
        return Outcome(item)
    probe = run.confinement.probe(item.dest)
    if probe.kind != "file" or probe.real is None:
        return Outcome(item, error="changed on the host during the apply; untouched")
    try:
        data = read_regular(probe.real)
    except OSError as exc:
        return Outcome(item, error=f"cannot back it up ({describe_os_error(exc)}); untouched")
    if run.keyring.hash(data) != item.a_hash:
        return Outcome(item, error="changed on the host during the apply; untouched")
    try:
        backup = store.save(
            item.dest, data, probe, reason=item.action.value, root=run.confinement.root
        )
    except StateError as exc:
        return Outcome(item, error=exc.message)
    return Outcome(item, backup=backup)
