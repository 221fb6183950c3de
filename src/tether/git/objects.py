"""Reading the mirror: refs, trees, blobs (with a tree cache), and annotated tags."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import mmap
import re
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.graph import can_fast_forward
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from tether.errors import GitError, UsageError
from tether.git.mirror import DAMAGE_ERRORS, mark_damaged, peel
from tether.git.remote import wanted_ref
from tether.hostfs.fsutil import write_atomic
from tether.stamps import utc_stamp

DEFAULT_IDENTITY = "tether <tether@localhost>"

GITLINK = 0o160000
SYMLINK_MODE = 0o120000

_HEX = re.compile(r"^[0-9a-f]{4,40}$")

_IDENTITY = re.compile(r"^[^<>\n]+ <[^<>\n]*>$")


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


class NoDefaultBranch(GitError):
    """HEAD names no existing branch and there are several to choose from."""


def branches(path: Path) -> list[str]:
    with Repo(str(path)) as repo:
        return _names(repo, b"refs/heads/")


def _default_branch(repo: Repo, shown: str) -> Ref:
    """The remote HEAD's branch; when HEAD names a branch that does not exist (a plain
    `git init --bare` points it at master, the first push made main), the only branch."""
    target = repo.refs.get_symrefs().get(Ref(b"HEAD"))
    if target is not None and target in repo.refs:
        return target
    branches = _names(repo, b"refs/heads/")
    if len(branches) == 1:
        return Ref(b"refs/heads/" + branches[0].encode())
    if not branches:
        raise GitError(
            f"{shown}: the remote has no branch (empty repository?)",
            hint="push a commit (tether capture), or pass --ref",
        )
    head = target.decode().removeprefix("refs/heads/") if target else "nothing"
    raise NoDefaultBranch(
        f"{shown}: the remote's HEAD names {head}, which does not exist, and it has "
        f"{len(branches)} branches",
        hint=f"pass --ref BRANCH or set capture.branch (branches: {', '.join(branches[:8])})",
    )


def resolve(path: Path, ref: str | None, *, display: str = "") -> Resolved:
    """A branch, a tag (annotated tags peeled), a full or short commit id; None: the default."""
    shown = display or str(path)
    with Repo(str(path)) as repo:
        if ref is None:
            target = _default_branch(repo, shown)
            return Resolved(peel(repo, repo.refs[target]).decode(), target.decode())
        raw = ref.encode()
        for candidate in (Ref(raw), Ref(b"refs/heads/" + raw), Ref(b"refs/tags/" + raw)):
            if candidate.startswith(b"refs/") and wanted_ref(candidate) and candidate in repo.refs:
                sha = peel(repo, repo.refs[candidate])
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


REGULAR_MODE = 0o100644


class Listing(Mapping[str, tuple[int, str]]):
    """A commit's files, {path: (mode, blob id)}, held compactly: the paths sorted, the ids packed
    in one bytes object, and only the modes that are not a regular file's. At 100,000 files
    that is about 11 MiB, where a dict of (mode, id) tuples holds about 29."""

    __slots__ = ("_ids", "_modes", "_paths", "_width")

    def __init__(self, paths: list[str], ids: bytes, modes: dict[str, int]) -> None:
        """`paths` sorted and unique; `ids` their blob ids, packed end to end."""
        self._paths = paths
        self._ids = ids
        self._width = len(ids) // len(paths) if paths else 20  # 20 bytes (SHA-1) or 32 (SHA-256)
        self._modes = modes
        if self._width not in (20, 32) or len(ids) != self._width * len(paths):
            raise ValueError("ids do not match the paths")

    @classmethod
    def of(cls, entries: Mapping[str, tuple[int, str]]) -> Listing:
        paths = sorted(entries)
        ids = b"".join(bytes.fromhex(entries[p][1]) for p in paths)
        return cls(paths, ids, {p: m for p, (m, _) in entries.items() if m != REGULAR_MODE})

    def _index(self, path: object) -> int:
        paths = self._paths
        i = bisect.bisect_left(paths, path) if isinstance(path, str) else len(paths)
        return i if i < len(paths) and paths[i] == path else -1

    def __getitem__(self, path: str) -> tuple[int, str]:
        i = self._index(path)
        if i < 0:
            raise KeyError(path)
        blob = self._ids[i * self._width : (i + 1) * self._width].hex()
        return self._modes.get(path, REGULAR_MODE), blob

    def __contains__(self, path: object) -> bool:
        return self._index(path) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def to_json(self) -> dict[str, object]:
        return {"paths": self._paths, "ids": self._ids.hex(), "modes": self._modes}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Listing:
        paths, ids, modes = data["paths"], data["ids"], data["modes"]
        if not (isinstance(paths, list) and isinstance(ids, str) and isinstance(modes, dict)):
            raise ValueError("not a listing")
        if not all(isinstance(p, str) for p in paths):
            raise ValueError("bad paths")
        if not all(a < b for a, b in itertools.pairwise(paths)):
            raise ValueError("paths not sorted and unique")
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in modes.items()):
            raise ValueError("bad modes")
        return cls(paths, bytes.fromhex(ids), modes)


def list_tree(path: Path, commit: str) -> Listing:
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
                entries = dict(cached[2].items())
                changes: dict[bytes, tuple[int, bytes] | None] = {}
                diff_trees(repo, ObjectID(cached[1].encode()), obj.tree, b"", changes, [])
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
        except DAMAGE_ERRORS as exc:
            raise mark_damaged(path, f"the tree of {commit[:12]}", exc) from None
    listing = Listing.of(entries)
    del entries
    _write_tree_cache(path, commit, obj.tree.decode(), listing)
    return listing


TREE_CACHE = "tether-tree.json"  # in the mirror: the last listed commit's tree


def _read_tree_cache(path: Path) -> tuple[str, str, Listing] | None:
    try:
        data = json.loads((path / TREE_CACHE).read_bytes())
        return str(data["commit"]), str(data["tree"]), Listing.from_json(data["listing"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # none yet, damaged, or an older layout: the tree is walked again


def _write_tree_cache(path: Path, commit: str, tree: str, listing: Listing) -> None:
    """Best effort: a cache that cannot be written only costs the next walk."""
    data = {"commit": commit, "tree": tree, "listing": listing.to_json()}
    with contextlib.suppress(OSError):
        text = json.dumps(data, separators=(",", ":"))
        write_atomic(path / TREE_CACHE, text.encode("utf-8"), durable=False)


def _tree_items(repo: Repo, sha: ObjectID | None) -> dict[bytes, tuple[int, bytes]]:
    if sha is None:
        return {}
    tree = repo[sha]
    if not isinstance(tree, Tree):
        raise ValueError(f"{sha.decode()[:12]} is not a tree")
    return {e.path: (e.mode, e.sha) for e in tree.iteritems() if e.path and e.sha and e.mode}


def diff_trees(  # noqa: PLR0917
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
            diff_trees(
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


# dulwich maps each pack whole and reads blobs from the mapping: every page touched stays
# resident (and counts in the process's memory) until the pack is closed, and the kernel maps up
# to 64 KiB around each page read. Reading a 100,000-file tree, in path order (random order in
# the pack), would hold the whole pack: the pages are let go every this many bytes read instead
# (they stay in the page cache, so reading them again costs no disk). At 100,000 files: 141 MiB
# of the pack resident with none let go, 20-45 MiB every 1 MiB, 14-24 MiB every 256 KiB.
RELEASE_EVERY = 256 * 1024


class ObjectReader:
    """An open mirror for many blob reads; close it (or use `with`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repo = Repo(str(path))
        self._unreleased = 0  # bytes read since the pack pages were last let go

    def read_blob(self, blob_id: str) -> bytes:
        """The bytes of a blob named by a tree of this mirror (so a failure means damage)."""
        try:
            obj = self._repo.object_store[ObjectID(blob_id.encode())]
            data = obj.as_raw_string()
        except DAMAGE_ERRORS as exc:
            raise mark_damaged(self.path, f"object {blob_id[:12]}", exc) from None
        if not isinstance(obj, Blob):
            raise GitError(f"object {blob_id[:12]} is not a file")
        self._unreleased += len(data)
        if self._unreleased >= RELEASE_EVERY:
            self.release()
        return data

    def release(self) -> None:
        """Let go of the pack pages the reads so far kept resident."""
        self._unreleased = 0
        release_pack_pages(self._repo)

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def release_pack_pages(repo: Repo) -> None:
    """Let go of the resident pages of the packs (and their indexes) dulwich has mapped:
    read-only file mappings, so dropping them loses nothing and a later read maps them in
    again. Best effort: a pack read into bytes, or a dulwich that keeps its mapping elsewhere,
    is left as it is."""
    for pack in repo.object_store.packs:
        # Only what is opened already (the pack's data and its index): do not open the rest.
        for opened in (getattr(pack, "_data", None), getattr(pack, "_idx", None)):
            contents = getattr(opened, "_contents", None)
            if isinstance(contents, mmap.mmap):
                with contextlib.suppress(OSError, ValueError):
                    contents.madvise(mmap.MADV_DONTNEED)


def is_ancestor(path: Path, commit: str, tip: str) -> bool:
    """Is `commit` in the history of `tip` (or `tip` itself)? False when either is unknown."""
    if commit == tip:
        return True
    try:
        with Repo(str(path)) as repo:
            return can_fast_forward(repo, ObjectID(commit.encode()), ObjectID(tip.encode()))
    except (KeyError, AssertionError, ValueError, NotGitRepository, OSError):
        return False


def read_blob(path: Path, blob_id: str) -> bytes:
    with ObjectReader(path) as reader:
        return reader.read_blob(blob_id)


@dataclass(frozen=True)
class TagInfo:
    name: str
    commit: str
    date: str  # ISO 8601, UTC
    message: str
    annotated: bool


def parse_identity(identity: str | None) -> bytes:
    value = identity or DEFAULT_IDENTITY
    if not _IDENTITY.match(value):
        raise UsageError(f"identity {value!r} is not 'Name <email>'")
    return value.encode()


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
            on = peel(repo, repo.refs[ref]).decode()[:12]
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
        tag.tagger = parse_identity(tagger)
        tag.tag_time = stamp
        tag.tag_timezone = 0
        tag.message = message.encode() if message.endswith("\n") else (message + "\n").encode()
        repo.object_store.add_object(tag)
        if not repo.refs.add_if_new(ref, tag.id):
            raise GitError(f"tag {name!r} appeared while it was being created; not moved")
    return TagInfo(name, commit, utc_stamp(stamp), message.rstrip("\n"), annotated=True)


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
                commit = peel(repo, sha)
                stamp = obj.tag_time or 0
                message = obj.message.decode("utf-8", "replace").rstrip("\n")
                annotated = True
            else:
                commit = obj.id
                stamp = obj.commit_time if isinstance(obj, Commit) else 0
                message = ""
                annotated = False
            found.append(TagInfo(name, commit.decode(), utc_stamp(stamp), message, annotated))
    return sorted(found, key=lambda t: (t.date, t.name), reverse=True)
