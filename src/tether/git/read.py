"""Object-level reads of a work repo for the scanner: the index, commit ranges, pushed commits.

`git/mirror.py` owns the remote mirror; this module only reads a local work repo (the one a
hook runs in) and never writes to it. Blob bytes come straight from the object store, so
what is scanned is exactly what would be committed or pushed, whatever the work tree holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.ignore import IgnoreFilterManager
from dulwich.index import ConflictedIndexEntry, Index
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.walk import Walker

from tether.errors import GitError, UsageError
from tether.hostfs.fsutil import git_work_tree

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")
_ANCESTRY = re.compile(r"(?:[~^]\d*)+$")
_REGULAR = (0o100644, 0o100755)  # symlinks (0o120000) and gitlinks (0o160000) hold no content

CommitId = ObjectID  # what callers outside the git layer name a commit id as


@dataclass(frozen=True)
class GitBlob:
    """One file's bytes to scan; in commit scans, lines that commit did not add are blank."""

    path: str
    data: bytes
    commit: str | None = None


class WorkRepo:
    """A local git repo opened for reading; use as a context manager."""

    def __init__(self, path: Path) -> None:
        root = git_work_tree(path)
        if root is None:
            raise GitError(f"{path}: not inside a git repository", hint="run it in a git work tree")
        try:
            self.repo = Repo(str(root))
        except NotGitRepository:
            raise GitError(f"{root}: not a usable git repository") from None
        self.root = root
        self._shallow = frozenset(self.repo.get_shallow())

    def __enter__(self) -> WorkRepo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.repo.close()

    # -- resolving names -------------------------------------------------------------------

    def resolve(self, name: str) -> ObjectID:
        """A commit id from a sha, `HEAD`, a ref or a short name, with `~N` / `^N` suffixes."""
        suffix = _ANCESTRY.search(name)
        if suffix is not None and suffix.start() > 0:
            sha = self._resolve_name(name[: suffix.start()])
            for step in re.finditer(r"([~^])(\d*)", suffix.group()):
                count = int(step[2]) if step[2] else 1
                if step[1] == "~":
                    for _ in range(count):
                        sha = self._parent(sha, 1, name)
                elif count:
                    sha = self._parent(sha, count, name)
            return sha
        return self._resolve_name(name)

    def _parent(self, sha: ObjectID, number: int, name: str) -> ObjectID:
        commit = self.repo.object_store[sha]
        assert isinstance(commit, Commit)
        parents = self._parents(commit)
        if len(parents) < number:
            raise GitError(f"{name}: no such commit in {self.root}", hint="check `git log`")
        return parents[number - 1]

    def _resolve_name(self, name: str) -> ObjectID:
        raw = name.encode()
        candidates = [raw] if raw.startswith(b"refs/") or raw == b"HEAD" else []
        candidates += [b"refs/heads/" + raw, b"refs/tags/" + raw, b"refs/remotes/" + raw]
        for candidate in candidates:
            try:
                sha = self.repo.refs[Ref(candidate)]
            except KeyError:  # absent, or a symref to an unborn branch (HEAD before a commit)
                continue
            return self._peel(sha, name)
        if _SHA.match(name) and ObjectID(raw) in self.repo.object_store:
            return self._peel(ObjectID(raw), name)
        if 4 <= len(name) < 40 and re.fullmatch(r"[0-9a-f]+", name):
            hits = list(self._all_commit_prefixes(raw))
            if len(hits) == 1:
                return hits[0]
        raise GitError(
            f"{name}: no such commit or ref in {self.root}", hint="check `git log --oneline`"
        )

    def _all_commit_prefixes(self, prefix: bytes) -> Iterator[ObjectID]:
        for sha in self.repo.object_store:
            if sha.startswith(prefix) and isinstance(self.repo.object_store[sha], Commit):
                yield sha

    def _peel(self, sha: ObjectID, name: str) -> ObjectID:
        obj = self.repo.object_store[sha]
        while isinstance(obj, Tag):
            obj = self.repo.object_store[obj.object[1]]
        if not isinstance(obj, Commit):
            raise GitError(f"{name}: not a commit", hint="give a commit, branch or tag")
        return obj.id

    def has(self, sha: str) -> bool:
        return bool(_SHA.match(sha)) and ObjectID(sha.encode()) in self.repo.object_store

    def remote_tips(self, remote: str | None = None) -> list[ObjectID]:
        """Every remote-tracking ref's commit (of one remote when named)."""
        prefix = b"refs/remotes/" + (remote.encode() + b"/" if remote else b"")
        tips = []
        for ref in self.repo.refs.allkeys():
            if ref.startswith(prefix) and not ref.endswith(b"/HEAD"):
                try:
                    tips.append(self._peel(self.repo.refs[ref], ref.decode()))
                except (GitError, KeyError):
                    continue
        return tips

    # -- commit sets -------------------------------------------------------------------------

    def _parents(self, commit: Commit) -> list[ObjectID]:
        """A commit's parents; none at a shallow clone's boundary (they are not here)."""
        if commit.id in self._shallow:
            return []
        return [p for p in commit.parents if p in self.repo.object_store]

    def commits(self, include: Iterable[ObjectID], exclude: Iterable[ObjectID]) -> list[ObjectID]:
        """Commits reachable from `include` but not from `exclude`, oldest first."""
        include = list(include)
        if not include:
            return []
        walker = Walker(
            self.repo.object_store,
            include,
            exclude=list(exclude),
            reverse=True,
            get_parents=self._parents,
        )
        return [entry.commit.id for entry in walker]

    def commit_range(self, spec: str) -> list[ObjectID]:
        """`A..B` (commits in B not in A), or a single commit `B` (that commit alone)."""
        if "..." in spec:
            raise UsageError(
                f"--commits {spec}: use A..B", hint="symmetric ranges are not supported"
            )
        if ".." in spec:
            old, new = spec.split("..", 1)
            tip = self.resolve(new or "HEAD")
            base = [self.resolve(old)] if old else []
            return self.commits([tip], base)
        return [self.resolve(spec)]

    def pushed_commits(self, lines: Iterable[str], remote: str | None = None) -> list[ObjectID]:
        """Every commit a push sends, from git's pre-push stdin lines.

        `<local ref> <local sha> <remote ref> <remote sha>`: a deletion (local sha zero) sends
        nothing; an update sends what the remote's sha lacks; a new branch (remote sha zero) or
        an unknown remote sha sends what no remote-tracking ref has (down to the root).
        """
        seen: set[ObjectID] = set()
        out: list[ObjectID] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4:
                raise UsageError(
                    f"pre-push input line {number}: expected 4 fields, got {len(parts)}",
                    hint="git passes `<local ref> <local sha> <remote ref> <remote sha>`",
                )
            _local_ref, local_sha, _remote_ref, remote_sha = parts
            if local_sha == ZERO_SHA:
                continue
            tip = self.resolve(local_sha)
            exclude = self.remote_tips(remote)
            if remote_sha != ZERO_SHA and self.has(remote_sha):
                exclude.append(ObjectID(remote_sha.encode()))
            for sha in self.commits([tip], exclude):
                if sha not in seen:
                    seen.add(sha)
                    out.append(sha)
        return out

    # -- contents ----------------------------------------------------------------------------

    def _tree_files(self, tree: ObjectID | None) -> dict[bytes, ObjectID]:
        if tree is None:
            return {}
        store = self.repo.object_store
        return {
            entry.path: entry.sha
            for entry in store.iter_tree_contents(tree)
            if entry.mode in _REGULAR and entry.path is not None and entry.sha is not None
        }

    def _head_tree(self) -> ObjectID | None:
        try:
            head = self.repo.refs[Ref(b"HEAD")]
        except KeyError:
            return None  # no commit yet
        obj = self.repo.object_store[head]
        return obj.tree if isinstance(obj, Commit) else None

    def staged(self, index_file: str | None = None) -> Iterator[GitBlob]:
        """Index entries that differ from HEAD, with the index's bytes (not the work tree's).

        `index_file` is git's GIT_INDEX_FILE: `git commit -a` and `git commit PATH` stage into
        a temporary index and point hooks at it, so the real index would miss those changes.
        """
        head = self._tree_files(self._head_tree())
        index = Index(index_file) if index_file else self.repo.open_index()
        for path, entry in index.items():
            if isinstance(entry, ConflictedIndexEntry) or entry.mode not in _REGULAR:
                continue
            if head.get(path) == entry.sha:
                continue
            yield GitBlob(path.decode("utf-8", "replace"), self._blob(entry.sha))

    def _blob(self, sha: ObjectID) -> bytes:
        obj = self.repo.object_store[sha]
        return obj.data if isinstance(obj, Blob) else b""

    def changed(self, commit_id: ObjectID) -> Iterator[GitBlob]:
        """Every file one commit adds or changes, whole: its new content as the commit has it.

        A file is judged on all of its new content, as `tether scan FILE` would, so a value
        whose key line or PEM header was already there is still recognised. A file a merge
        took unchanged from one of its parents is not changed by the merge.
        """
        store = self.repo.object_store
        commit = store[commit_id]
        assert isinstance(commit, Commit)
        parents = [store[p] for p in self._parents(commit)]
        parent_trees = [p.tree for p in parents if isinstance(p, Commit)]
        first = parent_trees[0] if parent_trees else None
        sha_text = commit_id.decode()
        for change in tree_changes(store, first, commit.tree):
            new = change.new
            if new is None or new.path is None or new.sha is None or new.mode not in _REGULAR:
                continue
            if any(self._blob_id_at(tree, new.path) == new.sha for tree in parent_trees[1:]):
                continue
            yield GitBlob(new.path.decode("utf-8", "replace"), self._blob(new.sha), sha_text)

    def _blob_id_at(self, tree: ObjectID, path: bytes) -> ObjectID | None:
        try:
            _mode, sha = tree_lookup_path(self.repo.object_store.__getitem__, tree, path)
        except KeyError:
            return None
        return sha


def hooks_dir(path: Path) -> Path:
    """Where git runs hooks from for the repo at `path`."""
    try:
        repo = Repo.discover(str(path))
    except NotGitRepository:
        raise GitError(
            f"{path}: not inside a git repository", hint="give a repo folder, or run `git init`"
        ) from None
    with repo:
        try:
            value = repo.get_config_stack().get((b"core",), b"hooksPath")
        except KeyError:
            value = None
        if value:
            configured = Path(value.decode("utf-8", "replace")).expanduser()
            # git resolves a relative hooksPath against the work tree top (the git dir if bare).
            base = Path(repo.path) if not repo.bare else Path(repo.controldir())
            return configured if configured.is_absolute() else base / configured
        return Path(repo.commondir()).resolve() / "hooks"


def work_tree(path: Path) -> Path | None:
    """The top of the git work tree holding `path`, or None (not in git, or a bare repo)."""
    try:
        repo = Repo.discover(str(path))
    except NotGitRepository:
        return None
    with repo:
        return None if repo.bare else Path(repo.path).resolve()


def git_ignored(root: Path) -> Callable[[str], bool] | None:
    """What `.gitignore` (and info/exclude) leave out of the work tree at `root`; None
    when `root` is not the top of a work tree."""
    if not (root / ".git").exists():
        return None
    with Repo(str(root)) as repo:
        manager = IgnoreFilterManager.from_repo(repo)
    return lambda relpath: not relpath.startswith("/") and bool(manager.is_ignored(relpath))
