"""gitread: the index, commit ranges and pushed commits of a work repo built with dulwich."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich import porcelain
from dulwich.repo import Repo

from scanhelp import token
from tether.errors import GitError, UsageError
from tether.git.read import ZERO_SHA, WorkRepo

ID = b"t <t@example.com>"


def commit(repo: Path, files: dict[str, str | None], message: str = "c") -> str:
    """Write (or delete, for None) files, stage them and commit; returns the commit id."""
    for name, text in files.items():
        path = repo / name
        if text is None:
            porcelain.remove(str(repo), [str(path)])
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        porcelain.add(str(repo), [str(path)])
    sha = porcelain.commit(str(repo), message.encode(), author=ID, committer=ID)
    return sha.decode()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    porcelain.init(str(tmp_path / "work")).close()
    return tmp_path / "work"


def test_staged_reads_the_index_not_the_work_tree(repo: Path) -> None:
    commit(repo, {"a.env": "A=1\n", "same.txt": "x\n"})
    (repo / "a.env").write_text(f"A=1\nT={token()}\n")
    porcelain.add(str(repo), [str(repo / "a.env")])
    (repo / "a.env").write_text("A=1\n")  # the work tree no longer holds it
    (repo / "new.txt").write_text("untracked\n")
    with WorkRepo(repo) as work:
        staged = list(work.staged())
    assert [(b.path, b.data) for b in staged] == [("a.env", f"A=1\nT={token()}\n".encode())]


def test_staged_in_a_repo_without_commits(repo: Path) -> None:
    (repo / "first.txt").write_text("hello\n")
    porcelain.add(str(repo), [str(repo / "first.txt")])
    with WorkRepo(repo) as work:
        assert [b.path for b in work.staged()] == ["first.txt"]


@pytest.mark.parametrize("spec", ["HEAD", "HEAD~1", "main"])
def test_resolving_in_a_repo_without_commits_is_a_git_error(repo: Path, spec: str) -> None:
    with WorkRepo(repo) as work, pytest.raises(GitError, match="no such commit"):
        work.resolve(spec)  # HEAD is there, but names a branch with no commit yet


def test_changed_gives_the_whole_new_content_of_each_changed_file(repo: Path) -> None:
    commit(repo, {"c.conf": "one\ntwo\nthree\n", "same.txt": "s\n"})
    sha = commit(repo, {"c.conf": "zero\none\ntwo\nnew line\nthree\n"})
    with WorkRepo(repo) as work:
        [blob] = list(work.changed(sha.encode()))
    assert blob.commit == sha and blob.path == "c.conf"
    assert blob.data == b"zero\none\ntwo\nnew line\nthree\n"


def test_changed_skips_deletions(repo: Path) -> None:
    commit(repo, {"a.txt": "alpha\nbeta\n", "gone.txt": "bye\n"})
    sha = commit(repo, {"a.txt": "beta\nalpha\n", "gone.txt": None})
    with WorkRepo(repo) as work:
        assert [b.path for b in work.changed(sha.encode())] == ["a.txt"]


def test_commit_range_and_a_secret_added_then_removed(repo: Path) -> None:
    base = commit(repo, {"x.env": "A=1\n"})
    leak = commit(repo, {"x.env": f"A=1\nT={token()}\n"})
    fix = commit(repo, {"x.env": "A=1\n"})
    with WorkRepo(repo) as work:
        commits = [c.decode() for c in work.commit_range(f"{base[:8]}..HEAD")]
        assert commits == [leak, fix]
        added = [b for c in commits for b in work.changed(c.encode())]
        assert any(token().encode() in b.data for b in added)
        assert [c.decode() for c in work.commit_range(leak)] == [leak]
        with pytest.raises(GitError, match="nope: no such commit"):
            work.commit_range("nope..HEAD")
        with pytest.raises(UsageError):
            work.commit_range("a...b")


def _line(local: str, remote_sha: str, ref: str = "refs/heads/main") -> str:
    return f"{ref} {local} {ref} {remote_sha}"


def test_pushed_commits_update_new_branch_and_deletion(repo: Path) -> None:
    first = commit(repo, {"a": "1\n"})
    second = commit(repo, {"a": "2\n"})
    third = commit(repo, {"a": "3\n"})
    with WorkRepo(repo) as work:
        # Update: the remote has `first`.
        assert [c.decode() for c in work.pushed_commits([_line(third, first)])] == [second, third]
        # New branch, nothing on any remote: everything down to the root.
        everything = [first, second, third]
        assert [c.decode() for c in work.pushed_commits([_line(third, ZERO_SHA)])] == everything
        # Deletion: nothing is sent.
        assert work.pushed_commits([_line(ZERO_SHA, first)]) == []
        with pytest.raises(UsageError, match="expected 4 fields"):
            work.pushed_commits(["garbage"])


def test_new_branch_excludes_what_remote_tracking_refs_have(repo: Path) -> None:
    first = commit(repo, {"a": "1\n"})
    second = commit(repo, {"a": "2\n"})
    with Repo(str(repo)) as raw:
        raw.refs[b"refs/remotes/origin/main"] = first.encode()
    with WorkRepo(repo) as work:
        pushed = work.pushed_commits([_line(second, ZERO_SHA, "refs/heads/topic")])
        assert [c.decode() for c in pushed] == [second]
        # A remote sha we do not have (someone else pushed): fall back to the tracking refs.
        unknown = "1" * 40
        assert [c.decode() for c in work.pushed_commits([_line(second, unknown)])] == [second]


def test_merge_reports_the_files_no_parent_had_as_they_are(repo: Path) -> None:
    base = commit(repo, {"m.txt": "a\n"})
    porcelain.branch_create(str(repo), "side")
    ours = commit(repo, {"m.txt": "a\nours\n"})
    porcelain.checkout(str(repo), "side")
    theirs = commit(repo, {"m.txt": "a\ntheirs\n"})
    porcelain.checkout(str(repo), "master")
    (repo / "m.txt").write_text("a\nours\ntheirs\nmerged\n")
    porcelain.add(str(repo), [str(repo / "m.txt")])
    with Repo(str(repo)) as raw:
        merge = raw.get_worktree().commit(
            message=b"merge",
            author=ID,
            committer=ID,
            merge_heads=[theirs.encode()],
        )
    assert base and ours
    with WorkRepo(repo) as work:
        [blob] = list(work.changed(merge))
    assert blob.data == b"a\nours\ntheirs\nmerged\n"


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        WorkRepo(tmp_path)


def test_only_the_named_remotes_tracking_refs_count_as_pushed(repo: Path) -> None:
    first = commit(repo, {"a": "1\n"})
    second = commit(repo, {"a": "2\n"})
    with Repo(str(repo)) as raw:
        raw.refs[b"refs/remotes/backup/main"] = second.encode()
        raw.refs[b"refs/remotes/origin/main"] = first.encode()
    line = _line(second, ZERO_SHA, "refs/heads/topic")
    with WorkRepo(repo) as work:
        assert [c.decode() for c in work.pushed_commits([line], "origin")] == [second]
        assert work.pushed_commits([line], "backup") == []
        assert work.pushed_commits([line]) == []  # no name: any remote's refs count


def test_ancestry_suffixes(repo: Path) -> None:
    first = commit(repo, {"a": "1\n"})
    second = commit(repo, {"a": "2\n"})
    third = commit(repo, {"a": "3\n"})
    with WorkRepo(repo) as work:
        assert work.resolve("HEAD~2").decode() == first
        assert work.resolve("HEAD^").decode() == second
        assert work.resolve("master~1^1").decode() == first
        assert work.resolve("HEAD^0").decode() == third
        assert [c.decode() for c in work.commit_range("HEAD~2..HEAD")] == [second, third]
        with pytest.raises(GitError, match="HEAD~3: no such commit"):
            work.resolve("HEAD~3")


def test_a_shallow_clone_treats_its_boundary_as_a_root(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"a": "1\n"})
    commit(repo, {"a": "2\n", "b": f"T={token()}\n"})
    shallow = tmp_path / "shallow"
    porcelain.clone(f"file://{repo}", str(shallow), depth=1).close()
    tip = commit(shallow, {"c": "new\n"})
    with WorkRepo(shallow) as work:
        pushed = work.pushed_commits([_line(tip, ZERO_SHA, "refs/heads/topic")], "nowhere")
        assert len(pushed) == 2 and pushed[-1].decode() == tip
        boundary = list(work.changed(pushed[0]))
        assert sorted(b.path for b in boundary) == ["a", "b"]  # everything, as for a root
