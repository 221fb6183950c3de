"""What a stat of a file says about whether it changed."""

from __future__ import annotations

import os

Sig = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns


def stat_sig(st: os.stat_result) -> Sig:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
