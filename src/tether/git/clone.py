"""A --source folder that is a git clone: uncommitted changes, and how far behind its upstream.

A clone behind its remote plans to undo what capture just pushed there; one with uncommitted
edits plans them as they are. Neither is wrong, but the user should be told, in one line each.
The upstream is fetched through tether's own mirror: the clone is only read, never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.objects import Commit, ObjectID
from dulwich.repo import Repo
from dulwich.walk import Walker

from tether.errors import GitError
from tether.git import mirror as gitmirror
from tether.git import remote as gitremote
from tether.hostfs.fsutil import git_work_tree
from tether.textsafe import counted

LOOKBACK = 1000  # local commits walked to find one the upstream has
SHOWN = 3  # changed paths named in the line


@dataclass(frozen=True)
class CloneState:
    folder: Path
    dirty: tuple[str, ...] = ()  # tracked paths changed since the last commit (staged or not)
    upstream: str | None = None  # e.g. "origin/main"
    behind: int = 0  # commits of the upstream the clone's HEAD does not have
    problem: str | None = None  # why the upstream could not be compared

    def lines(self) -> list[str]:
        """What the user should know, one line each (none for a clean, current clone)."""
        out = []
        if self.dirty:
            named = ", ".join(self.dirty[:SHOWN]) + (", ..." if len(self.dirty) > SHOWN else "")
            changes = counted(len(self.dirty), "uncommitted change")
            out.append(f"--source {self.folder}: {changes} ({named}); they are planned as they are")
        if self.behind:
            out.append(
                f"--source {self.folder}: {counted(self.behind, 'commit')} behind {self.upstream}; "
                f"this plan would undo them: run `git -C {self.folder} pull` first"
            )
        if self.problem:
            out.append(
                f"--source {self.folder}: cannot compare with {self.upstream} ({self.problem})"
            )
        return out


def clone_state(folder: Path, state_dir: Path) -> CloneState | None:
    """None when `folder` is in no git work tree; the upstream is fetched into the mirror."""
    root = git_work_tree(folder)
    if root is None:
        return None
    try:
        repo = Repo(str(root))
    except NotGitRepository:
        return None
    with repo:
        dirty = _dirty(repo)
        found = _upstream(repo, root)
        if found is None:
            return CloneState(folder, dirty)
        name, url, ref = found
        try:
            head = repo.head()
        except KeyError:
            return CloneState(folder, dirty)
        try:
            fetched = gitmirror.fetch(gitremote.parse_remote(url), state_dir)
        except (gitremote.FetchFailed, GitError) as exc:
            return CloneState(folder, dirty, name, problem=exc.message)
        tip = fetched.refs.get(ref)
        if tip is None:
            return CloneState(folder, dirty, name, problem=f"{ref} is not on the remote")
        behind = _behind(repo, fetched.path, head, ObjectID(tip.encode()))
        return CloneState(folder, dirty, name, behind)


def origin_url(folder: Path) -> str | None:
    """The URL of the `origin` remote of the clone holding `folder` (None: no clone, no origin);
    a relative path is made absolute against the clone."""
    root = git_work_tree(folder)
    if root is None:
        return None
    try:
        with Repo(str(root)) as repo:
            url = repo.get_config().get((b"remote", b"origin"), b"url").decode()
    except (NotGitRepository, KeyError, UnicodeDecodeError):
        return None
    return _absolute(url, root)


def _absolute(url: str, root: Path) -> str:
    if "://" not in url and ":" not in url.split("/", 1)[0] and not url.startswith("/"):
        return str((root / url).resolve())  # a relative path is relative to the clone
    return url


def _dirty(repo: Repo) -> tuple[str, ...]:
    status = porcelain.status(repo, untracked_files="no")
    paths = {p for group in status.staged.values() for p in group}
    paths.update(status.unstaged)
    return tuple(sorted(p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in paths))


def _upstream(repo: Repo, root: Path) -> tuple[str, str, str] | None:
    """(remote/branch, the remote's URL, the upstream ref) of the checked-out branch."""
    refs = repo.refs.get_symrefs()
    head = refs.get(b"HEAD")  # type: ignore[call-overload]
    if head is None or not head.startswith(b"refs/heads/"):
        return None
    config = repo.get_config()
    section = (b"branch", head[len(b"refs/heads/") :])
    try:
        remote = config.get(section, b"remote")
        merge = config.get(section, b"merge")
        url = config.get((b"remote", remote), b"url").decode()
    except KeyError:
        return None
    branch = merge.decode().removeprefix("refs/heads/")
    return f"{remote.decode()}/{branch}", _absolute(url, root), merge.decode()


def _behind(repo: Repo, mirror: Path, head: bytes, tip: ObjectID) -> int:
    if head == tip:
        return 0
    with Repo(str(mirror)) as up:
        base = _known_base(repo, up, ObjectID(head))
        walker = Walker(up.object_store, [tip], exclude=[base] if base else None)
        return sum(1 for _ in walker)


def _known_base(repo: Repo, up: Repo, head: ObjectID) -> ObjectID | None:
    """The newest commit of the clone's history that the upstream has too."""
    for seen, entry in enumerate(Walker(repo.object_store, [head])):
        if seen >= LOOKBACK:
            break
        commit: Commit = entry.commit
        if commit.id in up.object_store:
            return commit.id
    return None
