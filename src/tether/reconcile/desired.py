"""The desired state: which tree it is read from, and each tracked file rendered with secrets.

A file's rendered bytes are only computed when needed: when the source is unchanged since
tether last wrote it (same stat signature, or same git blob id) and the secret values it used
are unchanged, its hash is the ledger's and nothing is read or rendered.
"""

from __future__ import annotations

import grp
import os
import posixpath
import pwd
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tether.config.configrepo import ConfigRepo
from tether.config.inventory import repeated
from tether.config.manifest import FileOverride
from tether.config.options import SourceOptions, default_state_dir
from tether.config.sourcetree import FolderTree, SourceTree, link_refused
from tether.errors import SourceError, warn
from tether.hostfs.fsutil import FolderStat
from tether.hostfs.probe import Sig, stat_sig
from tether.secrets.render import missing_reason, render
from tether.secrets.store import SecretStore
from tether.stamps import git_blob_id
from tether.state.keyring import Keyring
from tether.state.ledger import LedgerEntry, OneCopy

CACHE_BUDGET = 32 * 1024 * 1024  # rendered bytes kept in memory between plan and apply


def open_tree(
    source: SourceOptions, state_dir: Path | None = None, *, require_fresh: bool = False
) -> SourceTree:
    if source.folder is not None:
        return source.folder_tree()
    from tether.git.tree import open_remote_tree  # noqa: PLC0415 (dulwich loads only for --repo)

    assert source.repo is not None
    tree = open_remote_tree(
        source.repo, source.ref, state_dir or default_state_dir(), require_fresh=require_fresh
    )
    for line in tree.notices():  # stale source, rewritten history, a re-cloned mirror
        warn(line)
    return tree


class DesiredFile(NamedTuple):
    """One tracked file as it should be on the host."""

    path: str  # inventory path
    dest: str  # absolute destination, target root included
    hash: str | None  # keyed hash of the rendered bytes; None when blocked
    blob: str | None = None  # git blob id of the repo bytes
    blocked: str | None = None
    mode: int | None = None  # from the manifest
    dir_mode: int | None = None
    uid: int | None = None  # enforced owner (only when running as root)
    gid: int | None = None
    secrets: tuple[str, ...] = ()  # names of the secrets filled in
    secret_digest: str | None = None
    source_sig: Sig | None = None

    @property
    def has_secret(self) -> bool:
        return bool(self.secrets)


@dataclass
class DesiredState:
    revision: str | None
    files: list[DesiredFile]
    store: SecretStore
    warnings: list[str] = field(default_factory=list)
    reader: Callable[[DesiredFile], bytes] | None = None
    cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    def content(self, item: DesiredFile) -> bytes:
        """The rendered bytes, checked against the planned hash (the source may have moved)."""
        data = self.cache.get(item.dest)
        if data is None:
            assert self.reader is not None, "content() before build_desired() finished"
            data = self.reader(item)
        return data

    def release(self, dest: str) -> None:
        self.cache.pop(dest, None)


def _account(value: str | None, kind: str) -> int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid if kind == "owner" else grp.getgrnam(value).gr_gid
    except KeyError:
        raise LookupError(
            f"{kind} {value!r} is not a {'user' if kind == 'owner' else 'group'} on this host"
        ) from None


def destination(root: str, home: str, path: str, dest: str | None) -> str:
    """target_root + (override dest or target_home/path), normalised."""
    if dest:  # noqa: SIM108
        rel = posixpath.normpath(dest)
    else:  # inventory paths and the home are normalised already (Confinement re-checks)
        rel = f"{home}/{path}" if home != "/" else f"/{path}"
    return rel if root == "/" else root.rstrip("/") + rel


def names_host(hosts: tuple[str, ...], hostname: str) -> bool:
    """`hosts:` may name this host by its full or its short name."""
    return hostname in hosts or hostname.split(".", 1)[0] in hosts


class StaleSource(Exception):
    """The source changed between the plan and the write."""


def build_desired(  # noqa: PLR0915
    repo: ConfigRepo,
    *,
    target_root: str,
    target_home: str,
    store: SecretStore,
    keyring: Keyring,
    ledger: Mapping[str, LedgerEntry],
    hostname: str,
    is_root: bool | None = None,
    cache_budget: int = CACHE_BUDGET,
) -> DesiredState:
    manifest = repo.manifest
    tree = repo.tree
    is_root = os.geteuid() == 0 if is_root is None else is_root
    folder = tree if isinstance(tree, FolderTree) else None
    folder_root = str(folder.root) if folder is not None else ""
    blob_id = None if folder is not None else tree.blob_id  # a commit knows them unread
    state = DesiredState(tree.revision, [], store)
    cache_left = cache_budget
    warned_owner = False

    source_stat = FolderStat()  # the allowlist is sorted: its files come folder by folder

    def source_sig(path: str) -> tuple[Sig | None, str | None]:
        if folder is None:
            return None, None
        source = repo.source_path(path)
        linked = folder.linked_folder(source)
        if linked is not None:
            return None, link_refused(linked)
        try:
            st = source_stat.lstat(f"{folder_root}/{source}")
        except FileNotFoundError:
            return None, f"missing in the config repo ({source})"
        except OSError as exc:
            return None, f"cannot read {source} ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            return None, link_refused(source)
        if not stat.S_ISREG(st.st_mode):
            return None, f"{source} is not a regular file"
        return stat_sig(st), None

    def read_source(path: str) -> bytes:
        if folder is None:
            return tree.read_bytes(repo.source_path(path))
        try:  # the folder fast path: no Path objects, never through a link
            fd = os.open(f"{folder_root}/{repo.source_path(path)}", os.O_RDONLY | os.O_NOFOLLOW)
            with open(fd, "rb") as handle:  # noqa: PTH123
                return handle.read()
        except OSError:
            return tree.read_bytes(repo.source_path(path))  # its error messages

    digests: dict[tuple[tuple[tuple[str, str], ...], tuple[str, ...]], str] = {}

    def digest(names: Mapping[str, str], used: tuple[str, ...]) -> str:
        key = (tuple(sorted(names.items())) if names else (), used)
        found = digests.get(key)
        if found is None:
            found = keyring.secret_digest(names, [(n, store.get(n)) for n in used])
            digests[key] = found
        return found

    recorded_dest = OneCopy(ledger)  # paths come sorted, and so do their destinations
    no_override = FileOverride(pattern="")
    no_names: dict[str, str] = {}
    for path in repo.tracked_paths:
        override = manifest.override_for(path) if manifest.files else no_override
        if override.hosts and not names_host(override.hosts, hostname):
            continue
        dest = destination(target_root, target_home, path, override.dest)
        dest = recorded_dest(dest)  # the ledger's string: held once, not twice
        uid = gid = None
        if override.owner is not None or override.group is not None:
            try:
                uid, gid = _account(override.owner, "owner"), _account(override.group, "group")
            except LookupError as exc:
                state.files.append(DesiredFile(path, dest, None, blocked=str(exc)))
                continue
            if not is_root:
                if not warned_owner:
                    state.warnings.append(
                        "tether.yaml sets owners or groups; they are applied only when running "
                        "as root"
                    )
                    warned_owner = True
                uid = gid = None
        names = manifest.secret_names_for(path) if manifest.secrets_map else no_names
        sig, problem = source_sig(path)
        known = ledger.get(dest)
        if (
            not problem
            and known is not None
            and known.path == path
            and (
                (sig is not None and sig == known.source_sig)
                or (blob_id is not None and blob_id(repo.source_path(path)) == known.blob)
            )
            and digest(names, known.secrets) == known.secret_digest
        ):  # unchanged since tether wrote it: the ledger's hash, nothing read (the fast path)
            fast = DesiredFile(
                path, dest, known.hash, known.blob, None, override.mode, override.dir_mode,
                uid, gid, known.secrets, known.secret_digest,
                known.source_sig if sig == known.source_sig else sig,
            )  # fmt: skip
            state.files.append(fast)
            continue
        base = DesiredFile(
            path, dest, None, mode=override.mode, dir_mode=override.dir_mode, uid=uid, gid=gid
        )
        if problem:
            state.files.append(base._replace(blocked=problem))
            continue
        try:
            raw = read_source(path)
        except SourceError as exc:
            state.files.append(base._replace(blocked=exc.message))
            continue
        # A commit names its blobs: its id string, not a hash of the bytes again (nor a copy).
        named = blob_id(repo.source_path(path)) if blob_id is not None else None
        blob = named or git_blob_id(raw)
        rendered = render(raw, store.get, names)
        if rendered.data is None:
            reason = missing_reason(rendered.missing, store.path)
            state.files.append(base._replace(blob=blob, blocked=reason))
            continue
        data = rendered.data
        if cache_left >= len(data):
            state.cache[base.dest] = data
            cache_left -= len(data)
        state.files.append(
            base._replace(
                hash=keyring.hash(data),
                blob=blob,
                secrets=rendered.used,
                secret_digest=digest(names, rendered.used),
                source_sig=sig,
            )
        )

    source_stat.close()
    tree.release()  # every source is read: a mirror's pack pages need not stay resident
    _block_shared_destinations(state)

    def reader(item: DesiredFile) -> bytes:
        try:
            raw = read_source(item.path)
        except SourceError as exc:
            raise StaleSource(f"{exc.message} (it was there when planned)") from None
        rendered = render(raw, store.get, manifest.secret_names_for(item.path))
        if rendered.data is None or keyring.hash(rendered.data) != item.hash:
            raise StaleSource(f"{repo.source_path(item.path)} changed since the plan")
        return rendered.data

    state.reader = reader
    return state


def _block_shared_destinations(state: DesiredState) -> None:
    """Two tracked paths with one destination: neither is written."""
    twice = repeated(item.dest for item in state.files)
    if not twice:
        return
    shared: dict[str, list[str]] = {dest: [] for dest in twice}
    for item in state.files:
        if item.dest in shared:
            shared[item.dest].append(item.path)
    kept: dict[str, DesiredFile] = {}
    for item in state.files:
        if item.dest in shared:
            why = f"tracked paths {', '.join(shared[item.dest])} share this destination"
            kept.setdefault(item.dest, item._replace(hash=None, blocked=why))
        else:
            kept[item.dest] = item
    state.files = list(kept.values())
