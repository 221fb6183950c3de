"""The three-way plan: a pure function of desired (D: `Desired`), last written (L: `Recorded`) and
actual (A: `Actual`).

| action      | when                             | apply does                                  |
| in_sync     | A = D                            | nothing (records L)                         |
| create      | no A                             | writes D                                    |
| update      | A = L, D != A                    | writes D                                    |
| drift       | A != L, D = L                    | nothing unless overwrite (backs A up first) |
| conflict    | A != L, D != L, D != A           | nothing unless overwrite (backs A up first) |
| preexisting | no L, A != D                     | nothing unless overwrite (backs A up first) |
| blocked     | missing secret/source, unsafe    | nothing; says why                           |
| prune       | in L, no longer desired          | nothing unless pruning is enabled           |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple, Protocol, TypeVar

from tether.config.inventory import chosen_by
from tether.hostfs.probe import Sig

NEW_FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600


class Action(StrEnum):
    IN_SYNC = "in_sync"
    CREATE = "create"
    UPDATE = "update"
    DRIFT = "drift"
    CONFLICT = "conflict"
    PREEXISTING = "preexisting"
    BLOCKED = "blocked"
    PRUNE = "prune"


ATTENTION = frozenset({Action.DRIFT, Action.CONFLICT, Action.PREEXISTING, Action.BLOCKED})
ORDER = tuple(Action)


class Desired(NamedTuple):
    """Desired: the rendered file's keyed hash, or why it cannot be had."""

    path: str
    hash: str | None
    blocked: str | None = None
    mode: int | None = None  # enforced by the manifest
    uid: int | None = None
    gid: int | None = None
    has_secret: bool = False
    dest: str = ""  # absolute destination


class Recorded(NamedTuple):
    """Last written by tether."""

    path: str
    hash: str


class DesiredLike(Protocol):
    """What the plan reads of a desired file (`Desired`, or the engine's own record of it, so a
    run need not copy every file's values into a `Desired`)."""

    @property
    def dest(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def hash(self) -> str | None: ...
    @property
    def blocked(self) -> str | None: ...
    @property
    def mode(self) -> int | None: ...
    @property
    def uid(self) -> int | None: ...
    @property
    def gid(self) -> int | None: ...
    @property
    def has_secret(self) -> bool: ...


class RecordedLike(Protocol):
    """What the plan reads of a recorded file (`Recorded`, or a ledger entry)."""

    @property
    def path(self) -> str: ...
    @property
    def hash(self) -> str: ...


class Actual(NamedTuple):
    """Actual: missing, a file (hash, mode, owner, stat signature) or unsafe (why)."""

    kind: str  # "missing" | "file" | "blocked"
    hash: str | None = None
    reason: str | None = None
    mode: int = 0
    uid: int = -1
    gid: int = -1
    sig: Sig | None = None  # the file's stat signature when observed


class Item(NamedTuple):
    path: str
    dest: str
    action: Action
    reason: str | None = None
    write: bool = False  # apply writes the desired bytes
    backup: bool = False  # apply backs A up first
    remove: bool = False  # apply deletes the destination (prune)
    record: bool = False  # apply records the file in the ledger (in_sync)
    forget: bool = False  # apply drops its ledger entry (prune of a file already gone)
    mode: int | None = None  # mode D is written with
    uid: int = -1
    gid: int = -1
    d_hash: str | None = None
    a_hash: str | None = None
    # A's stat signature when planned: a write or removal refuses a file changed since, and
    # apply records it for a file in sync (the plan keeps no other record of the host).
    a_sig: Sig | None = None

    @property
    def changes(self) -> bool:
        return self.write or self.remove


@dataclass(frozen=True)
class Plan:
    items: tuple[Item, ...]
    overwrite: bool = False
    prune: bool = False

    def only(self, patterns: Sequence[str]) -> Plan:
        """The items `--only` names: by glob, by path, or by a folder above the path."""
        if not patterns:
            return self
        return replace(self, items=tuple(i for i in self.items if chosen_by(patterns, i.path)))

    def count(self) -> dict[str, int]:
        found = Counter(item.action for item in self.items)
        return {a.value: found[a] for a in ORDER}

    @property
    def changes(self) -> bool:
        return any(i.changes for i in self.items)

    @property
    def attention(self) -> bool:
        return any(i.action in ATTENTION and not i.changes for i in self.items)


def _exposed(d: DesiredLike, a: Actual) -> bool:
    """A file holding a secret, readable by group or others, with no mode in the manifest."""
    return d.has_secret and d.mode is None and a.kind == "file" and bool(a.mode & 0o077)


def _metadata(d: DesiredLike, a: Actual, *, rewriting: bool) -> tuple[int, int, int, list[str]]:
    """The mode and owner D is written with, and what differs from A on an existing file."""
    exists = a.kind == "file"
    diffs = []
    if d.mode is not None:
        mode = d.mode
        if exists and a.mode != d.mode:
            diffs.append(f"mode {a.mode:04o} -> {d.mode:04o}")
    elif not exists:
        mode = SECRET_FILE_MODE if d.has_secret else NEW_FILE_MODE
    elif rewriting and _exposed(d, a):  # written with secrets in it: others may not read it
        mode = SECRET_FILE_MODE
        diffs.append(f"mode {a.mode:04o} -> {SECRET_FILE_MODE:04o} (it holds a secret)")
    else:
        mode = a.mode
    uid = d.uid if d.uid is not None else (a.uid if exists else -1)
    gid = d.gid if d.gid is not None else (a.gid if exists else -1)
    if exists and d.uid is not None and a.uid != d.uid:
        diffs.append(f"owner {a.uid} -> {d.uid}")
    if exists and d.gid is not None and a.gid != d.gid:
        diffs.append(f"group {a.gid} -> {d.gid}")
    return mode, uid, gid, diffs


def classify(
    dest: str,
    d: DesiredLike,
    recorded: RecordedLike | None,
    a: Actual,
    *,
    overwrite: bool = False,
) -> Item:
    """One destination's action."""
    if d.blocked or d.hash is None:
        reason = d.blocked or "no content"
        return Item(d.path, dest, Action.BLOCKED, reason, d_hash=d.hash, a_hash=a.hash)
    if a.kind == "blocked":
        return Item(d.path, dest, Action.BLOCKED, a.reason, d_hash=d.hash, a_hash=a.hash)
    if a.kind == "file" and a.hash == d.hash and d.mode is None and d.uid is None and d.gid is None:
        # the common case, kept cheap: nothing to write (one copy of the equal hashes)
        record = recorded is None or recorded.hash != d.hash or recorded.path != d.path
        return Item(d.path, dest, Action.IN_SYNC, None, False, False, False, record, False,
                    a.mode, a.uid, a.gid, d.hash, d.hash, a.sig)  # fmt: skip
    # Bytes that change are written private when they hold a secret; a file already as desired
    # is not rewritten for that (a live service may rely on reading it).
    mode, uid, gid, diffs = _metadata(d, a, rewriting=a.hash != d.hash)
    base = Item(
        d.path, dest, Action.BLOCKED, mode=mode, uid=uid, gid=gid, d_hash=d.hash, a_hash=a.hash,
        a_sig=a.sig,
    )  # fmt: skip
    if a.kind == "missing":
        why = "deleted on the host since tether wrote it" if recorded is not None else None
        return base._replace(action=Action.CREATE, reason=why, write=True)
    if a.hash == d.hash:
        if diffs:
            return base._replace(action=Action.UPDATE, reason=", ".join(diffs), write=True)
        record = recorded is None or recorded.hash != d.hash or recorded.path != d.path
        return base._replace(action=Action.IN_SYNC, record=record)
    if recorded is not None and a.hash == recorded.hash:
        why = "changed in the repo" + "".join(f"; {x}" for x in diffs)
        return base._replace(action=Action.UPDATE, reason=why, write=True)
    if recorded is None:
        action, why = Action.PREEXISTING, "exists on the host but tether never wrote it"
    elif d.hash == recorded.hash:
        action, why = Action.DRIFT, "changed on the host since tether wrote it"
    else:
        action, why = Action.CONFLICT, "changed both on the host and in the repo"
    if overwrite:
        why = f"{why}; overwriting (backed up first)"
        return base._replace(action=action, reason=why, write=True, backup=True)
    hint = "capture it, or --overwrite" if action == Action.DRIFT else "--overwrite replaces it"
    return base._replace(action=action, reason=f"{why} ({hint})")


def prune_item(
    dest: str,
    recorded: RecordedLike,
    a: Actual,
    *,
    prune: bool,
    overwrite: bool,
    empty: bool,
) -> Item:
    """A destination tether wrote that is no longer desired."""
    base = Item(recorded.path, dest, Action.PRUNE, a_hash=a.hash, a_sig=a.sig)
    if a.kind == "missing":
        why = "no longer desired and already gone"
        return base._replace(reason=why, forget=prune and not empty)
    if empty:
        return base._replace(reason="the desired set is empty; tether never prunes everything")
    if not prune:
        return base._replace(reason="no longer desired; kept (--prune removes it)")
    if a.kind == "blocked":
        return base._replace(reason=f"no longer desired; not removed: {a.reason}")
    if a.hash != recorded.hash and not overwrite:
        why = "no longer desired but changed on the host; kept (--overwrite removes it)"
        return base._replace(reason=why)
    why = "no longer desired; removing (backed up first)"
    return base._replace(reason=why, remove=True, backup=True)


R = TypeVar("R", bound=RecordedLike)


def plan(
    desired: Iterable[DesiredLike],
    ledger: Mapping[str, R],
    observe: Callable[[str, R | None], Actual],
    *,
    overwrite: bool = False,
    prune: bool = False,
) -> Plan:
    """Every desired destination, then every ledger destination no longer desired, each in
    destination order. `observe(dest, recorded)` finds the destination's actual state as the
    plan reaches it: nothing of the host is held but what an item keeps of it."""
    # A list sorted by destination, not a dict of them: one reference a file, not a dict slot.
    wanted = sorted(desired, key=attrgetter("dest"))
    items = []
    for d in wanted:
        recorded = ledger.get(d.dest)
        items.append(classify(d.dest, d, recorded, observe(d.dest, recorded), overwrite=overwrite))
    empty = not wanted
    for dest in _not_desired(sorted(ledger), wanted):
        recorded = ledger[dest]
        a = observe(dest, recorded)
        items.append(prune_item(dest, recorded, a, prune=prune, overwrite=overwrite, empty=empty))
    return Plan(tuple(items), overwrite=overwrite, prune=prune)


def _not_desired(recorded: list[str], wanted: list[DesiredLike]) -> Iterator[str]:
    """The recorded destinations no desired file has (both lists in destination order)."""
    dests = iter(d.dest for d in wanted)
    current = next(dests, None)
    for dest in recorded:
        while current is not None and current < dest:
            current = next(dests, None)
        if current != dest:
            yield dest
