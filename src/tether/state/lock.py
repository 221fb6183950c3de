"""One lock per state dir for every command that writes.

`flock` is released by the kernel when its holder dies, so a lock left by a killed run (the
article's stale-lock bug) is simply taken over; the info file says who holds a live one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tether.errors import LockError, warn
from tether.stamps import utc_stamp

LOCK_NAME = "lock"
INFO_NAME = "lock.info"
POLL_SECONDS = 0.1


def _holder(state_dir: Path) -> str:
    try:
        info = json.loads((state_dir / INFO_NAME).read_text(encoding="utf-8"))
        return f"pid {info['pid']} ({info['command']}) since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def previous_holder_dead(state_dir: Path) -> int | None:
    """The pid named in a left-over info file whose process is gone (for a notice)."""
    try:
        pid = int(json.loads((state_dir / INFO_NAME).read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid != os.getpid() and not _alive(pid) else None


def try_lock(state_dir: Path) -> int | None:
    """The locked fd, or None when another process holds the lock."""
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def state_lock(state_dir: Path, command: str, wait: float = 0.0) -> Iterator[int | None]:
    """Hold the lock for the block; yields the pid of a dead previous holder (or None), which
    has been named on stderr."""
    deadline = time.monotonic() + max(wait, 0.0)
    try:
        fd = try_lock(state_dir)
        while fd is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            fd = try_lock(state_dir)
    except OSError as exc:
        raise LockError(f"{state_dir / LOCK_NAME}: cannot open the lock ({exc.strerror})") from None
    if fd is None:
        waited = f" after waiting {wait:g} s" if wait > 0 else ""
        raise LockError(
            f"{state_dir}: locked by {_holder(state_dir)}{waited}",
            hint="wait for it to finish, or pass --wait SECONDS",
        )
    dead = previous_holder_dead(state_dir)
    if dead is not None:
        warn(f"took over the lock left by pid {dead} (no longer running)")
    info = {
        "pid": os.getpid(),
        "command": command,
        "since": utc_stamp(),
    }
    try:
        with contextlib.suppress(OSError):  # it only names the holder: a full disk must not stop us
            (state_dir / INFO_NAME).write_text(json.dumps(info), encoding="utf-8")
        yield dead
    finally:
        with contextlib.suppress(OSError):
            (state_dir / INFO_NAME).unlink()
        os.close(fd)


def lock_held(state_dir: Path) -> bool:
    """True while a run holds the lock (probe it without creating or taking it)."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
