"""What a stat of a file says about whether it changed."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import NewType

# size, mtime_ns, inode, ctime_ns packed in 32 bytes: one small object instead of a tuple of four
# large ints (a ledger keeps two a file; at 100,000 files that is 27 MiB less).
Sig = NewType("Sig", bytes)
_PACKED = struct.Struct("<QqQq")
# pack(size, mtime_ns, inode, ctime_ns): the struct's own method, no wrapper (the ledger loads
# two a file); struct.error for anything but four ints in range.
pack_sig: Callable[..., Sig] = _PACKED.pack  # type: ignore[assignment]
# File timestamps tick coarsely (a kernel jiffy); a file changed within the same tick as a
# signature was taken keeps its size, mtime and ctime. Signatures this close are not trusted.
RACY_NS = 100_000_000
# No signature: in a column of packed ones, or for a path that is not there (an inode is never 0).
NO_SIG = Sig(bytes(_PACKED.size))


def make_sig(size: int, mtime_ns: int, inode: int, ctime_ns: int) -> Sig:
    return pack_sig(size, mtime_ns, inode, ctime_ns)


def stat_sig(st: os.stat_result) -> Sig:
    return pack_sig(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def sig_fields(sig: Sig) -> tuple[int, int, int, int]:
    """(size, mtime_ns, inode, ctime_ns)."""
    size, mtime_ns, inode, ctime_ns = _PACKED.unpack(sig)
    return size, mtime_ns, inode, ctime_ns


def sig_size(sig: Sig) -> int:
    return sig_fields(sig)[0]


def sig_to_json(sig: Sig | None) -> list[int] | None:
    return list(sig_fields(sig)) if sig is not None else None


def racy(block: bytes, now_ns: int) -> bool:
    """Whether a signature of `block` (one, or several packed end to end) shows a change too
    close to `now_ns`, or after it, to tell a later same-tick change apart."""
    limit = now_ns - RACY_NS
    if len(block) == _PACKED.size:  # one (the ledger saves two a file): no iterator
        _, mtime_ns, _, ctime_ns = sig_fields(Sig(block))
        return mtime_ns >= limit or ctime_ns >= limit
    return any(m >= limit or c >= limit for _, m, _, c in _PACKED.iter_unpack(block))


def trusted_sig(sig: Sig | None, now_ns: int) -> Sig | None:
    """Drop a signature too close to now to tell a later same-tick change apart."""
    return None if sig is None or racy(sig, now_ns) else sig
