"""The bare mirror per remote under the state dir: clone, fetch, heal a damaged one."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dulwich.errors import (
    ChecksumMismatch,
    ObjectFormatException,
)
from dulwich.gc import maybe_auto_gc
from dulwich.graph import can_fast_forward
from dulwich.objects import ZERO_SHA, ObjectID, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo

from tether.errors import GitError, StateError
from tether.git.remote import (
    FetchFailed,
    Remote,
    connected,
    transport_errors,
    transport_failure,
    wanted_ref,
)
from tether.hostfs.fsutil import exclusive_lock, write_atomic
from tether.stamps import utc_stamp
from tether.textsafe import keyed_name

MIRRORS = "mirrors"

FETCH_STATE = "tether-fetch.json"  # in the mirror: where from and when it was last fetched

DAMAGED = "tether-damaged"  # in the mirror: a read failed, clone it again on the next fetch

# What reading a damaged object store raises (missing object, bad zlib stream, bad checksum).
DAMAGE_ERRORS: tuple[type[BaseException], ...] = (
    KeyError,
    zlib.error,
    ChecksumMismatch,
    ObjectFormatException,
    AssertionError,
    ValueError,
    OSError,
)


def mirror_path(state_dir: Path, remote: Remote) -> Path:
    """state_dir/mirrors/<slug>-<hash of the credential-free URL>: stable, safe as a file name."""
    return state_dir / MIRRORS / f"{keyed_name(remote.key)}.git"


@dataclass(frozen=True)
class FetchResult:
    path: Path
    head: str | None  # the remote's default branch, e.g. "refs/heads/main"
    refs: Mapping[str, str]  # the mirror's heads and tags after the fetch
    forced: tuple[str, ...] = ()  # refs whose new tip does not descend from the previous one
    cloned: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchState:
    url: str
    fetched_at: str | None


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"{path.parent}: cannot create the mirror folder ({exc.strerror})",
            hint="check --state-dir (TETHER_STATE_DIR) and its permissions",
        ) from None


@contextlib.contextmanager
def locked_mirror(path: Path) -> Iterator[None]:
    """One writer per mirror at a time (two timers, or a timer and a person): fetches and
    tether's own ref updates. Holding it, a git `*.lock` file in the mirror is a leftover of a
    killed run (git's locks last milliseconds) and is removed, or every later ref update of
    that name would fail."""
    _make_parent(path)
    lock = path.parent / f".{path.name}.lock"
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(exclusive_lock(lock))
    except OSError as exc:
        raise StateError(
            f"{lock}: cannot open the mirror lock ({exc.strerror})",
            hint="check --state-dir (TETHER_STATE_DIR) and its permissions",
        ) from None
    with stack:
        _clear_stale_git_locks(path)
        yield


def _clear_stale_git_locks(path: Path) -> None:
    if not path.is_dir():
        return
    candidates = [path / "packed-refs.lock", path / "config.lock", path / "HEAD.lock"]
    refs = path / "refs"
    if refs.is_dir():
        candidates += [p for p in refs.rglob("*.lock") if p.is_file()]
    for stale in candidates:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def clear_stale_object_locks(path: Path) -> None:
    """Remove the `objects/xx/<id>.lock` files a writer killed mid-object left (dulwich writes a
    loose object through one, and refuses to write that object again while it exists). Only
    while holding the mirror's lock, when no other writer can be at work."""
    for stale in path.glob("objects/??/*.lock"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def peel(repo: Repo, sha: bytes) -> bytes:
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return obj.id


def _descends(repo: Repo, old: bytes, new: bytes) -> bool:
    try:
        return can_fast_forward(repo, ObjectID(peel(repo, old)), ObjectID(peel(repo, new)))
    except (KeyError, AssertionError):  # an old tip we no longer have, or a tag on a tree
        return False


def mirror_problem(path: Path) -> str | None:
    """Why the mirror at `path` cannot be used, or None when it looks sound."""
    with contextlib.suppress(OSError):
        return (path / DAMAGED).read_text(encoding="utf-8").strip() or "marked damaged"
    try:
        with Repo(str(path)) as repo:
            if not repo.bare:
                return "not a bare repository"
            for ref, sha in repo.get_refs().items():
                if wanted_ref(ref):
                    repo[sha]  # loads the object: a missing or broken pack shows here
    # A probe of local files only: any failure to read them means the mirror is damaged.
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__
    return None


def mark_damaged(path: Path, what: str, exc: BaseException) -> GitError:
    """Note a failed read so the next fetch clones the mirror anew; returns the error to raise."""
    if isinstance(exc, KeyError):
        reason = f"{what} is missing"
    else:
        reason = f"{what} is unreadable ({type(exc).__name__})"
    with contextlib.suppress(OSError):
        (path / DAMAGED).write_text(reason + "\n", encoding="utf-8")
    return GitError(
        f"mirror {path}: {reason}", hint="the mirror is damaged; run again to clone it anew"
    )


def read_fetch_state(path: Path) -> FetchState | None:
    try:
        data = json.loads((path / FETCH_STATE).read_text(encoding="utf-8"))
        return FetchState(url=str(data["url"]), fetched_at=data.get("fetched_at"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_fetch_state(path: Path, remote: Remote) -> None:
    data = {"url": remote.display, "fetched_at": utc_stamp()}
    write_atomic(path / FETCH_STATE, (json.dumps(data) + "\n").encode("utf-8"), durable=False)


def _fetch_into(repo: Repo, remote: Remote) -> tuple[str | None, tuple[str, ...]]:
    """Fetch every head and tag into `repo`; mirror heads, keep local-only tags."""
    old = {ref: sha for ref, sha in repo.get_refs().items() if wanted_ref(ref)}

    def wants(refs: Mapping[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
        store = repo.object_store
        return sorted(
            {
                sha
                for ref, sha in refs.items()
                if sha and sha != ZERO_SHA and wanted_ref(ref) and ObjectID(sha) not in store
            }
        )

    with connected(remote, "upload-pack") as (client, rpath):
        result = client.fetch(rpath, repo, determine_wants=wants)  # type: ignore[arg-type]
    new = {ref: sha for ref, sha in result.refs.items() if sha is not None and wanted_ref(ref)}
    forced = []
    for ref, sha in sorted(new.items()):
        previous = old.get(ref)
        if previous is not None and previous != sha and not _descends(repo, previous, sha):
            forced.append(ref.decode())
        if previous != sha:
            repo.refs[Ref(ref)] = ObjectID(sha)
    for ref in old:
        if ref.startswith(b"refs/heads/") and ref not in new:
            del repo.refs[Ref(ref)]  # the branch is gone upstream
    head: bytes | None = result.symrefs.get(Ref(b"HEAD"))
    if head is None and Ref(b"HEAD") in result.refs:  # a server that does not name its HEAD
        tip = result.refs[Ref(b"HEAD")]
        heads = sorted(r for r, s in new.items() if r.startswith(b"refs/heads/") and s == tip)
        head = next((r for r in heads if r in (b"refs/heads/main", b"refs/heads/master")), None)
        head = head or (heads[0] if heads else None)
    if head is not None:
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(head))
    return (head.decode() if head else None), tuple(forced)


def _tidy(repo: Repo) -> list[str]:
    """Repack once many small fetch packs have piled up (git's gc.autoPackLimit, default 50).

    Unreachable objects younger than two weeks stay (a capture commit not yet pushed survives).
    A failure here costs speed, not correctness: warn and carry on.
    """
    try:
        maybe_auto_gc(repo)
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        return [f"repacking the mirror failed ({type(exc).__name__}); it still works"]
    return []


def _refs_of(repo: Repo) -> dict[str, str]:
    return {ref.decode(): sha.decode() for ref, sha in repo.get_refs().items() if wanted_ref(ref)}


def _clone(remote: Remote, path: Path) -> tuple[str | None, dict[str, str]]:
    """Fetch into a fresh bare repo beside `path`, then move it into place: never half a mirror."""
    _make_parent(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with Repo.init_bare(str(tmp)) as repo:
            try:
                head, _ = _fetch_into(repo, remote)
            except transport_errors() as exc:
                raise transport_failure(remote, exc, "clone") from None
            refs = _refs_of(repo)
        _write_fetch_state(tmp, remote)
        if path.exists() or path.is_symlink():
            _move_aside(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return head, refs


def _in_mirror(exc: BaseException, path: Path) -> bool:
    """A failure reading or writing our own mirror's files, not the remote's or the network's."""
    name = getattr(exc, "filename", None)
    return isinstance(exc, OSError) and isinstance(name, str) and name.startswith(f"{path}/")


def _move_aside(path: Path) -> None:
    """Keep the last damaged mirror (a folder, or whatever replaced it) for a look, not more."""
    aside = path.with_name(f"{path.name}.damaged")
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    elif aside.exists() or aside.is_symlink():
        aside.unlink()
    path.rename(aside)


def has_mirror(state_dir: Path, remote: Remote) -> bool:
    return (mirror_path(state_dir, remote) / "HEAD").is_file()


def fetch(remote: Remote, state_dir: Path) -> FetchResult:
    """Clone the mirror when absent (or damaged), fetch otherwise; FetchFailed if unreachable."""
    path = mirror_path(state_dir, remote)
    warnings: list[str] = []
    with locked_mirror(path):
        if path.exists():
            problem = mirror_problem(path)
            if problem is None:
                with Repo(str(path)) as repo:
                    try:
                        head, forced = _fetch_into(repo, remote)
                    except transport_errors() as exc:
                        if not _in_mirror(exc, path):
                            raise transport_failure(remote, exc, "fetch") from None
                        problem = f"local mirror problem: {getattr(exc, 'strerror', None) or exc}"
                    else:
                        refs = _refs_of(repo)
                        warnings.extend(_tidy(repo))
                if problem is None:
                    _write_fetch_state(path, remote)
                    return FetchResult(path, head, refs, forced, warnings=tuple(warnings))
            warnings.append(f"mirror {path} is damaged ({problem}); cloning it again")
        try:
            head, refs = _clone(remote, path)
        except FetchFailed as exc:
            if warnings:
                raise GitError(
                    f"mirror {path} is damaged and {exc.message}",
                    hint="restore access to the remote, or delete the mirror folder",
                ) from None
            raise
    return FetchResult(path, head, refs, cloned=True, warnings=tuple(warnings))
