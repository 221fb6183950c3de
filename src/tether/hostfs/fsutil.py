"""Small file helpers for tether's own files (units, run history, metrics, flags)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _create_temp(path: Path) -> tuple[int, str]:
    """A new private file `.<name>.<random>.tmp` beside `path`, as tempfile.mkstemp makes one
    (never through a link, never an existing file), without loading tempfile on every run."""
    for _ in range(100):
        name = f"{path.parent}/.{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(name, _TEMP_FLAGS, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp name", str(path))


def write_atomic(
    path: Path,
    data: bytes | Iterable[bytes],
    mode: int = 0o644,
    *,
    durable: bool = True,
) -> None:
    """Replace `path` with `data` all at once: a reader sees the old or the new file, whole.
    `data` may come in chunks, written as they come (an error raised while they are made
    leaves `path` as it was).

    The temp name does not end like the target (`.prom`, `.timer`), so a collector or
    systemd scanning the folder never picks up a half-written file. `durable=False` skips the
    fsyncs, for caches whose loss after a power cut costs only time.
    """
    fd, name = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                for chunk in data:
                    handle.write(chunk)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if durable:
                os.fsync(handle.fileno())
        Path(name).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(name).unlink()
        raise
    if durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_lock(path: Path, *, blocking: bool = True, folder: bool = False) -> Iterator[bool]:
    """flock(LOCK_EX) on `path` (created 0600) for the block; yields False when `blocking` is
    off and another process holds it. The one flock helper of tether's own files.

    `folder`: lock an existing folder itself (nothing is created beside a file that is not
    tether's alone, such as the secret store in a home folder)."""
    if folder:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (a write may be partial)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def git_work_tree(start: Path) -> Path | None:
    """The work tree top holding `start` (a folder with `.git`), or None outside a repo.

    Here, not in gitread, so a plain file scan finds its repo without importing dulwich."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def fsync_dir(folder: str | Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to fsync a folder
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_dirs(path: Path, mode: int = 0o755) -> list[Path]:
    """mkdir -p; returns the folders it created, outermost first (to undo it exactly)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=mode)
    return list(reversed(missing))


class FolderStat:
    """`lstat` of many paths that come folder by folder (sorted), each through its folder's open
    descriptor: the kernel then looks up one name, not every folder of the path again. Measured
    on 10,000 destinations: 31 ms against 45 ms by full path on one VM, 29 ms against 24 ms on
    another, where path lookups are cheaper. One folder is open at a time; close() (or the
    garbage collector) closes it."""

    def __init__(self) -> None:
        self._folder: str | None = None
        self._fd = [-1]  # in a list, so the finalizer closes whichever is open then
        weakref.finalize(self, _close_fd, self._fd)

    def lstat(self, path: str) -> os.stat_result:
        folder, _, name = path.rpartition("/")
        if folder != self._folder:
            self.close()
            self._folder = folder
            with contextlib.suppress(OSError):  # no such folder: lstat says so below
                self._fd[0] = os.open(folder or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if self._fd[0] < 0 or not name:
            return os.lstat(path)
        return os.lstat(name, dir_fd=self._fd[0])

    def close(self) -> None:
        """Close the open folder (the next lstat opens its own)."""
        _close_fd(self._fd)
        self._folder = None


def _close_fd(holder: list[int]) -> None:
    if holder[0] >= 0:
        with contextlib.suppress(OSError):
            os.close(holder[0])
        holder[0] = -1
