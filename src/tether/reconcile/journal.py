"""The apply journal (`applying.json` in the state dir): written, fsynced, before the first
write of an apply, removed after the ledger is saved. A journal still there at the next run
means the apply was killed; `recover` finishes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import StateError
from tether.state.lock import try_lock
from tether.state.statedir import remove_left_temps, write_state_file

if TYPE_CHECKING:
    from tether.hostfs.host import Confinement
    from tether.state.ledger import LedgerEntry

MARKER_NAME = "applying.json"


@dataclass(frozen=True)
class Journal:
    root: str  # the target root the apply wrote under
    folders: tuple[str, ...]  # where its temp files may be left
    entries: Mapping[str, LedgerEntry]  # what the ledger says once each write has landed
    temp_token: str | None = None  # in the apply's temp names (None: written by an older tether)
    # service -> its inventory paths this apply changes: pending even if the apply is killed
    services: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ledger_dir: str | None = None  # the repo's ledger folder (None: the state dir, older tethers)

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root,
            "folders": list(self.folders),
            "entries": {dest: e.to_json() for dest, e in self.entries.items()},
            "temp_token": self.temp_token,
            "services": {name: list(paths) for name, paths in self.services.items()},
            "ledger_dir": self.ledger_dir,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Journal:
        from tether.state.ledger import LedgerEntry  # noqa: PLC0415 (see recover)

        folders = data["folders"]
        entries = data["entries"]
        services = data.get("services") or {}
        if not isinstance(folders, list) or not isinstance(entries, dict):
            raise TypeError("folders or entries of the wrong type")
        if not isinstance(services, dict):
            raise TypeError("services of the wrong type")
        return cls(
            str(data["root"]),
            tuple(str(f) for f in folders),
            {str(d): LedgerEntry.from_json(r) for d, r in entries.items()},
            None if data.get("temp_token") is None else str(data["temp_token"]),
            {str(n): tuple(str(p) for p in paths) for n, paths in services.items()},
            None if data.get("ledger_dir") is None else str(data["ledger_dir"]),
        )


def journal_path(state_dir: Path) -> Path:
    return state_dir / MARKER_NAME


def folders_of(dests: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({dest.rsplit("/", 1)[0] or "/" for dest in dests}))


def begin(state_dir: Path, journal: Journal) -> None:
    write_state_file(journal_path(state_dir), json.dumps(journal.to_json()).encode("utf-8"), 0o600)


def end(state_dir: Path) -> None:
    with contextlib.suppress(OSError):
        journal_path(state_dir).unlink()


def _read(state_dir: Path) -> Journal | None:
    """The journal left behind, or None; an unreadable one is dropped (nothing to finish)."""
    marker = journal_path(state_dir)
    try:
        return Journal.from_json(json.loads(marker.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        marker.unlink(missing_ok=True)
        return None


def recover(state_dir: Path, *, have_lock: bool) -> int:
    """Finish after a killed apply: remove its temp files, record in the ledger the files it
    did replace (their bytes match the journal), so they are not mistaken for host edits, and
    leave the services it was changing pending, so the next apply runs their handlers.

    Runs only under the lock (a live apply's journal is not a leftover); returns temps removed.
    """
    if have_lock:  # a kill while the journal itself was written leaves its temp file
        remove_left_temps(journal_path(state_dir))
    try:  # a state dir this user cannot use is reported by the run itself, in one line
        if not journal_path(state_dir).exists():
            return 0
        fd = None if have_lock else try_lock(state_dir)
    except OSError:
        return 0
    if fd is None and not have_lock:
        return 0
    # Loaded only with a journal to finish: every reconcile asks, and there rarely is one.
    from tether.hostfs.host import Confinement, RealHost  # noqa: PLC0415
    from tether.state.services import mark_pending  # noqa: PLC0415

    try:
        journal = _read(state_dir)
        if journal is None:
            return 0
        confinement = Confinement(journal.root)
        removed = RealHost(confinement).clean_temps(journal.folders, journal.temp_token)
        _record_landed(state_dir, journal, confinement)
        mark_pending(state_dir, journal.services)  # its handlers never ran (or not all)
        end(state_dir)
        return removed
    finally:
        if fd is not None:
            os.close(fd)


def _record_landed(state_dir: Path, journal: Journal, confinement: Confinement) -> None:
    from tether.hostfs.host import read_regular  # noqa: PLC0415 (see recover)
    from tether.state.keyring import load_key  # noqa: PLC0415
    from tether.state.ledger import load_ledger, save_ledger  # noqa: PLC0415

    if not journal.entries:
        return
    ledger_dir = Path(journal.ledger_dir) if journal.ledger_dir else state_dir
    try:
        ledger = load_ledger(ledger_dir)
    except StateError:
        return  # a corrupt ledger is reported by the run itself; rebuild fixes both
    keyring = load_key(state_dir)
    changed = False
    for dest, entry in journal.entries.items():
        known = ledger.get(dest)
        if known is not None and known.hash == entry.hash:
            continue
        probe = confinement.probe(dest)
        if probe.kind != "file" or probe.real is None:
            continue
        with contextlib.suppress(OSError):
            if keyring.hash(read_regular(probe.real)) == entry.hash:
                ledger[dest] = entry._replace(sig=probe.sig, source_sig=None)
                changed = True
    if changed:
        save_ledger(ledger_dir, ledger, keyring.key_id)
