"""Writing to the remote: commits built on the fetched tip, ref updates, pushes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dulwich.errors import (
    NotTreeError,
)
from dulwich.file import FileLocked
from dulwich.object_store import BaseObjectStore, commit_tree_changes, tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID, ShaFile
from dulwich.pack import UnpackedObject, pack_objects_to_data
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from tether.config.inventory import check_relative_path
from tether.errors import GitError, UsageError
from tether.git.mirror import clear_stale_object_locks, locked_mirror
from tether.git.objects import check_tag_name, diff_trees, parse_identity
from tether.git.remote import Remote, connected, transport_errors, transport_failure

LOOSE_MAX = 64  # more new objects than this are written as one pack

REGULAR = 0o100644

EXECUTABLE = 0o100755

# Server messages that mean "someone else moved the ref first": rebuild on the new tip.
_RACE_WORDS = ("non-fast-forward", "fetch first", "stale info", "failed to lock", "cannot lock")


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
    identity = parse_identity(author)
    stamp = int(time.time()) if when is None else when
    # Under the mirror's lock: a loose object's lock file left by a killed capture is stale then.
    with locked_mirror(path), Repo(str(path)) as repo:
        clear_stale_object_locks(path)
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
                    diff_trees(repo, base.tree, tip.tree, b"", {}, objects)
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

    with connected(remote, "receive-pack") as (client, rpath), Repo(str(path)) as repo:
        try:
            result = client.send_pack(
                rpath.encode() if isinstance(rpath, str) else rpath,
                update_refs,
                generate_pack_data=_pack_data(repo),
            )
        except FileLocked as exc:  # a local remote, served in-process: its ref is locked
            lock = os.fsdecode(exc.lockfilename)
            raise GitError(
                f"push to {remote.display}: the ref is locked ({lock})",
                hint="another push is running, or one was killed: remove the lock file if none is",
            ) from None
        except transport_errors() as exc:
            raise transport_failure(remote, exc, "push to") from None
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
        with locked_mirror(path), Repo(str(path)) as repo:
            repo.refs[Ref(ref.encode())] = ObjectID(commit.encode())
    return result


def delete_local_tag(path: Path, name: str) -> None:
    with locked_mirror(path), Repo(str(path)) as repo:
        ref = check_tag_name(name)
        if ref in repo.refs:
            del repo.refs[ref]


def set_ref(path: Path, ref: str, sha: str) -> None:
    """Point a local ref of the mirror at `sha` (e.g. refs/tether/pending/<time>)."""
    raw = Ref(ref.encode())
    if not check_ref_format(raw):
        raise UsageError(f"{ref!r} is not a valid git ref name")
    with locked_mirror(path), Repo(str(path)) as repo:
        repo.refs[raw] = ObjectID(sha.encode())
