"""A new config repo's own git work tree: `git init`, its first commit, its origin.

`tether init --from-host` commits the scaffold here, captures into it (a push into this very
repo, through the one capture path), then brings the work tree up to the captured commit.
"""

from __future__ import annotations

from pathlib import Path

from dulwich import porcelain
from dulwich.refs import Ref
from dulwich.repo import Repo

from tether.errors import GitError


def init_with_files(folder: Path, branch: str, paths: list[str], message: str) -> str:
    """`git init` `folder` on `branch` and commit `paths` (relative to it); the commit id."""
    author = b"tether <tether@localhost>"
    folder = folder.resolve()
    try:
        with Repo.init(str(folder)) as repo:
            repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(f"refs/heads/{branch}".encode()))
            porcelain.add(repo, [str(folder / p) for p in paths])
            sha = repo.get_worktree().commit(
                message=message.encode(), author=author, committer=author
            )
    except OSError as exc:
        raise GitError(f"{folder}: cannot create the git repo ({exc.strerror})") from None
    return sha.decode()


def sync_work_tree(folder: Path) -> None:
    """Make the work tree and index match HEAD (after a push into this repo moved its branch)."""
    with Repo(str(folder)) as repo:
        porcelain.reset(repo, "hard", b"HEAD")


def set_origin(folder: Path, url: str, branch: str) -> None:
    """Name `url` as the remote `origin`, `branch` tracking origin's branch of that name."""
    with Repo(str(folder)) as repo:
        config = repo.get_config()
        config.set((b"remote", b"origin"), b"url", url.encode())
        config.set((b"remote", b"origin"), b"fetch", b"+refs/heads/*:refs/remotes/origin/*")
        config.set((b"branch", branch.encode()), b"remote", b"origin")
        config.set((b"branch", branch.encode()), b"merge", f"refs/heads/{branch}".encode())
        config.write_to_path()
