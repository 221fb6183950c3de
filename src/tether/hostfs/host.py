"""The host: what is there (probing, confined to the target root) and how it is changed.

Every change goes through one `Host`: `RealHost` writes atomically (temp file in the
destination folder, data made durable, mode and owner set on the temp, rename, folder fsync);
`DryRunHost` reports what it would do. Nothing is ever written outside the target root.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from tether.errors import HostError
from tether.hostfs.fsutil import FolderStat, fsync_dir, write_all
from tether.hostfs.probe import Sig, make_sig, stat_sig

TEMP_PREFIX = ".tether-tmp-"
NOT_A_FILE = make_sig(0, 0, 0, 0)  # what something else at a destination compares as
DEFAULT_DIR_MODE = 0o755
# Below this many files one fsync each is cheaper than syncing the whole filesystem.
FSYNC_EACH_MAX = 16

ProbeKind = Literal["missing", "file", "blocked"]


class Probe(NamedTuple):
    """A destination as found: missing, a regular file (with its stat), or unsafe (why)."""

    kind: ProbeKind
    reason: str | None = None
    real: str | None = None  # the path to read (parents resolved)
    sig: Sig | None = None
    mode: int = 0
    uid: int = -1
    gid: int = -1


@dataclass(frozen=True)
class _Dir:
    path: str  # the real folder (symlinks inside the root resolved)
    exists: bool
    reason: str | None = None


def _normal(path: str) -> bool:
    """An absolute path with no `.`, `..` or empty segment (what normpath leaves alone)."""
    return (
        path.startswith("/")
        and "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith(("/", "/.", "/.."))
    ) or path == "/"


def _inside(path: str, root: str) -> bool:
    return root in ("/", path) or path.startswith(root + "/")


def require_root(root: str) -> None:
    """Refuse a target root that is not a folder (a typo, a /host not mounted): every
    destination under it would look missing, and a prune would remove them all."""
    if not os.path.isdir(root):
        what = "not a folder" if os.path.lexists(root) else "no such folder"
        raise HostError(
            f"target root {root}: {what}",
            hint="create it first, or pass the right --target-root",
        )


class Confinement:
    """Checks destinations against the target root with lstat, walking every parent once."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._dirs: dict[str, _Dir] = {self.root: _Dir(self.root, os.path.isdir(self.root))}
        # A parent whose children pass dest_reason (given a plain name): its real folder and
        # why it cannot hold files.
        self._checked: dict[str, tuple[str, str | None]] = {}
        self._stat = FolderStat()  # destinations are probed folder by folder

    def dest_reason(self, dest: str) -> str | None:
        """Why a destination path string is outside the root, or None."""
        if not _normal(dest) or not _inside(dest, self.root) or dest == self.root:
            return f"{dest}: outside the target root {self.root}"
        return None

    def folder(self, path: str) -> _Dir:
        """The real folder at `path`, each ancestor checked once (iteratively: a path may have
        thousands of components)."""
        unknown: list[str] = []
        step = path
        while step not in self._dirs:
            unknown.append(step)
            parent_path = os.path.dirname(step)
            if parent_path == step or not _inside(parent_path, self.root):
                break
            step = parent_path
        for step in reversed(unknown):  # outermost first: each parent is known by now
            parent_path, name = os.path.split(step)
            parent = self._dirs.get(parent_path) if _inside(parent_path, self.root) else None
            if parent is None:
                result = _Dir(step, False, f"{step}: outside the target root {self.root}")
            elif parent.reason or not parent.exists:
                result = _Dir(os.path.join(parent.path, name), False, parent.reason)
            else:
                result = self._step(os.path.join(parent.path, name))
            self._dirs[step] = result
        return self._dirs[path]

    def _step(self, real: str) -> _Dir:
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return _Dir(real, False)
        except OSError as exc:
            return _Dir(real, False, f"{real}: cannot inspect ({exc.strerror})")
        if stat.S_ISDIR(st.st_mode):
            return _Dir(real, True)
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(real)
            if not _inside(target, self.root):
                return _Dir(
                    real,
                    False,
                    f"{real} is a symlink to {target}, outside the target root {self.root}",
                )
            if not os.path.isdir(target):
                return _Dir(real, False, f"{real} is a symlink to {target}, not a folder")
            return _Dir(target, True)
        return _Dir(real, False, f"{real} is a file where a folder is needed")

    def forget(self) -> None:
        """Drop cached folders (after creating some)."""
        self._dirs = {self.root: _Dir(self.root, os.path.isdir(self.root))}
        self._checked = {}
        self._stat.close()

    def real_dest(self, dest: str) -> tuple[str, str | None]:
        """The real path a destination resolves to (parents resolved), or why it is unsafe."""
        parent, _, name = dest.rpartition("/")
        checked = self._checked.get(parent) if name not in ("", ".", "..") else None
        if checked is None:  # the parent's checks once: its files share the answer
            reason = self.dest_reason(dest)
            if reason:
                return dest, reason
            folder = self._dirs.get(parent) or self.folder(parent or "/")
            checked = self._checked[parent] = folder.path, folder.reason
        real, why = checked
        if real == parent:  # no link among the parents: the destination itself (no copy)
            return dest, why
        return (f"{real}/{name}" if real != "/" else f"/{name}"), why

    def probe(self, dest: str, known: Sig | None = None) -> Probe:
        """`known`: the signature recorded for it, kept as the probe's when equal (one copy)."""
        real, reason = self.real_dest(dest)
        if reason:
            return Probe("blocked", reason)
        try:
            st = self._stat.lstat(real)
        except FileNotFoundError:
            return Probe("missing")
        except NotADirectoryError:
            return Probe("blocked", f"{dest}: a parent is not a folder")
        except OSError as exc:
            return Probe("blocked", f"{dest}: cannot inspect ({exc.strerror})")
        return probe_stat(dest, real, st, known)


_MODES: dict[int, int] = {}


def probe_stat(dest: str, real: str, st: os.stat_result, known: Sig | None = None) -> Probe:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        sig = stat_sig(st)
        if sig == known:
            sig = known
        bits = stat.S_IMODE(mode)
        bits = _MODES.setdefault(bits, bits)  # one int object per mode, not one per file
        return Probe("file", None, real, sig, bits, st.st_uid, st.st_gid)
    if stat.S_ISLNK(mode):
        return Probe("blocked", f"{dest} is a symlink (tether never writes through one)")
    if stat.S_ISDIR(mode):
        return Probe("blocked", f"{dest} is a folder")
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return Probe("blocked", f"{dest} is {kind}")


def read_regular(path: str) -> bytes:
    """Read a regular file without following a symlink at its place."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class WriteOp(NamedTuple):
    """Write `data` to `dest` if it still has stat `expect` (None: if it is still absent)."""

    dest: str
    data: bytes
    mode: int
    uid: int = -1
    gid: int = -1
    dir_mode: int = DEFAULT_DIR_MODE
    expect: Sig | None = None


class WriteResult(NamedTuple):
    dest: str
    error: str | None = None
    sig: Sig | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Host(Protocol):
    dry_run: bool

    def write_files(
        self, ops: Sequence[WriteOp], progress: Callable[[int], None] | None = None
    ) -> list[WriteResult]:
        """Write every op atomically; each destination ends with its old or its new bytes."""

    def remove(self, dest: str, expect: Sig) -> str | None:
        """Delete a destination that still has stat `expect`; the error, or None."""

    @property
    def temp_token(self) -> str:
        """In the name of every temp file this host writes, so a clean-up removes only ours."""

    def clean_temps(self, folders: Iterable[str], token: str | None) -> int:
        """Remove temp files with `token` a killed run left in these folders; how many."""


class DryRunHost:
    """Says what would be done; touches nothing."""

    dry_run = True

    def __init__(self, confinement: Confinement) -> None:
        self.confinement = confinement

    def write_files(
        self, ops: Sequence[WriteOp], progress: Callable[[int], None] | None = None
    ) -> list[WriteResult]:
        out = []
        for op in ops:
            _real, reason = self.confinement.real_dest(op.dest)
            out.append(WriteResult(op.dest, reason))
        return out

    def remove(self, dest: str, expect: Sig) -> str | None:
        return None

    @property
    def temp_token(self) -> str:
        return ""

    def clean_temps(self, folders: Iterable[str], token: str | None) -> int:
        return 0


def describe_os_error(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if exc.errno == errno.EFBIG:
        return "file too large for the device or the size limit"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def _syncfs(fd: int) -> None:
    """Flush one filesystem (Linux syncfs); os.sync() where it is missing."""
    import ctypes  # noqa: PLC0415 (only an apply of many files needs it)

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) == 0:
            return
    except (OSError, AttributeError):
        pass
    os.sync()


@dataclass
class _Pending:
    op: WriteOp
    dir_fd: int
    name: str
    tmp: str


class RealHost:
    """Writes atomically and confined to the target root."""

    dry_run = False

    def __init__(self, confinement: Confinement) -> None:
        self.confinement = confinement
        self._token = secrets.token_hex(6)
        self._serial = itertools.count()

    @property
    def temp_token(self) -> str:
        return self._token

    def _make_parents(self, dest: str, dir_mode: int) -> tuple[str, list[str]]:
        """Create missing folders (mode `dir_mode`, inside the root); the real parent path."""
        parent = os.path.dirname(dest)
        folder = self.confinement.folder(parent)
        if folder.reason:
            raise _Unsafe(folder.reason)
        if folder.exists:
            return folder.path, []
        missing: list[str] = []
        path = parent
        while not (above := self.confinement.folder(path)).exists:
            if above.reason or not _inside(path, self.confinement.root) or path == "/":
                raise _Unsafe(above.reason or f"{path}: outside the target root")
            missing.append(path)
            path = os.path.dirname(path)
        created = []
        for path in reversed(missing):
            real = os.path.join(
                self.confinement.folder(os.path.dirname(path)).path, os.path.basename(path)
            )
            try:
                os.mkdir(real, dir_mode)
                os.chmod(real, dir_mode)  # mkdir's mode is cut by the umask
                created.append(real)
            except FileExistsError:
                pass
            self.confinement._dirs.pop(path, None)
            again = self.confinement.folder(path)
            if again.reason or not again.exists:
                raise _Unsafe(again.reason or f"{path}: could not create the folder")
        return self.confinement.folder(parent).path, created

    def write_files(  # noqa: PLR0915
        self, ops: Sequence[WriteOp], progress: Callable[[int], None] | None = None
    ) -> list[WriteResult]:
        results: dict[str, WriteResult] = {}
        pending: list[_Pending] = []
        dir_fds: dict[str, int] = {}
        touched: set[str] = set()
        bad_dirs: set[int] = set()
        fsync_each = len(ops) <= FSYNC_EACH_MAX
        self.confinement.forget()  # re-check every folder now, not as it was at plan time
        try:
            for op in ops:
                try:
                    parent, made = self._make_parents(op.dest, op.dir_mode)
                except _Unsafe as exc:
                    results[op.dest] = WriteResult(op.dest, f"blocked: {exc}")
                    continue
                except OSError as exc:
                    results[op.dest] = WriteResult(op.dest, describe_os_error(exc))
                    continue
                touched.update(os.path.dirname(p) for p in made)
                dfd = dir_fds.get(parent)
                if dfd is None:
                    try:
                        dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    except OSError as exc:
                        results[op.dest] = WriteResult(op.dest, describe_os_error(exc))
                        continue
                    dir_fds[parent] = dfd
                    if not self._fd_inside(dfd):
                        bad_dirs.add(dfd)
                if dfd in bad_dirs:
                    results[op.dest] = WriteResult(op.dest, f"blocked: {parent} left the root")
                    continue
                name = os.path.basename(op.dest)
                tmp = f"{TEMP_PREFIX}{self._token}-{next(self._serial)}-{name[:80]}"
                error = self._write_temp(dfd, tmp, op, fsync_each)
                if error:
                    results[op.dest] = WriteResult(op.dest, error)
                    continue
                pending.append(_Pending(op, dfd, name, tmp))
            if pending and not fsync_each:
                devices: dict[int, int] = {}
                for item in pending:
                    devices.setdefault(os.fstat(item.dir_fd).st_dev, item.dir_fd)
                for fd in devices.values():
                    _syncfs(fd)
            synced: set[int] = set()
            for done, item in enumerate(pending, start=1):
                results[item.op.dest] = self._commit(item)
                if results[item.op.dest].ok:
                    synced.add(item.dir_fd)
                if progress:
                    progress(done)
            if len(synced) + len(touched) > FSYNC_EACH_MAX:
                # One flush of the filesystem makes every rename and new folder durable at
                # once; an fsync per folder would wait for the journal once per folder.
                devices = {os.fstat(fd).st_dev: fd for fd in synced}
                for fd in devices.values():
                    _syncfs(fd)
            else:
                for fd in synced:
                    with contextlib.suppress(OSError):
                        os.fsync(fd)
                for path in touched:  # folders that gained a new sub-folder
                    fsync_dir(path)
        finally:
            for fd in dir_fds.values():
                os.close(fd)
        return [results[op.dest] for op in ops]

    def _fd_inside(self, dfd: int) -> bool:
        """The folder actually opened is inside the root (a parent swapped since the check)."""
        try:
            real = os.readlink(f"/proc/self/fd/{dfd}")
        except OSError:
            return True  # no /proc: the lstat walk just before is all we have
        return _inside(real, self.confinement.root)

    @staticmethod
    def _write_temp(dfd: int, tmp: str, op: WriteOp, fsync_each: bool) -> str | None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        except OSError as exc:
            return f"{describe_os_error(exc)}; the destination is untouched"
        try:
            write_all(fd, op.data)
            os.fchmod(fd, op.mode)
            if op.uid != -1 or op.gid != -1:
                os.fchown(fd, op.uid, op.gid)
            if fsync_each:
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            return f"{describe_os_error(exc)}; the destination is untouched"
        os.close(fd)
        return None

    @staticmethod
    def _commit(item: _Pending) -> WriteResult:
        """Compare-and-swap: rename only if the destination is still what the plan saw."""
        dest, dfd = item.op.dest, item.dir_fd
        try:
            st = os.stat(item.name, dir_fd=dfd, follow_symlinks=False)
            now: Sig | None = stat_sig(st) if stat.S_ISREG(st.st_mode) else NOT_A_FILE
        except FileNotFoundError:
            now = None
        if now != item.op.expect:
            with contextlib.suppress(OSError):
                os.unlink(item.tmp, dir_fd=dfd)
            return WriteResult(dest, "changed on the host during the apply; not written")
        try:
            os.rename(item.tmp, item.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            sig = stat_sig(os.stat(item.name, dir_fd=dfd, follow_symlinks=False))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(item.tmp, dir_fd=dfd)
            return WriteResult(dest, f"{describe_os_error(exc)}; the destination is untouched")
        return WriteResult(dest, None, sig)

    def remove(self, dest: str, expect: Sig) -> str | None:
        real, reason = self.confinement.real_dest(dest)
        if reason:
            return reason
        try:
            st = os.lstat(real)
            if not stat.S_ISREG(st.st_mode) or stat_sig(st) != expect:
                return "changed on the host during the apply; not removed"
            os.unlink(real)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return describe_os_error(exc)
        fsync_dir(os.path.dirname(real))  # best effort: the file is gone either way
        return None

    def clean_temps(self, folders: Iterable[str], token: str | None) -> int:
        """Only names with the run's token go: a user's own `.tether-tmp-notes` stays. A journal
        written before tokens existed (token None) removes every tether temp name, as then."""
        prefix = TEMP_PREFIX if token is None else f"{TEMP_PREFIX}{token}-"
        removed = 0
        for folder in sorted(set(folders)):
            real, reason = self.confinement.real_dest(os.path.join(folder, "x"))
            if reason:
                continue
            parent = os.path.dirname(real)
            try:
                names = [n for n in os.listdir(parent) if n.startswith(prefix)]
            except OSError:
                continue
            for name in names:
                path = os.path.join(parent, name)
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        os.unlink(path)
                        removed += 1
        return removed


class _Unsafe(Exception):
    pass
