"""The plan cache: a plan that found nothing to do, kept with the stat signature of every file
and folder it depended on, so the next plan made the same way checks signatures only.

A plan reads the manifest, the allowlists, every source file, the secret store, the hash key,
the ledger and every destination, and renders and hashes what the stat cache cannot vouch for.
When all of that ends in "nothing to do", the cache records it: the run's key (its options,
its environment, the tether version), the paths it depended on with their signatures (a path
that did not exist is recorded as absent), and the text the plan printed. The next plan with
the same key whose every path still has its signature prints that text and stops there.

Why signatures are enough: a file's size, mtime, inode and ctime change when its bytes, mode or
owner do (ctime cannot be set back), and a folder's change when an entry is added, removed or
renamed in it. Every folder from a root to each file is recorded, so a folder swapped for a
symlink, or a file appearing where an overlay would be found, changes a signature. Files are
recorded with the signature the plan saw when it read them; a path changed since the run
started, or within a clock tick before (`probe.RACY_NS`), is not trusted and the plan is not
cached. Any doubt (a path that cannot be inspected, a damaged cache) means the full plan.

The file: batches of BATCH paths (each ending in NUL) each followed by their packed
signatures, a JSON trailer (with each batch's size), then the CRC-32 of all that and the
trailer's length (12 bytes). Written and read a batch at a time, so neither a plan over 100,000
files nor the check holds all of it. A file damaged anywhere fails its CRC and is not used.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from tether.hostfs.probe import NO_SIG, racy, stat_sig

CACHE_NAME = "plan-cache"
CACHE_FORMAT = 3
BATCH = 1024  # paths written and checked together: a few hundred KiB held at a time
LEFT_TEMP_AGE = 600  # seconds: a cache temp file older than this was left by a killed plan
_END = struct.Struct("<IQ")  # CRC-32 of what comes before, the trailer's length: last in the file


class CachedPlan(NamedTuple):
    """What the cached plan printed and recorded."""

    text: str
    counts: dict[str, int]
    exit_code: int
    revision: str | None


class _NotCacheable(Exception):
    """A path the plan depended on cannot vouch for it (changed too recently, unreadable)."""


def cache_path(state_dir: Path) -> Path:
    return state_dir / CACHE_NAME


def signatures(paths: Sequence[str]) -> bytes | None:
    """Every path's packed stat signature (NO_SIG when missing), or None when one cannot be
    inspected (then nothing can be vouched for)."""
    lstat = os.lstat
    sigs: list[bytes] = []
    add = sigs.append
    for path in paths:
        try:
            st = lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            add(NO_SIG)
            continue
        except (OSError, ValueError):  # no permission, a path too long, a NUL in it
            return None
        add(stat_sig(st))
    return b"".join(sigs)


def _seen_batches(
    pairs: Iterable[tuple[str, bytes | None]],
) -> Iterator[tuple[list[str], bytes | None]]:
    """(paths, their signatures packed; None when one is missing), BATCH paths at a time:
    checked together, not one by one, yet never all held at once."""
    it = iter(pairs)
    while batch := list(itertools.islice(it, BATCH)):
        sigs = [sig for _, sig in batch]
        yield [path for path, _ in batch], None if None in sigs else b"".join(sigs)  # type: ignore[arg-type]


def _batches_now(paths: Iterable[str]) -> Iterator[tuple[list[str], bytes | None]]:
    """(paths, their signatures now), BATCH paths at a time."""
    it = iter(paths)
    while batch := list(itertools.islice(it, BATCH)):
        yield batch, signatures(batch)


def _moved(resolved: Mapping[str, str]) -> bool:
    """A path whose symlinks resolve elsewhere than they did."""
    return any(os.path.realpath(path) != real for path, real in resolved.items())


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def save_plan_cache(
    state_dir: Path,
    key: Mapping[str, Any],
    *,
    seen: Iterable[tuple[str, bytes | None]],
    watched: Iterable[str],
    resolved: Mapping[str, str],
    plan: CachedPlan,
    started_ns: int,
) -> bool:
    """Cache a plan. `seen`: each file the plan read, with the signature it had then; `watched`:
    the other paths it read or looked for (signed now); `resolved`: each path whose symlinks it
    resolved, with the real path found. False (and no cache kept) when a path changed after
    `started_ns` (or a tick before) or cannot be inspected."""
    from tether.hostfs.fsutil import write_atomic  # noqa: PLC0415 (saving only)

    if _moved(resolved):
        drop_plan_cache(state_dir)
        return False

    def chunks() -> Iterator[bytes]:
        batches, crc = [], 0
        for paths, sigs in itertools.chain(_seen_batches(seen), _batches_now(watched)):
            if sigs is None or racy(sigs, started_ns):
                raise _NotCacheable
            names = os.fsencode("\0".join(paths) + "\0")
            crc = zlib.crc32(sigs, zlib.crc32(names, crc))
            batches.append([len(names), len(paths)])
            yield names
            yield sigs
        trailer = {
            "format": CACHE_FORMAT,
            "key": _key_text(key),
            "resolved": dict(resolved),
            "batches": batches,
            "plan": plan._asdict(),
        }
        encoded = json.dumps(trailer, separators=(",", ":")).encode("utf-8")
        yield encoded + _END.pack(zlib.crc32(encoded, crc), len(encoded))

    _remove_left_temps(state_dir)
    try:
        write_atomic(cache_path(state_dir), chunks(), 0o600, durable=False)
    except (_NotCacheable, OSError):  # a cache that cannot be written costs only time
        drop_plan_cache(state_dir)
        return False
    return True


def _remove_left_temps(state_dir: Path) -> None:
    """The temp files of a plan killed while saving its cache. Plans hold no lock, so only
    old ones: a live plan's is seconds old."""
    limit = time.time() - LEFT_TEMP_AGE
    for left in state_dir.glob(f".{CACHE_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            if left.lstat().st_mtime < limit:
                left.unlink()


def cached_plan(state_dir: Path, key: Mapping[str, Any]) -> CachedPlan | None:
    """The cached plan when `key` is the cache's and every path still has its signature.
    Read a batch at a time, stopping at the first that moved."""
    try:
        handle = cache_path(state_dir).open("rb")
    except OSError:
        return None
    with handle:
        try:
            return _check(handle, key)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, struct.error):
            return None  # damaged or from another version: the full plan says what is what


def _check(handle: BinaryIO, key: Mapping[str, Any]) -> CachedPlan | None:
    total = os.fstat(handle.fileno()).st_size
    handle.seek(total - _END.size)
    crc, length = _END.unpack(handle.read(_END.size))
    handle.seek(total - _END.size - length)
    encoded = handle.read(length)
    trailer = json.loads(encoded)
    if trailer.get("format") != CACHE_FORMAT or trailer["key"] != _key_text(key):
        return None
    batches = [(int(size), int(count)) for size, count in trailer["batches"]]
    if not batches or sum(s + 32 * c for s, c in batches) + length + _END.size != total:
        return None
    fields = trailer["plan"]
    if not (isinstance(fields["text"], str) and isinstance(fields["exit_code"], int)):
        return None
    plan = CachedPlan(**fields)
    if _moved(dict(trailer["resolved"])):
        return None
    handle.seek(0)
    running = 0
    for size, count in batches:
        names, sigs = handle.read(size), handle.read(32 * count)
        running = zlib.crc32(sigs, zlib.crc32(names, running))
        paths = os.fsdecode(names[:-1]).split("\0")
        if len(paths) != count or signatures(paths) != sigs:
            return None
    # Last, as it needs every byte read: a damaged cache whose paths all still matched.
    return plan if zlib.crc32(encoded, running) == crc else None


def drop_plan_cache(state_dir: Path) -> None:
    """Forget the cached plan (the next plan is made in full)."""
    # one that cannot be removed is still checked in full before any use
    with contextlib.suppress(OSError):
        cache_path(state_dir).unlink()
