"""Backups of bytes tether overwrote or removed: content-addressed in state_dir/backups.

Objects are named by a keyed hash (they may hold secrets); `index.jsonl` says which
destination each came from and when. `tether backups restore ID` puts one back.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

from tether.errors import StateError
from tether.hostfs.fsutil import fsync_dir, write_all, write_atomic
from tether.stamps import utc_stamp
from tether.state.keyring import Keyring

BACKUPS_NAME = "backups"
INDEX_NAME = "index.jsonl"


class Owned(Protocol):
    """What a backup keeps of the file besides its bytes (a host Probe has these)."""

    @property
    def mode(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...


@dataclass(frozen=True)
class Backup:
    id: str
    dest: str
    time: str
    size: int
    mode: int
    uid: int
    gid: int
    reason: str
    root: str = "/"  # the target root the destination was under: a restore stays inside it


def _record(line: bytes) -> Backup | None:
    """One index line, or None for a line that is not one tether wrote (a torn last line
    from a crash, or damage): skipped, as the run history skips its bad lines."""
    try:
        data = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(Backup)}:
        return None
    for field in fields(Backup):  # annotations are strings here: "str" or "int"
        if type(data[field.name]).__name__ != field.type:
            return None
    if not re.fullmatch(r"[0-9a-f]{1,64}", data["id"]):
        return None  # ids name files under objects/: hex only, never a path
    return Backup(**data)


class BackupStore:
    def __init__(self, state_dir: Path, keyring: Keyring) -> None:
        self.root = state_dir / BACKUPS_NAME
        self.keyring = keyring

    def _object(self, backup_id: str) -> Path:
        return self.root / "objects" / backup_id

    def save(self, dest: str, data: bytes, owner: Owned, *, reason: str, root: str) -> Backup:
        """Store the bytes durably before anything replaces them, with the file's mode and
        owner (`owner` is the destination's probe) so a restore puts them back too."""
        backup_id = self.keyring.hash(dest.encode("utf-8") + b"\0" + data)[:16]
        path = self._object(backup_id)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                write_atomic(path, data, 0o600)
            record = Backup(
                id=backup_id,
                dest=dest,
                time=utc_stamp(),
                size=len(data),
                mode=owner.mode,
                uid=owner.uid,
                gid=owner.gid,
                root=root,
                reason=reason,
            )
            fd = os.open(self.root / INDEX_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                write_all(fd, (json.dumps(asdict(record)) + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            for folder in (path.parent, self.root):
                fsync_dir(folder)
        except OSError as exc:
            raise StateError(
                f"{self.root}: cannot back up {dest} ({exc.strerror}); nothing was overwritten",
                hint="free space in the state dir or fix its permissions",
            ) from None
        return record

    def list(self) -> list[Backup]:
        """Every backup, newest first (one row per id: its latest record)."""
        index = self.root / INDEX_NAME
        try:
            lines = index.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(
                f"{index}: cannot read the backup index ({exc.strerror})",
                hint="check its permissions",
            ) from None
        rows = {r.id: r for r in map(_record, lines) if r is not None}
        return sorted(rows.values(), key=lambda b: (b.time, b.id), reverse=True)

    def get(self, backup_id: str) -> tuple[Backup, bytes]:
        matches = [b for b in self.list() if b.id.startswith(backup_id)] if backup_id else []
        if len(matches) != 1:
            why = "no backup has" if not matches else "several backups have"
            raise StateError(
                f"{why} the id {backup_id!r}", hint="run `tether backups` to list them"
            )
        try:
            return matches[0], self._object(matches[0].id).read_bytes()
        except OSError as exc:
            raise StateError(
                f"{self._object(matches[0].id)}: cannot read the backup ({exc.strerror})"
            ) from None
