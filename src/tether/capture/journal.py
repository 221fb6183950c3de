"""The capture journal (`capturing.json` in the state dir).

A capture pushes first and records in the ledger after. Killed in between, the ledger still
describes the old commit, so the next capture would take its own pushed commit for an upstream
change and call every file it captured a conflict. So before the push, the commit id and the
ledger entries it implies are written (fsynced) here; the next capture, under the lock, looks
at the remote: a journal whose commit reached the branch is completed (the ledger saved), one
whose commit did not is dropped (nothing of it is anywhere but the mirror).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tether.state.ledger import LedgerEntry, load_ledger, save_ledger
from tether.state.statedir import remove_left_temps, write_state_file

JOURNAL_NAME = "capturing.json"


@dataclass(frozen=True)
class CaptureJournal:
    remote: str  # the remote's credential-free key: a journal of another remote is not ours
    branch: str
    commit: str  # the commit being pushed
    entries: Mapping[str, LedgerEntry | None]  # ledger updates once it landed (None: forget)

    def to_json(self) -> dict[str, object]:
        return {
            "remote": self.remote,
            "branch": self.branch,
            "commit": self.commit,
            "entries": {d: None if e is None else e.to_json() for d, e in self.entries.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CaptureJournal:
        entries = data["entries"]
        if not isinstance(entries, dict):
            raise TypeError("entries is not an object")
        return cls(
            str(data["remote"]),
            str(data["branch"]),
            str(data["commit"]),
            {str(d): None if r is None else LedgerEntry.from_json(r) for d, r in entries.items()},
        )


def journal_path(state_dir: Path) -> Path:
    return state_dir / JOURNAL_NAME


def begin(state_dir: Path, journal: CaptureJournal) -> None:
    """Write the journal whole and durable, before the push it describes."""
    data = json.dumps(journal.to_json()).encode("utf-8")
    write_state_file(journal_path(state_dir), data, 0o600)


def end(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        journal_path(state_dir).unlink()


def pending(state_dir: Path) -> CaptureJournal | None:
    """The journal a killed capture left, or None; an unreadable one is dropped (as is a temp
    file of a journal whose write was killed). Called under the state dir's lock."""
    path = journal_path(state_dir)
    remove_left_temps(path)
    try:
        return CaptureJournal.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        end(state_dir)
        return None


def record(state_dir: Path, entries: Mapping[str, LedgerEntry | None], key_id: str) -> None:
    """Apply `entries` to the ledger (None forgets a destination) and save it."""
    if not entries:
        return
    ledger = load_ledger(state_dir)
    for dest, entry in entries.items():
        if entry is None:
            ledger.pop(dest, None)
        else:
            ledger[dest] = entry
    save_ledger(state_dir, ledger, key_id)
