"""The state dir: created private, and its files replaced whole or not at all."""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

from tether.errors import StateError
from tether.hostfs import fsutil

REBUILD_HINT = "run `tether reconcile --rebuild-ledger` to record what is in sync now"


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


def remove_left_temps(path: Path) -> None:
    """Remove the temp files of `path` a killed writer left (`.ledger.json.<random>.tmp`, as
    fsutil.write_atomic names them). Only for a caller holding the lock `path` is written
    under: then no other writer of it is running, and any such temp file is a leftover."""
    for left in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            left.unlink()


def write_state_file(path: Path, data: bytes, mode: int) -> None:
    """Replace one of tether's state files whole (see fsutil.write_atomic), or say why not.
    Its callers hold the state dir's lock: a temp file a killed run left is removed first."""
    remove_left_temps(path)
    try:
        fsutil.write_atomic(path, data, mode)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot write ({exc.strerror})", hint="check the state dir"
        ) from None
