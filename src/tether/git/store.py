"""The git layer: a bare mirror per remote, refs, trees, blobs, tags, commits and pushes.

With `git/read.py` (read-only access to the local work repo a hook runs in), this is the only
module that imports dulwich. Every Repo
is opened in a `with` block; every commit and tag gets an explicit identity; every push checks
the per-ref status the server returns. Credentials never reach the mirror's
files or a message: an http(s) URL's user and password are stripped from the stored URL and sent
as arguments, and every URL shown is masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from dulwich.client import (
    GitClient,
    HTTPProxyUnauthorized,
    HTTPUnauthorized,
    get_transport_and_path,
)
from dulwich.errors import (
    ChecksumMismatch,
    GitProtocolError,
    NotGitRepository,
    NotTreeError,
    ObjectFormatException,
)
from dulwich.gc import maybe_auto_gc
from dulwich.graph import can_fast_forward
from dulwich.object_store import BaseObjectStore, commit_tree_changes, tree_lookup_path
from dulwich.objects import ZERO_SHA, Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.pack import UnpackedObject, pack_objects_to_data
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from tether.config.inventory import check_relative_path
from tether.errors import GitError, StateError, UsageError
from tether.textsafe import mask_url

MIRRORS = "mirrors"
FETCH_STATE = "tether-fetch.json"  # in the mirror: where from and when it was last fetched
DAMAGED = "tether-damaged"  # in the mirror: a read failed, clone it again on the next fetch
TOKEN_ENV = "TETHER_GIT_TOKEN"  # noqa: S105 (a variable name, not a secret)
USERNAME_ENV = "TETHER_GIT_USERNAME"
DEFAULT_TOKEN_USER = "tether"  # noqa: S105
DEFAULT_IDENTITY = "tether <tether@localhost>"
GITLINK = 0o160000
LOOSE_MAX = 64  # more new objects than this are written as one pack
REGULAR = 0o100644
EXECUTABLE = 0o100755
SYMLINK = 0o120000
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:")
_IDENTITY = re.compile(r"^[^<>\n]+ <[^<>\n]*>$")
# Server messages that mean "someone else moved the ref first": rebuild on the new tip.
_RACE_WORDS = ("non-fast-forward", "fetch first", "stale info", "failed to lock", "cannot lock")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a failing remote raises: network, DNS, auth, protocol, a missing local repo.

    A function, so urllib3 (40 ms to import) loads only when something failed.
    """
    import urllib3.exceptions  # noqa: PLC0415

    return (
        OSError,
        GitProtocolError,
        NotGitRepository,
        HTTPUnauthorized,
        HTTPProxyUnauthorized,
        urllib3.exceptions.HTTPError,
    )


# What reading a damaged object store raises (missing object, bad zlib stream, bad checksum).
_DAMAGE: tuple[type[BaseException], ...] = (
    KeyError,
    zlib.error,
    ChecksumMismatch,
    ObjectFormatException,
    AssertionError,
    ValueError,
    OSError,
)


class FetchFailed(GitError):
    """The remote could not be reached or refused us; `reason` is safe to print."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Remotes and credentials


@dataclass(frozen=True)
class Remote:
    """A remote as git is told about it: `url` never holds a password."""

    url: str
    display: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    hidden: tuple[str, ...] = field(default=(), repr=False)  # more strings never to print

    @property
    def key(self) -> str:
        """What names the mirror: the credential-free URL (an absolute path for a local repo)."""
        return self.url

    def scrub(self, text: str) -> str:
        """`text` with any URL password and our own password masked."""
        text = mask_url(text)
        for secret in (self.password, *self.hidden):
            if secret:
                text = text.replace(secret, "***")
        return text


def parse_remote(
    location: str,
    *,
    username: str | None = None,
    password: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Remote:
    """Split credentials off `location`; an http(s) remote may take a token from the environment.

    TETHER_GIT_TOKEN is sent as the HTTP basic password (user: the URL's user, TETHER_GIT_USERNAME,
    or "tether"); it is never written anywhere.
    """
    env = os.environ if environ is None else environ
    display = mask_url(location)
    if "://" not in location:
        if _SCP_LIKE.match(location):  # user@host:path, an ssh remote
            return Remote(url=location, display=display)
        local = str(Path(location).expanduser().resolve())
        return Remote(url=local, display=local)
    try:
        parts = urlsplit(location)
    except ValueError:  # a bad [IPv6] host; the reason may quote the URL, so it is not shown
        raise UsageError(
            f"--repo {display}: not a valid URL", hint="check the host (an IPv6 one in [...])"
        ) from None
    scheme = parts.scheme.lower()
    user = unquote(parts.username) if parts.username else None
    secret = unquote(parts.password) if parts.password is not None else None
    if scheme in ("http", "https"):
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        try:
            netloc = f"{host}:{parts.port}" if parts.port else host
        except ValueError:
            raise UsageError(f"--repo {display}: the port is not a number") from None
        url = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
        # A user without a password may itself be a token (https://TOKEN@host/...): hide it too.
        shown_user = "" if user is None else "***@" if secret is None else f"{user}:***@"
        shown = urlunsplit((scheme, shown_user + netloc, parts.path, parts.query, ""))
        username = username or user
        password = password or secret or env.get(TOKEN_ENV) or None
        if password and not username:
            username = env.get(USERNAME_ENV) or DEFAULT_TOKEN_USER
        hidden = (user,) if user and secret is None and len(user) >= 8 else ()
        return Remote(url=url, display=shown, username=username, password=password, hidden=hidden)
    if secret is not None or password is not None:
        raise UsageError(
            f"--repo {display}: a password in a {scheme or 'ssh'} URL cannot be used",
            hint="use an ssh key (GIT_SSH_COMMAND or ~/.ssh/config) instead",
        )
    return Remote(url=location, display=display, username=username)


def _ssh_command() -> str | None:
    return os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or None


def _client(remote: Remote, operation: str) -> tuple[GitClient, str]:
    try:
        return get_transport_and_path(
            remote.url,
            operation=operation,
            username=remote.username,
            password=remote.password,
            ssh_command=_ssh_command(),
            quiet=True,
        )
    except ValueError as exc:
        raise UsageError(f"--repo {remote.display}: {remote.scrub(str(exc))}") from None


@contextlib.contextmanager
def _connected(remote: Remote, operation: str) -> Iterator[tuple[GitClient, str]]:
    """A client for one operation; its sockets (urllib3 keeps a pool) are closed afterwards."""
    client, rpath = _client(remote, operation)
    try:
        yield client, rpath
    finally:
        client.close()
        pool = getattr(client, "pool_manager", None)
        if pool is not None:
            pool.clear()


def _reason(remote: Remote, exc: BaseException) -> str:
    """One printable line about a transport failure (never a credential)."""
    import urllib3.exceptions  # noqa: PLC0415 (only on a failure)

    if isinstance(exc, HTTPUnauthorized):
        return "authentication failed (HTTP 401)"
    if isinstance(exc, HTTPProxyUnauthorized):
        return "proxy authentication failed (HTTP 407)"
    if isinstance(exc, NotGitRepository):
        return "not a git repository"
    if isinstance(exc, GitProtocolError) and isinstance(
        exc.__cause__, urllib3.exceptions.HTTPError
    ):
        exc = exc.__cause__  # dulwich wraps urllib3's error
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # urllib3 wraps the real cause
    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return "cannot resolve the host name"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return remote.scrub(str(exc).rsplit("]", 1)[-1].strip().lower() or "cannot connect")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return remote.scrub(text)[:200]


# ---------------------------------------------------------------------------------------------
# The mirror


def mirror_path(state_dir: Path, remote: Remote) -> Path:
    """state_dir/mirrors/<slug>-<hash of the credential-free URL>: stable, safe as a file name."""
    digest = hashlib.sha256(remote.key.encode()).hexdigest()[:16]
    tail = remote.key.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tail = tail.removesuffix(".git")
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", tail).strip("._")[:40] or "repo"
    return state_dir / MIRRORS / f"{slug}-{digest}.git"


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
def _locked(path: Path) -> Iterator[None]:
    """One fetch per mirror at a time (two timers, or a timer and a person)."""
    _make_parent(path)
    lock = path.parent / f".{path.name}.lock"
    try:
        handle = lock.open("a")
    except OSError as exc:
        raise StateError(
            f"{lock}: cannot open the mirror lock ({exc.strerror})",
            hint="check --state-dir (TETHER_STATE_DIR) and its permissions",
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wanted(ref: bytes) -> bool:
    return ref.startswith((b"refs/heads/", b"refs/tags/")) and not ref.endswith(b"^{}")


def _peel(repo: Repo, sha: bytes) -> bytes:
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return obj.id


def _descends(repo: Repo, old: bytes, new: bytes) -> bool:
    try:
        return can_fast_forward(repo, ObjectID(_peel(repo, old)), ObjectID(_peel(repo, new)))
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
                if _wanted(ref):
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
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    data = {"url": remote.display, "fetched_at": now}
    tmp = path / f".{FETCH_STATE}.tmp"
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    tmp.replace(path / FETCH_STATE)


def _fetch_into(repo: Repo, remote: Remote) -> tuple[str | None, tuple[str, ...]]:
    """Fetch every head and tag into `repo`; mirror heads, keep local-only tags."""
    old = {ref: sha for ref, sha in repo.get_refs().items() if _wanted(ref)}

    def wants(refs: Mapping[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
        store = repo.object_store
        return sorted(
            {
                sha
                for ref, sha in refs.items()
                if sha and sha != ZERO_SHA and _wanted(ref) and ObjectID(sha) not in store
            }
        )

    with _connected(remote, "upload-pack") as (client, rpath):
        result = client.fetch(rpath, repo, determine_wants=wants)  # type: ignore[arg-type]
    new = {ref: sha for ref, sha in result.refs.items() if sha is not None and _wanted(ref)}
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
    return {ref.decode(): sha.decode() for ref, sha in repo.get_refs().items() if _wanted(ref)}


def _transport_failure(remote: Remote, exc: BaseException, doing: str) -> FetchFailed:
    reason = _reason(remote, exc)
    return FetchFailed(
        f"cannot {doing} {remote.display}: {reason}",
        reason=reason,
        hint="check the URL, the network and the credentials",
    )


def _clone(remote: Remote, path: Path) -> tuple[str | None, dict[str, str]]:
    """Fetch into a fresh bare repo beside `path`, then move it into place: never half a mirror."""
    _make_parent(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with Repo.init_bare(str(tmp)) as repo:
            try:
                head, _ = _fetch_into(repo, remote)
            except _transport_errors() as exc:
                raise _transport_failure(remote, exc, "clone") from None
            refs = _refs_of(repo)
        _write_fetch_state(tmp, remote)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return head, refs


@contextlib.contextmanager
def _socket_timeout(seconds: float | None) -> Iterator[None]:
    """Bound every socket dulwich and urllib3 open (both use the default timeout)."""
    if seconds is None:
        yield
        return
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def ls_remote(remote: Remote, *, timeout: float | None = None) -> dict[str, str]:
    """The remote's heads and tags (ref -> commit id), nothing fetched; FetchFailed if unreachable.

    A cheap reachability probe (`tether doctor`): one round trip, no objects downloaded.
    `timeout` bounds each socket operation of git:// and http(s) (not an ssh subprocess).
    """
    try:
        with _socket_timeout(timeout), _connected(remote, "upload-pack") as (client, rpath):
            result = client.get_refs(rpath)  # type: ignore[arg-type]
    except _transport_errors() as exc:
        raise _transport_failure(remote, exc, "reach") from None
    return {
        ref.decode(): sha.decode()
        for ref, sha in result.refs.items()
        if sha is not None and _wanted(ref)
    }


def has_mirror(state_dir: Path, remote: Remote) -> bool:
    return (mirror_path(state_dir, remote) / "HEAD").is_file()


def fetch(remote: Remote, state_dir: Path) -> FetchResult:
    """Clone the mirror when absent (or damaged), fetch otherwise; FetchFailed if unreachable."""
    path = mirror_path(state_dir, remote)
    warnings: list[str] = []
    with _locked(path):
        if path.exists():
            problem = mirror_problem(path)
            if problem is None:
                with Repo(str(path)) as repo:
                    try:
                        head, forced = _fetch_into(repo, remote)
                    except _transport_errors() as exc:
                        raise _transport_failure(remote, exc, "fetch") from None
                    refs = _refs_of(repo)
                    warnings.extend(_tidy(repo))
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


# ---------------------------------------------------------------------------------------------
# Refs, trees and blobs


@dataclass(frozen=True)
class Resolved:
    commit: str
    ref: str | None  # the full ref name, or None for a commit id


def _names(repo: Repo, prefix: bytes) -> list[str]:
    return sorted(r[len(prefix) :].decode() for r in repo.get_refs() if r.startswith(prefix))


def _not_found(repo: Repo, ref: str, display: str) -> GitError:
    branches = _names(repo, b"refs/heads/")
    tags = _names(repo, b"refs/tags/")
    known = ", ".join(branches[:8]) or "none"
    hint = f"branches: {known}"
    if tags:
        shown = ", ".join(tags[-5:])
        hint += f"; tags: {shown}" + (" (newest names)" if len(tags) > 5 else "")
    return GitError(f"{display}: no branch, tag or commit {ref!r}", hint=hint)


def resolve(path: Path, ref: str | None, *, display: str = "") -> Resolved:
    """A branch, a tag (annotated tags peeled), a full or short commit id; None: the default."""
    shown = display or str(path)
    with Repo(str(path)) as repo:
        if ref is None:
            target = repo.refs.get_symrefs().get(Ref(b"HEAD"))
            if target is None or target not in repo.refs:
                raise GitError(
                    f"{shown}: the remote has no default branch (empty repository?)",
                    hint="push a commit, or pass --ref",
                )
            return Resolved(_peel(repo, repo.refs[target]).decode(), target.decode())
        raw = ref.encode()
        for candidate in (Ref(raw), Ref(b"refs/heads/" + raw), Ref(b"refs/tags/" + raw)):
            if candidate.startswith(b"refs/") and _wanted(candidate) and candidate in repo.refs:
                sha = _peel(repo, repo.refs[candidate])
                if not isinstance(repo[sha], Commit):
                    raise GitError(f"{shown}: {ref!r} does not point at a commit")
                return Resolved(sha.decode(), candidate.decode())
        if _HEX.match(ref):
            matches = (
                [ObjectID(raw)] if len(raw) == 40 and ObjectID(raw) in repo.object_store else []
            ) or sorted(set(repo.object_store.iter_prefix(raw)))
            commits = [m for m in matches if isinstance(repo[m], Commit)]
            if len(commits) > 1:
                raise GitError(
                    f"{shown}: commit id {ref!r} is ambiguous", hint="give more hex digits"
                )
            if commits:
                return Resolved(commits[0].decode(), None)
        raise _not_found(repo, ref, shown)


def list_tree(path: Path, commit: str) -> dict[str, tuple[int, str]]:
    """Every blob of the commit's tree: {path: (mode, blob id)}; submodules are left out.

    The last listing is kept in the mirror (TREE_CACHE). A commit id names its tree for good, so
    the same commit is answered from it without opening the repo (a no-op reconcile reads one
    JSON file), and the next commit's listing walks only the subtrees that differ from it.
    """
    cached = _read_tree_cache(path)
    if cached is not None and cached[0] == commit:
        return cached[2]
    with Repo(str(path)) as repo:
        try:
            obj = repo[ObjectID(commit.encode())]
            if not isinstance(obj, Commit):
                raise GitError(f"{commit[:12]}: not a commit")
            if cached is not None and ObjectID(cached[1].encode()) in repo.object_store:
                entries = dict(cached[2])
                changes: dict[bytes, tuple[int, bytes] | None] = {}
                _diff_trees(repo, ObjectID(cached[1].encode()), obj.tree, b"", changes, [])
                for raw, entry in changes.items():
                    name = raw.decode("utf-8", "surrogateescape")
                    if entry is None or entry[0] == GITLINK:
                        entries.pop(name, None)
                    else:
                        entries[name] = (entry[0], entry[1].decode())
            else:
                entries = {
                    entry.path.decode("utf-8", "surrogateescape"): (entry.mode, entry.sha.decode())
                    for entry in repo.object_store.iter_tree_contents(obj.tree)
                    if entry.mode != GITLINK and entry.path is not None and entry.sha is not None
                }
        except _DAMAGE as exc:
            raise mark_damaged(path, f"the tree of {commit[:12]}", exc) from None
    _write_tree_cache(path, commit, obj.tree.decode(), entries)
    return entries


TREE_CACHE = "tether-tree.json"  # in the mirror: the last listed commit's tree


def _read_tree_cache(path: Path) -> tuple[str, str, dict[str, tuple[int, str]]] | None:
    try:
        data = json.loads((path / TREE_CACHE).read_text(encoding="utf-8"))
        entries = {str(k): (int(v[0]), str(v[1])) for k, v in data["entries"].items()}
        return str(data["commit"]), str(data["tree"]), entries
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _write_tree_cache(
    path: Path, commit: str, tree: str, entries: Mapping[str, tuple[int, str]]
) -> None:
    """Best effort: a cache that cannot be written only costs the next walk."""
    data = {"commit": commit, "tree": tree, "entries": entries}
    tmp = path / f".{TREE_CACHE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path / TREE_CACHE)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _tree_items(repo: Repo, sha: ObjectID | None) -> dict[bytes, tuple[int, bytes]]:
    if sha is None:
        return {}
    tree = repo[sha]
    if not isinstance(tree, Tree):
        raise ValueError(f"{sha.decode()[:12]} is not a tree")
    return {e.path: (e.mode, e.sha) for e in tree.iteritems() if e.path and e.sha and e.mode}


def _diff_trees(  # noqa: PLR0917
    repo: Repo,
    old: ObjectID | None,
    new: ObjectID | None,
    prefix: bytes,
    changes: dict[bytes, tuple[int, bytes] | None],
    objects: list[bytes],
) -> None:
    """Entries that differ between two trees (None: gone), walking only differing subtrees;
    `objects` collects the new side's trees and blobs met on the way (what a push must send)."""
    a, b = _tree_items(repo, old), _tree_items(repo, new)
    for name in sorted(a.keys() | b.keys()):
        was, now = a.get(name), b.get(name)
        if was == now:
            continue
        path = prefix + name
        was_dir = was is not None and stat.S_ISDIR(was[0])
        now_dir = now is not None and stat.S_ISDIR(now[0])
        if was_dir or now_dir:
            if now is not None and now_dir:
                objects.append(now[1])
            _diff_trees(
                repo,
                ObjectID(was[1]) if was is not None and was_dir else None,
                ObjectID(now[1]) if now is not None and now_dir else None,
                path + b"/",
                changes,
                objects,
            )
        if now is not None and not now_dir:
            changes[path] = now
            if now[0] != GITLINK:
                objects.append(now[1])
        elif was is not None and not was_dir:
            changes[path] = None


class ObjectReader:
    """An open mirror for many blob reads; close it (or use `with`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repo = Repo(str(path))

    def read_blob(self, blob_id: str) -> bytes:
        """The bytes of a blob named by a tree of this mirror (so a failure means damage)."""
        try:
            obj = self._repo.object_store[ObjectID(blob_id.encode())]
            data = obj.as_raw_string()
        except _DAMAGE as exc:
            raise mark_damaged(self.path, f"object {blob_id[:12]}", exc) from None
        if not isinstance(obj, Blob):
            raise GitError(f"object {blob_id[:12]} is not a file")
        return data

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_blob(path: Path, blob_id: str) -> bytes:
    with ObjectReader(path) as reader:
        return reader.read_blob(blob_id)


def blob_id_of(data: bytes) -> str:
    """The git blob id of `data` (what a tree entry holding these bytes records)."""
    return Blob.from_string(data).id.decode()


# ---------------------------------------------------------------------------------------------
# Tags


@dataclass(frozen=True)
class TagInfo:
    name: str
    commit: str
    date: str  # ISO 8601, UTC
    message: str
    annotated: bool


def _identity(identity: str | None) -> bytes:
    value = identity or DEFAULT_IDENTITY
    if not _IDENTITY.match(value):
        raise UsageError(f"identity {value!r} is not 'Name <email>'")
    return value.encode()


def _iso(stamp: int) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")


def check_tag_name(name: str) -> Ref:
    ref = Ref(b"refs/tags/" + name.encode())
    if not name or not check_ref_format(ref):
        raise UsageError(f"tag name {name!r} is not a valid git ref name")
    return ref


def create_tag(
    path: Path,
    name: str,
    commit: str,
    message: str,
    *,
    tagger: str | None = None,
    when: int | None = None,
) -> TagInfo:
    """An annotated tag on `commit`; an existing tag is never moved (GitError)."""
    ref = check_tag_name(name)
    stamp = int(time.time()) if when is None else when
    with Repo(str(path)) as repo:
        if ref in repo.refs:
            on = _peel(repo, repo.refs[ref]).decode()[:12]
            raise GitError(
                f"tag {name!r} already exists (on {on}); tags are never moved",
                hint="pick another name with --name",
            )
        target = repo[ObjectID(commit.encode())]
        if not isinstance(target, Commit):
            raise GitError(f"{commit[:12]}: not a commit")
        tag = Tag()
        tag.name = name.encode()
        tag.object = (Commit, target.id)
        tag.tagger = _identity(tagger)
        tag.tag_time = stamp
        tag.tag_timezone = 0
        tag.message = message.encode() if message.endswith("\n") else (message + "\n").encode()
        repo.object_store.add_object(tag)
        if not repo.refs.add_if_new(ref, tag.id):
            raise GitError(f"tag {name!r} appeared while it was being created; not moved")
    return TagInfo(name, commit, _iso(stamp), message.rstrip("\n"), annotated=True)


def list_tags(path: Path, prefix: str = "") -> list[TagInfo]:
    """Tags with their commit, date and message, newest first."""
    found = []
    with Repo(str(path)) as repo:
        for ref, sha in repo.get_refs().items():
            if not ref.startswith(b"refs/tags/") or ref.endswith(b"^{}"):
                continue
            name = ref[len(b"refs/tags/") :].decode()
            if not name.startswith(prefix):
                continue
            obj = repo[sha]
            if isinstance(obj, Tag):
                commit = _peel(repo, sha)
                stamp = obj.tag_time or 0
                message = obj.message.decode("utf-8", "replace").rstrip("\n")
                annotated = True
            else:
                commit = obj.id
                stamp = obj.commit_time if isinstance(obj, Commit) else 0
                message = ""
                annotated = False
            found.append(TagInfo(name, commit.decode(), _iso(stamp), message, annotated))
    return sorted(found, key=lambda t: (t.date, t.name), reverse=True)


# ---------------------------------------------------------------------------------------------
# Commits and pushes


def build_commit(
    path: Path,
    parent: str,
    changes: Mapping[str, bytes | None],
    message: str,
    *,
    author: str,
    when: int | None = None,
) -> str | None:
    """A commit on `parent` applying {path: bytes, or None to delete}; None when nothing changes.

    No work tree, no index, no hooks (research §2.6). An existing file keeps its mode (the exec
    bit survives); a new file is 0644. The commit is stored but no ref moves: push it next.
    """
    identity = _identity(author)
    stamp = int(time.time()) if when is None else when
    with Repo(str(path)) as repo:
        base = repo[parent.encode()]
        if not isinstance(base, Commit):
            raise GitError(f"{parent[:12]}: not a commit")
        pending = _Pending(repo.object_store)
        edits: list[tuple[bytes, int | None, ObjectID | None]] = []
        for name, data in sorted(changes.items()):
            problem = check_relative_path(name)
            if problem:
                raise GitError(f"cannot commit {name!r}: {problem}")
            raw = name.encode()
            mode = _mode_at(repo, base.tree, raw)  # one path lookup, not a walk of the tree
            if data is None:
                if mode is not None:
                    edits.append((raw, None, None))
                continue
            blob = Blob.from_string(data)
            pending.add_object(blob)
            edits.append((raw, mode if mode in (REGULAR, EXECUTABLE) else REGULAR, blob.id))
        tree_id = commit_tree_changes(pending, base.tree, edits) if edits else base.tree  # type: ignore[arg-type]
        if tree_id == base.tree:
            return None
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [base.id]
        commit.author = commit.committer = identity
        commit.author_time = commit.commit_time = stamp
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = message.encode() if message.endswith("\n") else (message + "\n").encode()
        pending.add_object(commit)
        pending.flush()
        return commit.id.decode()


class _Pending:
    """New objects kept in memory, then written as one pack (not thousands of loose files)."""

    def __init__(self, store: BaseObjectStore) -> None:
        self.store = store
        self.new: dict[bytes, ShaFile] = {}

    def __getitem__(self, sha: bytes) -> ShaFile:
        found = self.new.get(sha)
        return found if found is not None else self.store[ObjectID(sha)]

    def add_object(self, obj: ShaFile) -> None:
        self.new[obj.id] = obj

    def flush(self) -> None:
        fresh = [(obj, None) for sha, obj in self.new.items() if ObjectID(sha) not in self.store]
        if len(fresh) > LOOSE_MAX:
            self.store.add_objects(fresh)
        else:
            for obj, _ in fresh:
                self.store.add_object(obj)


def _mode_at(repo: Repo, tree: ObjectID, path: bytes) -> int | None:
    try:
        mode, _sha = tree_lookup_path(repo.object_store.__getitem__, tree, path)
    except (KeyError, NotTreeError):
        return None
    return mode


PushStatus = Literal["ok", "rejected", "lost-race"]


@dataclass(frozen=True)
class PushResult:
    status: PushStatus
    ref: str
    commit: str
    reason: str | None = None  # the server's words, or what we saw, when not ok

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _pack_data(repo: Repo) -> Callable[..., tuple[int, Iterator[UnpackedObject]]]:
    """Pack generation for a push: a commit on a parent the remote has sends only what differs
    between the two trees (dulwich's generic finder walks every tree the remote has)."""

    def generate(
        have: Iterable[ObjectID], want: Iterable[ObjectID], **kwargs: Any
    ) -> tuple[int, Iterator[UnpackedObject]]:
        have, want = set(have), set(want)
        if len(want) == 1:
            tip = repo[next(iter(want))]
            if isinstance(tip, Commit) and len(tip.parents) == 1 and tip.parents[0] in have:
                base = repo[tip.parents[0]]
                assert isinstance(base, Commit)
                objects: list[bytes] = [tip.id]
                if tip.tree != base.tree:
                    objects.append(tip.tree)
                    _diff_trees(repo, base.tree, tip.tree, b"", {}, objects)
                ids = list(dict.fromkeys(objects))
                return pack_objects_to_data(
                    [(repo[ObjectID(i)], None) for i in ids],
                    ofs_delta=bool(kwargs.get("ofs_delta", True)),
                )
        return repo.generate_pack_data(have, want, **kwargs)

    return generate


def push_ref(remote: Remote, path: Path, ref: str, sha: str, *, expected: str | None) -> PushResult:
    """Set `ref` on the remote to `sha` if it still holds `expected` (None: must not exist).

    A compare-and-swap: when the remote moved on, nothing is sent and the result is a lost race.
    The per-ref status the server returns is always checked (a hook may decline).
    """
    raw_ref, raw_sha = ref.encode(), sha.encode()
    seen: dict[str, bytes | None] = {}

    def update_refs(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
        current = refs.get(Ref(raw_ref))
        seen["current"] = current
        if (current.decode() if current else None) != expected:
            return refs  # lost the race (or the tag exists): send nothing
        return {**refs, Ref(raw_ref): ObjectID(raw_sha)}

    with _connected(remote, "receive-pack") as (client, rpath), Repo(str(path)) as repo:
        try:
            result = client.send_pack(
                rpath.encode() if isinstance(rpath, str) else rpath,
                update_refs,
                generate_pack_data=_pack_data(repo),
            )
        except _transport_errors() as exc:
            raise _transport_failure(remote, exc, "push to") from None
    if "current" not in seen:
        raise GitError(f"push to {remote.display}: the server never listed its refs")
    current = seen["current"]
    if (current.decode() if current else None) != expected:
        if expected is None:
            where = current.decode()[:12] if current else "?"
            return PushResult("rejected", ref, sha, f"{ref} already exists on the remote ({where})")
        return PushResult("lost-race", ref, sha, "the remote moved on since the last fetch")
    status = (result.ref_status or {}).get(Ref(raw_ref))
    if status is not None:
        reason = remote.scrub(str(status))
        lost = any(word in reason for word in _RACE_WORDS)
        return PushResult("lost-race" if lost else "rejected", ref, sha, reason)
    return PushResult("ok", ref, sha)


def push_tag(remote: Remote, path: Path, name: str) -> PushResult:
    """Push one tag; GitError (loud) unless the remote took it."""
    ref = check_tag_name(name)
    with Repo(str(path)) as repo:
        if ref not in repo.refs:
            raise GitError(f"no tag {name!r} in the mirror")
        sha = repo.refs[ref].decode()
    result = push_ref(remote, path, ref.decode(), sha, expected=None)
    if not result.ok:
        raise GitError(
            f"push of tag {name!r} to {remote.display} was rejected: {result.reason}",
            hint="check the remote's permissions and hooks",
        )
    return result


def push_branch(remote: Remote, path: Path, branch: str, commit: str, *, parent: str) -> PushResult:
    """Move `branch` on the remote from `parent` to `commit`; ok moves the mirror's ref too.

    A lost race means: fetch, rebuild the commit on the new tip, push again (research §2.6).
    """
    ref = f"refs/heads/{branch}"
    if not check_ref_format(Ref(ref.encode())):
        raise UsageError(f"branch name {branch!r} is not a valid git ref name")
    result = push_ref(remote, path, ref, commit, expected=parent)
    if result.ok:
        with Repo(str(path)) as repo:
            repo.refs[Ref(ref.encode())] = ObjectID(commit.encode())
    return result


def delete_local_tag(path: Path, name: str) -> None:
    with Repo(str(path)) as repo:
        ref = check_tag_name(name)
        if ref in repo.refs:
            del repo.refs[ref]


def set_ref(path: Path, ref: str, sha: str) -> None:
    """Point a local ref of the mirror at `sha` (e.g. refs/tether/pending/<time>)."""
    raw = Ref(ref.encode())
    if not check_ref_format(raw):
        raise UsageError(f"{ref!r} is not a valid git ref name")
    with Repo(str(path)) as repo:
        repo.refs[raw] = ObjectID(sha.encode())


def local_refs(path: Path, prefix: str) -> dict[str, str]:
    """The mirror's refs starting with `prefix` (e.g. refs/tether/pending/)."""
    with Repo(str(path)) as repo:
        return {
            ref.decode(): sha.decode()
            for ref, sha in repo.get_refs().items()
            if ref.startswith(prefix.encode())
        }
