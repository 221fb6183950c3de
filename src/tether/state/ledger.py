"""The ledger: what tether last wrote to each destination, keyed hashes only.

The ledger may describe files that hold secrets, so it never keeps plain or unsalted content
hashes: every hash is an HMAC-SHA256 with a random key that never leaves this host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tether.errors import StateError
from tether.hostfs.host import Probe
from tether.hostfs.probe import Sig
from tether.state.statedir import REBUILD_HINT, write_state_file
from tether.textsafe import keyed_name

LEDGER_NAME = "ledger.json"
REPOS_DIR = "repos"  # state_dir/repos/<slug>-<hash of the repo's identity>/ledger.json
LEDGER_VERSION = 1
# File timestamps tick coarsely (a kernel jiffy); a file changed within the same tick as our
# write keeps its size, mtime and ctime. Signatures this close to the save are not trusted.
RACY_NS = 100_000_000


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

    @classmethod
    def found(
        cls,
        probe: Probe,
        *,
        path: str,
        hash: str,
        revision: str | None,
        time: str,
        blob: str,
        secrets: tuple[str, ...] = (),
        secret_digest: str | None = None,
        source_sig: Sig | None = None,
    ) -> LedgerEntry:
        """The entry for a destination as found on the host (mode, owner and stat from `probe`)."""
        return cls(
            path=path,
            hash=hash,
            mode=probe.mode,
            uid=probe.uid,
            gid=probe.gid,
            revision=revision,
            time=time,
            blob=blob,
            secrets=secrets,
            secret_digest=secret_digest,
            sig=probe.sig,
            source_sig=source_sig,
        )

    def vouches_for(self, probe: Probe) -> bool:
        """The stat cache: the destination is still exactly what this entry describes."""
        return self.sig is not None and self.sig == probe.sig

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


def repo_ledger_dir(state_dir: Path, identity: str) -> Path:
    """Where the ledger of one config repo lives: each repo prunes only what it wrote."""
    return state_dir / REPOS_DIR / keyed_name(identity)


class Ledger(dict[str, LedgerEntry]):
    """Destination -> entry, and the id of the hash key its hashes were made with."""

    def __init__(self, entries: Mapping[str, LedgerEntry] = {}, key_id: str | None = None) -> None:
        super().__init__(entries)
        self.key_id = key_id  # None: no ledger yet, or one written before key ids were kept


def load_ledger(state_dir: Path) -> Ledger:
    """Destination -> entry; no ledger yet is empty; an unusable one is a clear error."""
    path = ledger_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Ledger()
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the ledger ({exc.strerror})", hint=REBUILD_HINT
        ) from None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != LEDGER_VERSION:
            raise ValueError(f"not a version {LEDGER_VERSION} ledger")
        key_id = doc.get("key")
        entries = {dest: LedgerEntry.from_json(row) for dest, row in doc["entries"].items()}
        return Ledger(entries, key_id if isinstance(key_id, str) else None)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        why = "not JSON" if isinstance(exc, json.JSONDecodeError) else "unexpected content"
        raise StateError(f"{path}: the ledger is corrupt ({why})", hint=REBUILD_HINT) from None


def load_repo_ledger(
    state_dir: Path, ledger_dir: Path, tracked: Collection[str] | None = None
) -> Ledger:
    """The ledger of the repo whose ledger lives in `ledger_dir`, over the entries it adopts
    from a ledger of the whole state dir (written before ledgers were kept per repo): those of
    the paths its allowlist covers (`tracked`; None: all, for lookups only, as capture saves
    just the entries it changes), never to prune another repo's. The old ledger is only read."""
    own = load_ledger(ledger_dir)
    if not ledger_path(state_dir).exists():
        return own
    legacy = load_ledger(state_dir)
    if own and own.key_id != legacy.key_id:
        return own  # hashed with another key: not comparable
    wanted = None if tracked is None else set(tracked)
    adopted = {
        d: e for d, e in legacy.items() if (wanted is None or e.path in wanted) and d not in own
    }
    if not adopted:
        return own
    return Ledger({**adopted, **own}, own.key_id if own else legacy.key_id)


def trusted_sig(sig: Sig | None, now_ns: int) -> Sig | None:
    """Drop a signature too close to now to tell a later same-tick change apart."""
    if sig is None or sig[1] >= now_ns - RACY_NS or sig[3] >= now_ns - RACY_NS:
        return None
    return sig


def save_ledger(state_dir: Path, entries: Mapping[str, LedgerEntry], key_id: str) -> None:
    """Write the ledger atomically (temp, fsync, rename, fsync the folder), with the id of the
    hash key its hashes were made with (a replaced key is then noticed, see reconcile)."""
    now = time.time_ns()
    rows = {}
    for dest in sorted(entries):
        entry = entries[dest]
        safe_sig, safe_source = trusted_sig(entry.sig, now), trusted_sig(entry.source_sig, now)
        if (safe_sig, safe_source) != (entry.sig, entry.source_sig):
            entry = _replace_sigs(entry, safe_sig, safe_source)
        rows[dest] = entry.to_json()
    doc = {"version": LEDGER_VERSION, "key": key_id, "entries": rows}
    data = json.dumps(doc, separators=(",", ":"))
    write_state_file(ledger_path(state_dir), data.encode("utf-8"), 0o600)


def _replace_sigs(entry: LedgerEntry, sig: Sig | None, source: Sig | None) -> LedgerEntry:
    return entry._replace(sig=sig, source_sig=source)
