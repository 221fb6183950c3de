"""Remotes: URLs, credentials kept out of every file and message, transports, ls-remote."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from dulwich.client import (
    GitClient,
    HTTPProxyUnauthorized,
    HTTPUnauthorized,
    LocalGitClient,
    SendPackResult,
    get_transport_and_path,
)
from dulwich.errors import (
    GitProtocolError,
    NotGitRepository,
)
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from tether.errors import GitError, UsageError
from tether.hostfs.fsutil import exclusive_lock
from tether.textsafe import mask_url

if TYPE_CHECKING:
    from dulwich.client import GeneratePackDataFunc

TOKEN_ENV = "TETHER_GIT_TOKEN"  # noqa: S105 (a variable name, not a secret)

USERNAME_ENV = "TETHER_GIT_USERNAME"

DEFAULT_TOKEN_USER = "tether"  # noqa: S105

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:")


def transport_errors() -> tuple[type[BaseException], ...]:
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


class FetchFailed(GitError):
    """The remote could not be reached or refused us; `reason` is safe to print."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


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


def repo_identity(location: str) -> str:
    """What names a config repo's own state: the URL without credentials, the real path of a
    local repo (file:// or not)."""
    key = parse_remote(location, environ={}).key
    if key.startswith("file://"):
        return str(Path(unquote(urlsplit(key).path)).resolve())
    return key


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


PUSH_LOCK = "tether-push.lock"  # in a local remote's git dir: tether's pushes, one at a time
EMPTY_LOCK_GRACE = 1.0  # seconds: git writes a ref lock's value right after creating it


class LocalRemoteClient(LocalGitClient):
    """A remote on the local file system, served in-process, without pack bitmaps, one tether
    push at a time.

    dulwich (1.2.21) serves a local fetch in-process; its bitmap reachability reads a `.bitmap`
    for every pack once any pack has one, and fails with FileNotFoundError on a pack without
    (what `git gc --auto` leaves after pushes). Graph traversal gives the same objects; git
    falls back the same way when bitmaps do not cover a request. See docs/git.md.

    A push served in-process locks the remote's refs from this process: killed inside it, it
    leaves `refs/.../<name>.lock` behind and every later push of that ref fails. So each push
    holds `PUSH_LOCK` in the remote and records there the refs it sets; the next push, holding
    the lock, removes the ref locks a killed push provably left (see `_clear_killed_push`).
    """

    @classmethod
    def _open_repo(cls, path: str | bytes) -> closing[Repo]:
        repo = Repo(os.fsdecode(path))
        store = repo.object_store
        without_bitmaps = functools.partial(
            type(store).get_reachability_provider, store, prefer_bitmaps=False
        )
        setattr(store, "get_reachability_provider", without_bitmaps)  # noqa: B010 (one instance)
        return closing(repo)

    def send_pack(  # noqa: PLR0917 (dulwich's signature)
        self,
        path: str | bytes,
        update_refs: Callable[[dict[Ref, ObjectID]], dict[Ref, ObjectID]],
        generate_pack_data: GeneratePackDataFunc,
        progress: Callable[[bytes], None] | None = None,
        push_options: Sequence[bytes] | None = None,
        atomic: bool = False,
    ) -> SendPackResult:
        gitdir = Path(os.fsdecode(path))
        if (gitdir / ".git").is_dir():  # a repo with a work tree: its git dir, not the tree
            gitdir /= ".git"
        record = gitdir / PUSH_LOCK
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(exclusive_lock(record))
            except OSError:  # a remote we may not write in: the push itself will say so
                return super().send_pack(
                    path, update_refs, generate_pack_data, progress, push_options, atomic
                )
            _clear_killed_push(gitdir, record)

            def recorded_update(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
                new = update_refs(refs)
                shas = {r.decode(): s.decode() for r, s in new.items()}
                record.write_text(json.dumps({"pid": os.getpid(), "refs": shas}))
                return new

            try:
                return super().send_pack(
                    path, recorded_update, generate_pack_data, progress, push_options, atomic
                )
            finally:
                record.write_bytes(b"")  # not killed: every ref lock of this push is gone


def _clear_killed_push(gitdir: Path, record: Path) -> None:
    """Remove the ref locks a push killed inside this remote left (we hold `record`'s lock).

    The record names what that push was setting; a ref lock is its leftover when it holds one of
    those values (a lock is written with the new value, or left empty), never another writer's:
    no tether push runs while we hold the lock, and a git process writes its lock's value at
    once (an empty lock must stay empty for `EMPTY_LOCK_GRACE`)."""
    try:
        refs = json.loads(record.read_text()).get("refs", {})
    except (OSError, ValueError, AttributeError):
        refs = {}  # no record, or one cut short: that push was killed before locking any ref
    if not isinstance(refs, dict) or not refs:
        return
    values = {f"{sha}\n".encode() for sha in refs.values() if isinstance(sha, str)}
    locks = [gitdir / "HEAD.lock", gitdir / "packed-refs.lock"]
    if (gitdir / "refs").is_dir():
        locks += sorted((gitdir / "refs").rglob("*.lock"))
    for lock in locks:
        try:
            held = lock.read_bytes()
            if not held and time.time() - lock.stat().st_mtime < EMPTY_LOCK_GRACE:
                time.sleep(EMPTY_LOCK_GRACE)
                held = lock.read_bytes()
        except OSError:
            continue  # gone already, or not a file
        if any(value.startswith(held) for value in values):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
    record.write_bytes(b"")


def _client(remote: Remote, operation: str) -> tuple[GitClient, str]:
    try:
        client, path = get_transport_and_path(
            remote.url,
            operation=operation,
            username=remote.username,
            password=remote.password,
            ssh_command=_ssh_command(),
            quiet=True,
        )
    except ValueError as exc:
        raise UsageError(f"--repo {remote.display}: {remote.scrub(str(exc))}") from None
    if type(client) is LocalGitClient:
        client = LocalRemoteClient()
    return client, path


@contextlib.contextmanager
def connected(remote: Remote, operation: str) -> Iterator[tuple[GitClient, str]]:
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


def wanted_ref(ref: bytes) -> bool:
    return ref.startswith((b"refs/heads/", b"refs/tags/")) and not ref.endswith(b"^{}")


def transport_failure(remote: Remote, exc: BaseException, doing: str) -> FetchFailed:
    reason = _reason(remote, exc)
    return FetchFailed(
        f"cannot {doing} {remote.display}: {reason}",
        reason=reason,
        hint="check the URL, the network and the credentials",
    )


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
        with _socket_timeout(timeout), connected(remote, "upload-pack") as (client, rpath):
            result = client.get_refs(rpath)  # type: ignore[arg-type]
    except transport_errors() as exc:
        raise transport_failure(remote, exc, "reach") from None
    return {
        ref.decode(): sha.decode()
        for ref, sha in result.refs.items()
        if sha is not None and wanted_ref(ref)
    }
