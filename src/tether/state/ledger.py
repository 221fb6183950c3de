"""The ledger: what tether last wrote to each destination, keyed hashes only.

The ledger may describe files that hold secrets, so it never keeps plain or unsalted content
hashes: every hash is an HMAC-SHA256 with a random key that never leaves this host.
"""

from __future__ import annotations

import functools
import json
import struct
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from tether.errors import StateError
from tether.hostfs.host import Probe
from tether.hostfs.probe import NO_SIG, Sig, pack_sig, sig_to_json, trusted_sig
from tether.state.statedir import REBUILD_HINT, write_state_file
from tether.textsafe import keyed_name

LEDGER_NAME = "ledger.json"
REPOS_DIR = "repos"  # state_dir/repos/<slug>-<hash of the repo's identity>/ledger.json
# 2: a block of entries a line, each block a column a field (1: a JSON row an entry; still read).
LEDGER_VERSION = 2
LOAD_CHUNK = 2000  # version 1 ledger lines parsed at a time
BLOCK = 2000  # entries a block
# Fields whose few distinct values a block stores once, with an index for each entry.
TABLED = frozenset({"mode", "uid", "gid", "revision", "time", "secrets", "secret_digest"})


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
        return [*self[:10], sig_to_json(self.sig), sig_to_json(self.source_sig)]

    @classmethod
    def from_json(
        cls, row: list[Any], shared: dict[Any, Any] | None = None, paths: OneCopy | None = None
    ) -> LedgerEntry:
        """An entry from its JSON row; `shared` (one dict per load) keeps one copy of the values
        many entries repeat (time, revision, mode, secret digest, secret names), `paths` the
        allowlist's copy of the path."""
        (path, digest, mode, uid, gid, rev, when, blob, names, sdigest, sig, ssig) = row
        if not (isinstance(path, str) and isinstance(digest, str) and isinstance(mode, int)):
            raise ValueError("bad entry")
        if not (isinstance(uid, int) and isinstance(gid, int)):
            raise ValueError("bad entry")
        names = tuple(names)
        if shared is not None:
            path = paths(path) if paths is not None else path
            rev, when = shared.setdefault(rev, rev), shared.setdefault(when, when)
            mode = shared.setdefault(mode, mode)
            names, sdigest = shared.setdefault(names, names), shared.setdefault(sdigest, sdigest)
        try:  # a signature is stored as a list of four ints, or null
            sig = pack_sig(*sig) if sig else None
            ssig = pack_sig(*ssig) if ssig else None
        except (struct.error, TypeError):
            raise ValueError("bad signature") from None
        return cls(path, digest, mode, uid, gid, rev, when, blob, names, sdigest, sig, ssig)


class OneCopy:
    """Hands back the string of `ordered` (ascending) equal to the one asked, so two lists of
    the same paths hold one copy, without a table of them all: a merge, so strings asked in
    ascending order are all found; one asked out of order is handed back as it is."""

    def __init__(self, ordered: Iterable[str]) -> None:
        self._next = iter(ordered).__next__
        self._current = self._advance()

    def _advance(self) -> str | None:
        try:
            return self._next()
        except StopIteration:
            return None

    def __call__(self, value: str) -> str:
        current = self._current
        while current is not None and current < value:
            current = self._advance()
        self._current = current
        return current if current == value else value


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


def load_ledger(state_dir: Path, paths: Iterable[str] = ()) -> Ledger:
    """Destination -> entry; no ledger yet is empty; an unusable one is a clear error. An entry
    of one of `paths` (the allowlist's) shares that string rather than holding a copy."""
    path = ledger_path(state_dir)
    try:
        with path.open("rb") as handle:
            return _read_ledger(handle, OneCopy(paths))
    except FileNotFoundError:
        return Ledger()
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the ledger ({exc.strerror})", hint=REBUILD_HINT
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        why = "not JSON" if isinstance(exc, json.JSONDecodeError) else "unexpected content"
        raise StateError(f"{path}: the ledger is corrupt ({why})", hint=REBUILD_HINT) from None


def _read_ledger(handle: BinaryIO, paths: OneCopy) -> Ledger:
    """The ledger as save_ledger writes it (a block of entries a line) is read a block at a
    time, so the file's text and its parsed columns are never held whole beside the entries; so
    is a version 1 ledger (an entry a line); any other layout of the same JSON (reformatted, or
    written on one line by older tethers) is parsed whole."""
    head = handle.readline()
    if head.startswith(b'{"version":2,') and head.endswith(b'"blocks":[\n'):
        ledger = _ledger_of({**json.loads(head + b"]}"), "blocks": []}, paths)
        for line in _lines_until(handle, b"]}"):
            _add_block(ledger, json.loads(line.removesuffix(b",\n")), paths)
        return ledger
    if not (head.startswith(b'{"version":1,') and head.endswith(b'"entries":{\n')):
        return _ledger_of(json.loads(head + handle.read()), paths)
    ledger = _ledger_of({**json.loads(head + b"}}"), "entries": {}}, paths)
    shared: dict[Any, Any] = {}
    chunk: list[bytes] = []
    for line in _lines_until(handle, b"}}"):
        chunk.append(line)
        if len(chunk) >= LOAD_CHUNK:
            _add_rows(ledger, chunk, shared, paths)
            chunk = []
    _add_rows(ledger, chunk, shared, paths)
    return ledger


def _lines_until(handle: BinaryIO, end: bytes) -> Iterator[bytes]:
    """The item lines up to the `end` line (each but the last ends with a comma); nothing may
    follow the end, and the file may not stop before it."""
    previous = b""
    for line in handle:
        if line in {end + b"\n", end}:
            if handle.read(1):
                raise ValueError("text after the end")
            if previous.endswith(b",\n"):
                raise ValueError("a comma before the end")
            return
        if previous and not previous.endswith(b",\n"):
            raise ValueError("items not separated")
        previous = line
        yield line
    raise ValueError("the ledger ends early")


def _add_rows(ledger: Ledger, lines: list[bytes], shared: dict[Any, Any], paths: OneCopy) -> None:
    if not lines:
        return
    last = lines[-1].rstrip(b"\n")
    rows = json.loads(b"{" + b"".join(lines[:-1]) + last.removesuffix(b",") + b"}")
    for dest, row in rows.items():
        ledger[dest] = LedgerEntry.from_json(row, shared, paths)


def _block(dests: list[str], entries: list[LedgerEntry]) -> dict[str, Any]:
    """Entries as columns: a list a field, a field of few distinct values as a table and an
    index, and the signatures packed in one hex string (parsed in C, not a row at a time)."""
    block: dict[str, Any] = {"dest": dests}
    for i, name in enumerate(LedgerEntry._fields[:10]):
        column = [entry[i] for entry in entries]
        if name in TABLED:
            table: dict[Any, int] = {}
            block[name] = {"index": [table.setdefault(v, len(table)) for v in column]}
            block[name]["values"] = list(table)
        else:
            block[name] = column
    block["sig"] = b"".join(e.sig or NO_SIG for e in entries).hex()
    block["source_sig"] = b"".join(e.source_sig or NO_SIG for e in entries).hex()
    return block


# The types of the tabled fields but secrets (a tuple of names); the other fields are strings.
_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (int,),
    "uid": (int,),
    "gid": (int,),
    "revision": (str, type(None)),
    "time": (str,),
    "secret_digest": (str, type(None)),
}


def _add_block(ledger: Ledger, block: dict[str, Any], paths: OneCopy) -> None:
    """The entries of one block (ValueError, TypeError or KeyError: it is damaged)."""
    dests = block["dest"]
    count = len(dests)
    columns: list[list[Any]] = []
    for name in LedgerEntry._fields[:10]:
        if name in TABLED:
            values, index = block[name]["values"], block[name]["index"]
            if name == "secrets":
                if not all(isinstance(n, str) for names in values for n in names):
                    raise ValueError("bad secret names")
                values = [tuple(names) for names in values]
            elif not _all_of(values, _TYPES[name]):
                raise ValueError(f"bad {name}")
            if index and min(index) < 0:
                raise ValueError(f"bad {name} index")
            column = [values[i] for i in index]
        else:
            column = block[name]
            if not _all_of(column, (str,)):
                raise ValueError(f"bad {name}")
        if len(column) != count:
            raise ValueError(f"{name}: {len(column)} values for {count} entries")
        columns.append(column)
    if not _all_of(dests, (str,)):
        raise ValueError("bad destination")
    columns[0] = [paths(p) for p in columns[0]]
    sigs = _sigs(block["sig"], count), _sigs(block["source_sig"], count)
    rows = zip(*columns, *sigs, strict=True)  # every column has `count` values (checked)
    ledger.update(zip(dests, map(_MAKE_ENTRY, rows), strict=True))


# An entry from a row of values (checked above), made in C: no Python call an entry.
_MAKE_ENTRY = functools.partial(tuple.__new__, LedgerEntry)


def _all_of(values: list[Any], types: tuple[type, ...]) -> bool:
    """Every value is of one of `types` (exactly: a bool is no int here)."""
    return set(map(type, values)) <= set(types)


def _sigs(packed: str, count: int) -> list[Sig | None]:
    raw = bytes.fromhex(packed)
    if len(raw) != 32 * count:
        raise ValueError("signatures do not match the entries")
    sigs = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    return [None if s == NO_SIG else Sig(s) for s in sigs]


def _ledger_of(doc: object, paths: OneCopy) -> Ledger:
    if not isinstance(doc, dict) or doc.get("version") not in (1, LEDGER_VERSION):
        raise ValueError(f"not a version 1 or {LEDGER_VERSION} ledger")
    key_id = doc.get("key")
    ledger = Ledger({}, key_id if isinstance(key_id, str) else None)
    if doc["version"] == LEDGER_VERSION:
        if not isinstance(doc["blocks"], list):
            raise ValueError("blocks not a list")
        for block in doc["blocks"]:
            _add_block(ledger, block, paths)
        return ledger
    shared: dict[Any, Any] = {}
    for dest, row in doc["entries"].items():
        ledger[dest] = LedgerEntry.from_json(row, shared, paths)
    return ledger


def load_repo_ledger(
    state_dir: Path, ledger_dir: Path, tracked: Collection[str] | None = None
) -> Ledger:
    """The ledger of the repo whose ledger lives in `ledger_dir`, over the entries it adopts
    from a ledger of the whole state dir (written before ledgers were kept per repo): those of
    the paths its allowlist covers (`tracked`; None: all, for lookups only, as capture saves
    just the entries it changes), never to prune another repo's. The old ledger is only read."""
    own = load_ledger(ledger_dir, tracked or ())
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


def save_ledger(state_dir: Path, entries: Mapping[str, LedgerEntry], key_id: str) -> None:
    """Write the ledger atomically (temp, fsync, rename, fsync the folder), with the id of the
    hash key its hashes were made with (a replaced key is then noticed, see reconcile)."""
    now = time.time_ns()
    encode = json.JSONEncoder(separators=(",", ":")).encode
    dests = sorted(entries)
    kept = []
    for dest in dests:
        entry = entries[dest]
        safe_sig, safe_source = trusted_sig(entry.sig, now), trusted_sig(entry.source_sig, now)
        if (safe_sig, safe_source) != (entry.sig, entry.source_sig):
            entry = _replace_sigs(entry, safe_sig, safe_source)
        kept.append(entry)
    lines = [encode({"version": LEDGER_VERSION, "key": key_id, "blocks": []})[:-2]]
    for at in range(0, len(dests), BLOCK):
        lines.append(encode(_block(dests[at : at + BLOCK], kept[at : at + BLOCK])) + ",")
    if len(lines) > 1:
        lines[-1] = lines[-1][:-1]
    lines.append("]}\n")
    # A block a line (still one JSON document): load_ledger reads it a block at a time.
    write_state_file(ledger_path(state_dir), "\n".join(lines).encode("utf-8"), 0o600)


def _replace_sigs(entry: LedgerEntry, sig: Sig | None, source: Sig | None) -> LedgerEntry:
    return entry._replace(sig=sig, source_sig=source)
