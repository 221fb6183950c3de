"""tether's own state: the state dir, the per-host hash key, and the ledger of what it wrote.

The ledger may describe files that hold secrets, so it never keeps plain or unsalted content
hashes: every hash is an HMAC-SHA256 with a random key that never leaves this host.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tether.errors import StateError
from tether.hostfs import fsutil
from tether.hostfs.probe import Sig

LEDGER_NAME = "ledger.json"
KEY_NAME = "key"
LEDGER_VERSION = 1
REBUILD_HINT = "run `tether reconcile --rebuild-ledger` to record what is in sync now"
# File timestamps tick coarsely (a kernel jiffy); a file changed within the same tick as our
# write keeps its size, mtime and ctime. Signatures this close to the save are not trusted.
RACY_NS = 100_000_000


def ensure_state_dir(path: Path) -> Path:
    """Create the state dir 0700 (tightening an existing one tether owns)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            path.chmod(0o700)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot create the state dir ({exc.strerror})",
            hint="pass --state-dir DIR writable by this user",
        ) from None
    return path


class Keyring:
    """The per-host HMAC key: content hashes that reveal nothing off this host."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def hash(self, data: bytes) -> str:
        return hmac.digest(self._key, data, "sha256").hex()

    def secret_digest(
        self, names: Mapping[str, str], values: Iterable[tuple[str, str | None]]
    ) -> str:
        """One keyed digest of the secret values a file used (and the names map it saw)."""
        canon = json.dumps([sorted(names.items()), sorted(values)], separators=(",", ":"))
        return self.hash(canon.encode("utf-8"))

    @property
    def key_id(self) -> str:
        return self.hash(b"tether key id")[:16]

    def __repr__(self) -> str:
        return "Keyring(***)"


def load_key(state_dir: Path) -> Keyring:
    """Read the key (32 random bytes, 0600), creating it on first use."""
    path = state_dir / KEY_NAME
    if not path.exists():
        _create_key(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: cannot read the hash key ({exc.strerror})") from None
    if len(key) < 32:
        raise StateError(
            f"{path}: the hash key is damaged ({len(key)} bytes)",
            hint=f"remove it and {REBUILD_HINT}",
        )
    return Keyring(key)


def _create_key(path: Path) -> None:
    """Write the key whole under a temp name, then link it in: a run starting at the same
    moment never reads a key still being written (the first link wins, the other is dropped)."""
    tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        fsutil.fsync_dir(path.parent)
    except OSError as exc:
        raise StateError(f"{path}: cannot create the hash key ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


class LedgerEntry(NamedTuple):
    """What tether last wrote to one destination."""

    path: str  # inventory path
    hash: str  # keyed hash of the bytes written
    mode: int
    uid: int
    gid: int
    revision: str | None
    time: str
    blob: str  # git blob id of the unrendered repo bytes
    secrets: tuple[str, ...] = ()
    secret_digest: str | None = None
    sig: Sig | None = None  # the destination's stat signature after writing
    source_sig: Sig | None = None  # the source file's stat signature (folder sources)

    def to_json(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_json(cls, row: list[Any]) -> LedgerEntry:
        (path, digest, mode, uid, gid, rev, when, blob, names, sdigest, sig, ssig) = row
        if not (isinstance(path, str) and isinstance(digest, str) and isinstance(mode, int)):
            raise ValueError("bad entry")
        if not (isinstance(uid, int) and isinstance(gid, int)) or (sig and len(sig) != 4):
            raise ValueError("bad entry")
        return cls(
            path, digest, mode, uid, gid, rev, when, blob, tuple(names), sdigest,
            tuple(sig) if sig else None,
            tuple(ssig) if ssig else None,
        )  # fmt: skip


def ledger_path(state_dir: Path) -> Path:
    return state_dir / LEDGER_NAME


def load_ledger(state_dir: Path) -> dict[str, LedgerEntry]:
    """Destination -> entry; no ledger yet is empty; an unusable one is a clear error."""
    path = ledger_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the ledger ({exc.strerror})", hint=REBUILD_HINT
        ) from None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != LEDGER_VERSION:
            raise ValueError(f"not a version {LEDGER_VERSION} ledger")
        return {dest: LedgerEntry.from_json(row) for dest, row in doc["entries"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        why = "not JSON" if isinstance(exc, json.JSONDecodeError) else "unexpected content"
        raise StateError(f"{path}: the ledger is corrupt ({why})", hint=REBUILD_HINT) from None


def trusted_sig(sig: Sig | None, now_ns: int) -> Sig | None:
    """Drop a signature too close to now to tell a later same-tick change apart."""
    if sig is None or sig[1] >= now_ns - RACY_NS or sig[3] >= now_ns - RACY_NS:
        return None
    return sig


def save_ledger(state_dir: Path, entries: Mapping[str, LedgerEntry]) -> None:
    """Write the ledger atomically (temp, fsync, rename, fsync the folder)."""
    now = time.time_ns()
    rows = {}
    for dest in sorted(entries):
        entry = entries[dest]
        safe_sig, safe_source = trusted_sig(entry.sig, now), trusted_sig(entry.source_sig, now)
        if (safe_sig, safe_source) != (entry.sig, entry.source_sig):
            entry = _replace_sigs(entry, safe_sig, safe_source)
        rows[dest] = entry.to_json()
    data = json.dumps({"version": LEDGER_VERSION, "entries": rows}, separators=(",", ":"))
    write_atomic(ledger_path(state_dir), data.encode("utf-8"), 0o600)


def _replace_sigs(entry: LedgerEntry, sig: Sig | None, source: Sig | None) -> LedgerEntry:
    return entry._replace(sig=sig, source_sig=source)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace one of tether's state files whole (see fsutil.write_atomic), or say why not."""
    try:
        fsutil.write_atomic(path, data, mode)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot write ({exc.strerror})", hint="check the state dir"
        ) from None
