from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.objects import Commit
from dulwich.repo import Repo
from hypothesis import given, settings
from hypothesis import strategies as st

from testing.gitrepos import (
    commit,
    config_files,
    decline_pushes,
    free_port,
    init_bare,
    ref_of,
    serve_repo,
    tag,
)
from tether.errors import GitError, StateError, UsageError
from tether.git import mirror as gitmirror
from tether.git import objects as gitobjects
from tether.git import publish as gitpublish
from tether.git import remote as gitremote
from tether.stamps import git_blob_id


def _sync(url: str, state: Path) -> gitmirror.FetchResult:
    return gitmirror.fetch(gitremote.parse_remote(url), state)


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# --- remotes and credentials ------------------------------------------------------------------


def test_http_credentials_are_split_off_the_url() -> None:
    remote = gitremote.parse_remote("https://alice:s3cret@git.example.com:8443/cfg.git", environ={})
    assert remote.url == "https://git.example.com:8443/cfg.git"
    assert (remote.username, remote.password) == ("alice", "s3cret")
    assert "s3cret" not in remote.display and "s3cret" not in repr(remote)
    assert remote.scrub("failed for s3cret") == "failed for ***"


def test_a_token_given_as_the_url_user_is_never_shown() -> None:
    remote = gitremote.parse_remote("https://ghp_abcdef123456@github.com/me/cfg.git", environ={})
    assert remote.url == "https://github.com/me/cfg.git"
    assert remote.username == "ghp_abcdef123456"
    assert remote.display == "https://***@github.com/me/cfg.git"
    assert "ghp_abcdef123456" not in remote.scrub("401 for ghp_abcdef123456")
    with pytest.raises(UsageError, match="port"):
        gitremote.parse_remote("https://h:notaport/x.git", environ={})


def test_token_from_the_environment_is_the_http_password() -> None:
    remote = gitremote.parse_remote(
        "https://git.example.com/cfg.git", environ={"TETHER_GIT_TOKEN": "tok"}
    )
    assert (remote.username, remote.password) == ("tether", "tok")
    assert remote.url == "https://git.example.com/cfg.git"
    named = gitremote.parse_remote(
        "https://git.example.com/cfg.git",
        environ={"TETHER_GIT_TOKEN": "tok", "TETHER_GIT_USERNAME": "oauth2"},
    )
    assert named.username == "oauth2"


def test_ssh_password_is_refused_and_plain_forms_are_kept(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ssh key"):
        gitremote.parse_remote("ssh://git:pw@host/x.git", environ={})
    assert gitremote.parse_remote("git@host:cfg.git", environ={}).url == "git@host:cfg.git"
    assert gitremote.parse_remote("ssh://git@host/x.git", environ={}).url == "ssh://git@host/x.git"
    local = gitremote.parse_remote(str(tmp_path / "a" / ".." / "r"), environ={})
    assert local.url == str(tmp_path / "r")


def test_mirror_name_is_safe_stable_and_ignores_credentials(tmp_path: Path) -> None:
    a = gitmirror.mirror_path(
        tmp_path, gitremote.parse_remote("http://u:pw@h/x/cfg.git", environ={})
    )
    b = gitmirror.mirror_path(tmp_path, gitremote.parse_remote("http://h/x/cfg.git", environ={}))
    c = gitmirror.mirror_path(tmp_path, gitremote.parse_remote("http://h/y/cfg.git", environ={}))
    assert a == b != c
    assert a.parent == tmp_path / "mirrors"
    assert a.name.startswith("cfg-") and a.name.endswith(".git")
    odd = gitmirror.mirror_path(tmp_path, gitremote.parse_remote("git@h:../../etc", environ={}))
    assert odd.parent == tmp_path / "mirrors" and "/" not in odd.name


# --- clone, fetch, resolve ------------------------------------------------------------------


def test_clone_then_fetch_from_a_local_path(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _sync(str(upstream), state)
    assert first.cloned and first.head == "refs/heads/main"
    assert first.refs["refs/heads/main"] == ref_of(upstream, "refs/heads/main")
    new = commit(upstream, {"configs/.bashrc": b"changed\n"})
    again = _sync(str(upstream), state)
    assert not again.cloned and again.refs["refs/heads/main"] == new
    assert again.forced == ()
    config = (again.path / "config").read_text()
    assert "url" not in config  # nothing about the remote is kept in the mirror's config
    assert not list(again.path.parent.glob(".config.git.*"))  # no leftover temp clone


def test_file_url_and_path_share_nothing_but_both_work(upstream: Path, tmp_path: Path) -> None:
    result = _sync(f"file://{upstream}", tmp_path / "state")
    assert result.refs["refs/heads/main"] == ref_of(upstream, "refs/heads/main")


def test_resolve_branch_tag_commit_and_default(upstream: Path, tmp_path: Path) -> None:
    old = ref_of(upstream, "refs/heads/main")
    assert old is not None
    tag(upstream, "snapshot/2026-01-01", old)
    new = commit(upstream, {"configs/.bashrc": b"v2\n"})
    commit(upstream, {"configs/.bashrc": b"dev\n"}, branch="dev")
    path = _sync(str(upstream), tmp_path / "s").path
    assert gitobjects.resolve(path, None) == gitobjects.Resolved(new, "refs/heads/main")
    assert gitobjects.resolve(path, "main").commit == new
    assert gitobjects.resolve(path, "refs/heads/main").commit == new
    assert gitobjects.resolve(path, "snapshot/2026-01-01") == gitobjects.Resolved(
        old, "refs/tags/snapshot/2026-01-01"
    )
    assert gitobjects.resolve(path, old) == gitobjects.Resolved(old, None)
    assert gitobjects.resolve(path, old[:7]).commit == old
    assert gitobjects.resolve(path, "dev").commit != new
    with pytest.raises(GitError, match="no branch, tag or commit 'nope'") as err:
        gitobjects.resolve(path, "nope", display="URL")
    assert "dev, main" in (err.value.hint or "") and "snapshot/2026-01-01" in (err.value.hint or "")
    with pytest.raises(GitError, match="no branch, tag or commit"):
        gitobjects.resolve(path, "deadbeef")


def test_default_branch_follows_the_remote_head_symref(tmp_path: Path) -> None:
    up = init_bare(tmp_path / "up.git", branch="trunk")
    sha = commit(up, config_files(), branch="trunk")
    commit(up, {"x": b"x"}, branch="main")
    result = _sync(str(up), tmp_path / "s")
    assert result.head == "refs/heads/trunk"
    assert gitobjects.resolve(result.path, None).commit == sha


def test_empty_remote_has_no_default_branch(tmp_path: Path) -> None:
    up = init_bare(tmp_path / "empty.git")
    result = _sync(str(up), tmp_path / "s")
    with pytest.raises(GitError, match="has no branch"):
        gitobjects.resolve(result.path, None)


def test_force_push_is_detected_and_followed(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    base = ref_of(upstream, "refs/heads/main")
    assert base is not None
    commit(upstream, {"configs/.bashrc": b"will be rewritten\n"})
    _sync(str(upstream), state)
    rewritten = commit(upstream, {"configs/.bashrc": b"rewritten\n"}, parent=base)
    result = _sync(str(upstream), state)
    assert result.forced == ("refs/heads/main",)
    assert result.refs["refs/heads/main"] == rewritten
    commit(upstream, {"configs/.bashrc": b"fast-forward\n"})
    assert _sync(str(upstream), state).forced == ()


def test_branch_deleted_upstream_leaves_the_mirror(upstream: Path, tmp_path: Path) -> None:
    commit(upstream, {"x": b"x"}, branch="topic")
    state = tmp_path / "s"
    assert "refs/heads/topic" in _sync(str(upstream), state).refs
    subprocess.run(["git", "--git-dir", str(upstream), "branch", "-D", "topic"], check=True)
    assert "refs/heads/topic" not in _sync(str(upstream), state).refs


def test_damaged_mirror_is_cloned_again_with_a_warning(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    path = _sync(str(upstream), state).path
    shutil.rmtree(path / "objects")
    (path / "objects").mkdir()
    assert gitmirror.mirror_problem(path) is not None
    result = _sync(str(upstream), state)
    assert result.cloned
    assert any("damaged" in w for w in result.warnings)
    assert gitmirror.mirror_problem(path) is None
    assert gitobjects.resolve(path, None).commit == ref_of(upstream, "refs/heads/main")


def test_a_mirror_replaced_by_a_file_is_moved_aside_and_cloned_again(
    upstream: Path, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    path = _sync(str(upstream), state).path
    shutil.rmtree(path)
    path.write_text("not a mirror\n")  # was NotADirectoryError from rmtree: exit 70
    result = _sync(str(upstream), state)
    assert result.cloned and any("damaged" in w for w in result.warnings)
    assert gitobjects.resolve(path, None).commit == ref_of(upstream, "refs/heads/main")
    assert path.with_name(path.name + ".damaged").read_text() == "not a mirror\n"


def test_a_local_io_error_in_the_mirror_is_not_called_a_network_problem(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    path = _sync(str(upstream), state).path
    real_fetch_into = gitmirror._fetch_into

    def broken_once(repo: object, remote: object) -> object:
        monkeypatch.setattr(gitmirror, "_fetch_into", real_fetch_into)
        raise FileNotFoundError(2, "No such file or directory", f"{path}/objects/pack/x.bitmap")

    monkeypatch.setattr(gitmirror, "_fetch_into", broken_once)
    result = _sync(str(upstream), state)  # was FetchFailed: "check the URL, the network"
    assert result.cloned
    assert any("local mirror problem" in w for w in result.warnings), result.warnings


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_fetch_from_a_local_remote_with_a_bitmap_on_one_pack_only(tmp_path: Path) -> None:
    """What `git gc --auto` leaves after pushes: one bitmapped pack, others without a bitmap.
    dulwich's bitmap reachability then fails on every incremental fetch (FileNotFoundError)."""
    remote, work, state = tmp_path / "remote.git", tmp_path / "work", tmp_path / "s"
    _git(tmp_path, "init", "-q", "--bare", str(remote))
    _git(remote, "symbolic-ref", "HEAD", "refs/heads/main")
    _git(tmp_path, "init", "-q", str(work))

    def push(name: str) -> None:
        (work / name).write_text(name)
        _git(work, "add", ".")
        _git(work, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", name)
        _git(work, "push", "-q", str(remote), "HEAD:main")

    for name in ("a", "b", "c"):
        push(name)
    _git(remote, "repack", "-q", "-a", "-d", "--write-bitmap-index")
    push("d")
    _git(remote, "-c", "pack.writeBitmaps=false", "repack", "-q", "-d")  # a pack without
    packs = sorted(p.suffix for p in (remote / "objects" / "pack").iterdir())
    assert packs.count(".pack") == 2 and packs.count(".bitmap") == 1
    assert _sync(str(remote), state).cloned
    push("e")  # a new commit, loose: the incremental fetch must look past the bitmapped pack
    result = _sync(str(remote), state)
    assert not result.cloned and result.warnings == ()
    assert result.refs["refs/heads/main"] == ref_of(remote, "refs/heads/main")


def test_damaged_mirror_and_remote_down_is_one_clear_error(
    upstream: Path, tmp_path: Path, closed_port: str
) -> None:
    state = tmp_path / "s"
    remote = gitremote.parse_remote(closed_port)
    path = gitmirror.mirror_path(state, remote)
    path.mkdir(parents=True)
    (path / "HEAD").write_text("garbage")
    with pytest.raises(GitError, match="damaged and cannot clone") as err:
        gitmirror.fetch(remote, state)
    assert "delete the mirror" in (err.value.hint or "")


def test_unreachable_remote_is_a_fetch_failure(tmp_path: Path, closed_port: str) -> None:
    with pytest.raises(gitremote.FetchFailed, match="connection refused") as err:
        _sync(closed_port, tmp_path / "s")
    assert err.value.reason == "connection refused"
    assert not any((tmp_path / "s" / "mirrors").glob("*.git"))  # no half mirror left behind


def test_missing_local_repo_is_a_fetch_failure(tmp_path: Path) -> None:
    with pytest.raises(gitremote.FetchFailed, match="not a git repository"):
        _sync(str(tmp_path / "nowhere"), tmp_path / "s")


def test_a_state_dir_that_cannot_be_made_is_one_clear_error(upstream: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match="cannot create"):
        _sync(str(upstream), tmp_path / "file" / "state")


@pytest.mark.parametrize("url", ["https://[::1/x", "http://[zz]/x"])
def test_a_malformed_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="not a valid URL"):
        gitremote.parse_remote(url)


# --- trees and blobs --------------------------------------------------------------------------


def test_list_tree_keeps_modes_and_skips_submodules(upstream: Path, tmp_path: Path) -> None:
    sha = commit(
        upstream,
        {"run.sh": b"#!/bin/sh\n", "link": b"run.sh", "sub": b""},
        modes={"run.sh": 0o100755, "link": 0o120000},
    )
    path = _sync(str(upstream), tmp_path / "s").path
    tree = gitobjects.list_tree(path, sha)
    assert tree["run.sh"][0] == 0o100755 and tree["link"][0] == 0o120000
    with gitobjects.ObjectReader(path) as reader:
        assert reader.read_blob(tree["link"][1]) == b"run.sh"
        manifest = reader.read_blob(tree["tether.yaml"][1])
    assert tree["tether.yaml"][1] == git_blob_id(manifest)


def test_reading_a_missing_object_is_a_clear_error(upstream: Path, tmp_path: Path) -> None:
    path = _sync(str(upstream), tmp_path / "s").path
    with pytest.raises(GitError, match="object 000000000000 is missing"):
        gitobjects.read_blob(path, "0" * 40)
    assert gitmirror.mirror_problem(path) == "object 000000000000 is missing"


# --- tags -------------------------------------------------------------------------------------


def test_tags_are_created_never_moved_and_listed_newest_first(
    upstream: Path, tmp_path: Path
) -> None:
    path = _sync(str(upstream), tmp_path / "s").path
    first = gitobjects.resolve(path, None).commit
    gitobjects.create_tag(path, "snapshot/a", first, "first", tagger="Bot <b@x>", when=1000)
    commit(upstream, {"configs/.bashrc": b"v2\n"})
    _sync(str(upstream), tmp_path / "s")
    second = gitobjects.resolve(path, None).commit
    info = gitobjects.create_tag(
        path, "snapshot/b", second, "second", tagger="Bot <b@x>", when=2000
    )
    assert info.commit == second and info.annotated
    with pytest.raises(GitError, match=r"already exists .* never moved"):
        gitobjects.create_tag(path, "snapshot/a", second, "again")
    assert gitobjects.resolve(path, "snapshot/a").commit == first
    listed = gitobjects.list_tags(path)
    assert [t.name for t in listed] == ["snapshot/b", "snapshot/a"]
    assert listed[1].message == "first" and listed[1].date == "1970-01-01T00:16:40Z"
    assert gitobjects.list_tags(path, "other/") == []
    with pytest.raises(UsageError, match="not a valid git ref name"):
        gitobjects.create_tag(path, "bad..name", first, "x")
    with pytest.raises(UsageError, match="Name <email>"):
        gitobjects.create_tag(path, "ok", first, "x", tagger="nobody")


def test_tags_survive_a_fetch_and_follow_the_remote(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    path = _sync(str(upstream), state).path
    head = gitobjects.resolve(path, None).commit
    gitobjects.create_tag(path, "local-only", head, "kept")
    subprocess.run(["git", "--git-dir", str(upstream), "tag", "light", head], check=True)
    _sync(str(upstream), state)
    names = {t.name: t for t in gitobjects.list_tags(path)}
    assert "local-only" in names
    assert not names["light"].annotated and names["light"].commit == head


# --- commits and pushes -----------------------------------------------------------------------


def test_build_commit_applies_changes_without_a_work_tree(upstream: Path, tmp_path: Path) -> None:
    commit(upstream, {"run.sh": b"#!/bin/sh\n"}, modes={"run.sh": 0o100755})
    path = _sync(str(upstream), tmp_path / "s").path
    parent = gitobjects.resolve(path, None).commit
    new = gitpublish.build_commit(
        path,
        parent,
        {"configs/.bashrc": b"captured\n", "run.sh": b"#!/bin/sh\necho\n", "gone": None},
        "capture: host edits",
        author="Bot <bot@example.com>",
        when=5000,
    )
    assert new is not None
    tree = gitobjects.list_tree(path, new)
    assert gitobjects.read_blob(path, tree["configs/.bashrc"][1]) == b"captured\n"
    assert tree["run.sh"][0] == 0o100755  # the exec bit survives
    assert (
        gitpublish.build_commit(
            path, new, {"configs/.bashrc": b"captured\n"}, "noop", author="Bot <b@x>"
        )
        is None
    )
    deleted = gitpublish.build_commit(path, new, {"run.sh": None}, "rm", author="Bot <b@x>")
    assert deleted is not None and "run.sh" not in gitobjects.list_tree(path, deleted)
    with pytest.raises(GitError, match=r"'\.\.' segment"):
        gitpublish.build_commit(path, new, {"../x": b""}, "bad", author="Bot <b@x>")
    out = subprocess.run(
        ["git", "--git-dir", str(path), "cat-file", "-p", new],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "author Bot <bot@example.com> 5000 +0000" in out


def test_push_branch_ok_then_lost_race(upstream: Path, tmp_path: Path) -> None:
    remote = gitremote.parse_remote(str(upstream))
    path = gitmirror.fetch(remote, tmp_path / "s").path
    parent = gitobjects.resolve(path, None).commit
    new = gitpublish.build_commit(path, parent, {"a": b"1"}, "capture", author="Bot <b@x>")
    assert new is not None
    result = gitpublish.push_branch(remote, path, "main", new, parent=parent)
    assert result.ok and ref_of(upstream, "refs/heads/main") == new
    assert gitobjects.resolve(path, "main").commit == new  # the mirror follows
    racer = commit(upstream, {"b": b"racer"})
    stale = gitpublish.build_commit(path, new, {"a": b"2"}, "capture", author="Bot <b@x>")
    assert stale is not None
    lost = gitpublish.push_branch(remote, path, "main", stale, parent=new)
    assert lost.status == "lost-race" and not lost.ok
    assert ref_of(upstream, "refs/heads/main") == racer  # nothing overwritten


# --- real servers -----------------------------------------------------------------------------


def test_git_daemon_clone_fetch_and_push(upstream: Path, tmp_path: Path, git_daemon: str) -> None:
    url = f"{git_daemon}/config.git"
    state = tmp_path / "s"
    remote = gitremote.parse_remote(url)
    result = gitmirror.fetch(remote, state)
    assert result.head == "refs/heads/main"
    new = commit(upstream, {"configs/.bashrc": b"over git://\n"})
    assert gitmirror.fetch(remote, state).refs["refs/heads/main"] == new
    gitobjects.create_tag(result.path, "snapshot/d", new, "daemon")
    assert gitpublish.push_tag(remote, result.path, "snapshot/d").ok
    assert ref_of(upstream, "refs/tags/snapshot/d") is not None
    with pytest.raises(GitError, match="already exists on the remote"):
        gitpublish.push_tag(remote, result.path, "snapshot/d")


def test_git_daemon_push_declined_by_a_hook_fails_loudly(
    upstream: Path, tmp_path: Path, git_daemon: str
) -> None:
    remote = gitremote.parse_remote(f"{git_daemon}/config.git")
    path = gitmirror.fetch(remote, tmp_path / "s").path
    parent = gitobjects.resolve(path, None).commit
    decline_pushes(upstream)
    gitobjects.create_tag(path, "snapshot/x", parent, "x")
    with pytest.raises(GitError, match=r"rejected: .*hook declined"):
        gitpublish.push_tag(remote, path, "snapshot/x")
    new = gitpublish.build_commit(path, parent, {"a": b"1"}, "capture", author="Bot <b@x>")
    assert new is not None
    result = gitpublish.push_branch(remote, path, "main", new, parent=parent)
    assert result.status == "rejected" and "hook declined" in (result.reason or "")
    assert ref_of(upstream, "refs/heads/main") == parent
    assert gitobjects.resolve(path, "main").commit == parent  # the mirror did not move


def test_git_daemon_lost_race_is_reported(upstream: Path, tmp_path: Path, git_daemon: str) -> None:
    remote = gitremote.parse_remote(f"{git_daemon}/config.git")
    path = gitmirror.fetch(remote, tmp_path / "s").path
    parent = gitobjects.resolve(path, None).commit
    racer = commit(upstream, {"r": b"racer"})
    new = gitpublish.build_commit(path, parent, {"a": b"1"}, "capture", author="Bot <b@x>")
    assert new is not None
    assert gitpublish.push_branch(remote, path, "main", new, parent=parent).status == "lost-race"
    assert ref_of(upstream, "refs/heads/main") == racer


def test_http_clone_never_stores_or_prints_the_password(
    upstream: Path, tmp_path: Path, http_server: str
) -> None:
    url = http_server.replace("http://", "http://user:s3cret@") + "/config.git"
    state = tmp_path / "s"
    result = _sync(url, state)
    assert result.refs["refs/heads/main"] == ref_of(upstream, "refs/heads/main")
    new = commit(upstream, {"configs/.bashrc": b"over http\n"})
    assert _sync(url, state).refs["refs/heads/main"] == new
    assert b"s3cret" not in _all_bytes(state)
    assert "s3cret" not in (result.path / "config").read_text()


def test_http_unreachable_error_masks_the_password(tmp_path: Path) -> None:
    url = f"http://user:s3cret@127.0.0.1:{free_port()}/config.git"
    with pytest.raises(gitremote.FetchFailed) as err:
        _sync(url, tmp_path / "s")
    assert "s3cret" not in str(err.value) and "user:***@" in str(err.value)
    assert "connection refused" in err.value.reason


def test_ssh_goes_through_git_ssh_command(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in ssh runs the remote command locally, as sshd would; it logs its arguments."""
    fake = tmp_path / "fake-ssh"
    log = tmp_path / "ssh-argv.log"
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\nfor a; do last="$a"; done\nexec sh -c "$last"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake))
    result = _sync(f"ssh://git@example.invalid{upstream}", tmp_path / "s")
    assert result.refs["refs/heads/main"] == ref_of(upstream, "refs/heads/main")
    assert "git@example.invalid" in log.read_text() and "git-upload-pack" in log.read_text()


@pytest.fixture
def auth_server(upstream: Path) -> Iterator[str]:
    with serve_repo(upstream, auth=("tether", "tok-9f8e7d6c5b")) as url:
        yield url


def test_token_from_the_environment_authenticates_and_is_never_stored(
    upstream: Path, tmp_path: Path, auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    monkeypatch.delenv("TETHER_GIT_TOKEN", raising=False)
    with pytest.raises(gitremote.FetchFailed, match="authentication failed"):
        _sync(auth_server, state)
    monkeypatch.setenv("TETHER_GIT_TOKEN", "wrong")
    with pytest.raises(gitremote.FetchFailed, match="authentication failed") as err:
        _sync(auth_server, state)
    assert "wrong" not in str(err.value)
    monkeypatch.setenv("TETHER_GIT_TOKEN", "tok-9f8e7d6c5b")
    result = _sync(auth_server, state)
    assert result.refs["refs/heads/main"] == ref_of(upstream, "refs/heads/main")
    assert b"tok-9f8e7d6c5b" not in _all_bytes(state)


def test_small_fetch_packs_are_repacked(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    path = _sync(str(upstream), state).path
    with (path / "config").open("a") as config:
        config.write("[gc]\n\tautoPackLimit = 3\n")
    for n in range(4):
        commit(upstream, {"configs/.bashrc": f"round {n}\n".encode()})
        result = _sync(str(upstream), state)
        assert result.warnings == ()
        assert len(list((path / "objects" / "pack").glob("*.pack"))) < 3
    head = gitobjects.resolve(path, None).commit
    tree = gitobjects.list_tree(path, head)
    assert gitobjects.read_blob(path, tree["configs/.bashrc"][1]) == b"round 3\n"
    assert gitmirror.mirror_problem(path) is None


def _walk(repo_path: Path, sha: str) -> dict[str, tuple[int, str]]:
    """The listing by a full walk (dulwich), to check the cached listing against."""
    with Repo(str(repo_path)) as repo:
        obj = repo[sha.encode()]
        assert isinstance(obj, Commit)
        return {
            e.path.decode(): (e.mode, e.sha.decode())
            for e in repo.object_store.iter_tree_contents(obj.tree)
            if e.path is not None and e.sha is not None
        }


def test_list_tree_from_the_cached_listing_matches_a_full_walk(tmp_path: Path) -> None:
    repo = init_bare(tmp_path / "r.git")
    first = commit(repo, {"a/b/c.txt": b"1", "a/d.txt": b"2", "e": b"3", "f/g": b"4"})
    assert gitobjects.list_tree(repo, first) == _walk(repo, first)
    assert (repo / gitobjects.TREE_CACHE).is_file()
    # A file becomes a folder, a folder becomes a file, files come and go.
    commit(repo, {"a/b/c.txt": None, "e": None})
    second = commit(repo, {"a/b": b"now a file", "e/x": b"5", "f/g": b"44", "h": b"6"})
    assert gitobjects.list_tree(repo, second) == _walk(repo, second)
    assert gitobjects.list_tree(repo, first) == _walk(repo, first)  # and back again
    (repo / gitobjects.TREE_CACHE).write_text("{broken")
    assert gitobjects.list_tree(repo, second) == _walk(repo, second)


def test_pushed_commit_sends_only_what_differs(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git")
    base = commit(remote, {f"d{i}/f{j}": f"{i}.{j}".encode() for i in range(5) for j in range(5)})
    state = tmp_path / "state"
    where = gitremote.parse_remote(str(remote))
    mirror = gitmirror.fetch(where, state).path
    new = gitpublish.build_commit(
        mirror, base, {"d1/f1": b"changed", "n/new": b"x"}, "m", author="A <a@b>"
    )
    assert new is not None
    assert gitpublish.push_branch(where, mirror, "main", new, parent=base).ok
    done = subprocess.run(
        ["git", "--git-dir", str(remote), "fsck", "--strict", "--no-dangling"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert gitobjects.list_tree(remote, new)["n/new"][0] == gitpublish.REGULAR


def test_a_git_lock_file_left_by_a_killed_run_is_cleared(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    path = _sync(str(upstream), state).path
    (path / "refs" / "heads" / "main.lock").write_text("left by kill -9\n")  # FileLocked after
    (path / "packed-refs.lock").write_text("")
    commit(upstream, {"configs/.bashrc": b"v3\n"})
    result = _sync(str(upstream), state)
    assert result.refs["refs/heads/main"] == ref_of(upstream, "refs/heads/main")
    assert not (path / "refs" / "heads" / "main.lock").exists()
    gitpublish.set_ref(path, "refs/tether/pending/x", result.refs["refs/heads/main"])


def test_a_locked_ref_in_a_local_remote_is_one_line_not_a_crash(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git")
    first = commit(remote, {"configs/a": b"1\n"})
    path = _sync(str(remote), tmp_path / "s").path
    (remote / "refs" / "heads" / "main.lock").write_text("a push killed mid-update\n")
    tip = gitobjects.resolve(path, None).commit
    sha = gitpublish.build_commit(path, tip, {"configs/a": b"2\n"}, "m", author="T <t@x>")
    with pytest.raises(GitError, match=r"the ref is locked \(.*main\.lock\)"):
        gitpublish.push_branch(gitremote.parse_remote(str(remote)), path, "main", sha, parent=first)


# Pushes `sha` over `parent` into a local remote and SIGKILLs itself inside the remote's ref
# update: after the ref lock is created (empty) or after its new value is written into it.
KILLED_PUSH = """
import os, signal, sys
from pathlib import Path
import dulwich.file
from tether.git import publish, remote
mirror, url, sha, parent, when = sys.argv[1:]
real_init, real_write = dulwich.file._GitFile.__init__, dulwich.file._GitFile.write
def init(self, filename, *args, **kwargs):
    real_init(self, filename, *args, **kwargs)
    if when == "empty" and os.fsdecode(filename).endswith("refs/heads/main"):
        os.kill(os.getpid(), signal.SIGKILL)
def write(self, data):
    written = real_write(self, data)
    self.flush()
    if os.fsdecode(self._filename).endswith("refs/heads/main"):
        os.kill(os.getpid(), signal.SIGKILL)
    return written
dulwich.file._GitFile.__init__, dulwich.file._GitFile.write = init, write
publish.push_branch(remote.parse_remote(url), Path(mirror), "main", sha, parent=parent)
"""


def _killed_push(tmp_path: Path, when: str) -> tuple[Path, Path, str, str]:
    remote = init_bare(tmp_path / "remote.git")
    first = commit(remote, {"configs/a": b"1\n"})
    path = _sync(str(remote), tmp_path / "s").path
    tip = gitobjects.resolve(path, None).commit
    sha = gitpublish.build_commit(path, tip, {"configs/a": b"2\n"}, "m", author="T <t@x>")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_PUSH, str(path), str(remote), sha, first, when],
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert (remote / "refs" / "heads" / "main.lock").exists()
    assert ref_of(remote, "refs/heads/main") == first
    return remote, path, sha, first


@pytest.mark.parametrize("when", ["empty", "written"])
def test_a_push_killed_inside_a_local_remote_does_not_block_the_next(
    tmp_path: Path, when: str
) -> None:
    remote, path, sha, first = _killed_push(tmp_path, when)
    result = gitpublish.push_branch(
        gitremote.parse_remote(str(remote)), path, "main", sha, parent=first
    )
    assert result.ok
    assert ref_of(remote, "refs/heads/main") == sha
    assert not list((remote / "refs").rglob("*.lock"))
    assert (remote / gitremote.PUSH_LOCK).read_bytes() == b""  # nothing in flight


def test_a_ref_lock_another_writer_holds_is_never_removed(tmp_path: Path) -> None:
    remote, path, sha, first = _killed_push(tmp_path, "written")
    lock = remote / "refs" / "heads" / "main.lock"
    lock.write_text("f" * 40 + "\n")  # not what the killed push was setting: someone else's
    with pytest.raises(GitError, match=r"the ref is locked"):
        gitpublish.push_branch(gitremote.parse_remote(str(remote)), path, "main", sha, parent=first)
    assert lock.read_text() == "f" * 40 + "\n"


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="ab/.", min_size=1, max_size=6),
        st.tuples(
            st.sampled_from([gitobjects.REGULAR_MODE, gitpublish.EXECUTABLE, 0o120000]),
            st.binary(min_size=20, max_size=20).map(bytes.hex),
        ),
    )
)
def test_a_listing_answers_as_the_dict_it_packs(entries: dict[str, tuple[int, str]]) -> None:
    listing = gitobjects.Listing.of(entries)
    assert listing == entries and dict(listing.items()) == entries
    assert all(path in listing for path in entries) and "zz" not in listing
    again = gitobjects.Listing.from_json(json.loads(json.dumps(listing.to_json())))
    assert again == entries


@pytest.mark.parametrize(
    "data",
    [
        {"paths": ["b", "a"], "ids": "00" * 40, "modes": {}},  # not sorted
        {"paths": ["a", "a"], "ids": "00" * 40, "modes": {}},  # not unique
        {"paths": ["a"], "ids": "00" * 19, "modes": {}},  # ids short of the paths
        {"paths": ["a"], "ids": "00" * 20, "modes": {"a": "644"}},
        {"paths": "a", "ids": "", "modes": {}},
    ],
)
def test_a_damaged_listing_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        gitobjects.Listing.from_json(data)


def _pack_resident_kib(pack: Path) -> int:
    """Resident KiB of this process's mappings of `pack` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef":  # a mapping's header line
            inside = line.endswith(str(pack))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_reading_many_blobs_lets_the_packs_pages_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dulwich maps the pack whole: without letting pages go, reading every blob keeps the whole
    pack resident; the reader lets them go as it reads, and all at once when asked."""
    repo = init_bare(tmp_path / "r.git")
    files = {f"f{i:03d}": os.urandom(16 * 1024) for i in range(256)}  # 4 MiB, incompressible
    head = commit(repo, files)
    subprocess.run(["git", "-C", str(repo), "gc", "-q"], check=True)
    (pack,) = (repo / "objects" / "pack").glob("*.pack")
    listing = gitobjects.list_tree(repo, head)

    monkeypatch.setattr(gitobjects, "RELEASE_EVERY", 1 << 40)  # never on its own
    with gitobjects.ObjectReader(repo) as reader:
        assert all(reader.read_blob(listing[n][1]) == files[n] for n in files)
        assert _pack_resident_kib(pack) >= 3 * 1024
        reader.release()
        assert _pack_resident_kib(pack) <= 64
        assert reader.read_blob(listing["f007"][1]) == files["f007"]  # and reads go on

    monkeypatch.setattr(gitobjects, "RELEASE_EVERY", 256 * 1024)
    with gitobjects.ObjectReader(repo) as reader:
        assert all(reader.read_blob(listing[n][1]) == files[n] for n in files)
        assert _pack_resident_kib(pack) <= 1024


def test_a_loose_object_lock_left_by_a_killed_capture_does_not_block_the_next(
    tmp_path: Path,
) -> None:
    """dulwich writes a loose object through `<id>.lock` and refuses while one exists: a capture
    killed mid-write left one (found by the kill trials), and every later capture of that same
    content failed. Under the mirror's lock it is a leftover, and is removed."""
    repo = init_bare(tmp_path / "r.git")
    head = commit(repo, {"a": b"1"})
    data = b"captured content\n"
    blob = git_blob_id(data)
    folder = repo / "objects" / blob[:2]
    folder.mkdir(exist_ok=True)
    (folder / f"{blob[2:]}.lock").write_bytes(data[:5])  # the killed writer's half
    made = gitpublish.build_commit(repo, head, {"b": data}, "capture", author="t <t@example.com>")
    assert made is not None
    assert not (folder / f"{blob[2:]}.lock").exists()
    assert gitobjects.read_blob(repo, blob) == data
