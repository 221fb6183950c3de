from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from testing.gitrepos import commit, config_files, init_bare, ref_of, tag
from tether.cli import main
from tether.config.configrepo import open_config_repo
from tether.config.sourcetree import SourceTree
from tether.errors import GitError, SourceError
from tether.exitcodes import ExitCode
from tether.git import mirror as gitmirror
from tether.git import objects as gitobjects
from tether.git import remote as gitremote
from tether.git.tree import RemoteTree, open_remote_tree
from tether.stamps import git_blob_id


def test_remote_tree_reads_a_commit_without_a_work_tree(upstream: Path, tmp_path: Path) -> None:
    commit(upstream, {"configs/app/run.sh": b"#!/bin/sh\n"}, modes={"configs/app/run.sh": 0o100755})
    with open_remote_tree(str(upstream), None, tmp_path / "s") as tree:
        as_protocol: SourceTree = tree
        assert as_protocol.revision == ref_of(upstream, "refs/heads/main")
        assert tree.label == f"{upstream}@{tree.commit[:12]}"
        assert tree.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"
        assert tree.is_file("tether.yaml") and not tree.is_file("configs")
        assert tree.files_under("configs") == [".bashrc", "app/run.sh"]
        assert tree.files_under("nowhere") == []
        assert tree.mode("configs/app/run.sh") == 0o100755
        assert tree.blob_id("configs/.bashrc") == git_blob_id(b"alias ll='ls -l'\n")
        assert tree.blob_id("missing") is None
        assert (tree.stale, tree.forced, tree.notices()) == (None, False, [])
        with pytest.raises(SourceError, match="no such file"):
            tree.read_bytes("configs/none")
        with pytest.raises(SourceError, match="is a folder"):
            tree.read_bytes("configs/app")
        repo = open_config_repo(tree)
        assert repo.tracked_paths == [".bashrc"]
    assert not list((tmp_path / "s").rglob("configs"))  # no work tree anywhere


def test_a_snapshot_tag_restores_the_old_state(upstream: Path, tmp_path: Path) -> None:
    old = ref_of(upstream, "refs/heads/main")
    assert old is not None
    tag(upstream, "snapshot/2026-11-22", old, "weekly")
    commit(upstream, {"configs/.bashrc": b"new state\n"})
    state = tmp_path / "s"
    with open_remote_tree(str(upstream), None, state) as now:
        assert now.read_bytes("configs/.bashrc") == b"new state\n"
    with open_remote_tree(str(upstream), "snapshot/2026-11-22", state) as then:
        assert then.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"
        assert then.revision == old and then.ref == "refs/tags/snapshot/2026-11-22"
    with open_remote_tree(str(upstream), old[:10], state) as by_id:
        assert by_id.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"


def test_offline_carries_on_from_the_last_fetch(
    upstream: Path, tmp_path: Path, git_daemon: str
) -> None:
    state = tmp_path / "s"
    url = f"{git_daemon}/config.git"
    with open_remote_tree(url, None, state) as fresh:
        revision = fresh.revision
    shutil.move(upstream, tmp_path / "moved.git")  # the remote is gone
    with open_remote_tree(url, None, state) as tree:
        assert tree.revision == revision
        assert tree.stale is not None and "last fetched" in tree.stale
        assert any("(stale)" in line for line in tree.notices())
        assert tree.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"
    with pytest.raises(GitError, match="cannot fetch") as err:
        open_remote_tree(url, None, state, require_fresh=True)
    assert "require-fresh" in (err.value.hint or "")


def test_remote_down_on_a_closed_port(upstream: Path, tmp_path: Path, closed_port: str) -> None:
    state = tmp_path / "s"
    with pytest.raises(GitError, match=r"nothing fetched yet .*connection refused"):
        open_remote_tree(closed_port, None, state)
    # Seed the mirror for this URL from the real repo, then the closed port is "offline".
    remote = gitremote.parse_remote(closed_port)
    seeded = gitmirror.fetch(gitremote.parse_remote(str(upstream)), tmp_path / "seed")
    target = gitmirror.mirror_path(state, remote)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(seeded.path, target)
    with open_remote_tree(closed_port, None, state) as tree:
        assert tree.stale is not None and tree.stale.startswith("connection refused")
        assert tree.revision == ref_of(upstream, "refs/heads/main")
    with open_remote_tree(closed_port, None, state, offline=True) as tree:
        assert tree.stale is not None and "offline" in tree.stale


def test_force_push_is_reported_on_the_tree(upstream: Path, tmp_path: Path) -> None:
    base = ref_of(upstream, "refs/heads/main")
    assert base is not None
    commit(upstream, {"configs/.bashrc": b"doomed\n"})
    state = tmp_path / "s"
    open_remote_tree(str(upstream), None, state).close()
    commit(upstream, {"configs/.bashrc": b"rewritten\n"}, parent=base)
    with open_remote_tree(str(upstream), None, state) as tree:
        assert tree.forced
        assert tree.read_bytes("configs/.bashrc") == b"rewritten\n"
        assert any("force-pushed" in line for line in tree.notices())
    with open_remote_tree(str(upstream), None, state) as again:
        assert not again.forced


def test_each_bad_source_gets_one_clear_line(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    with pytest.raises(GitError, match="no branch, tag or commit 'snapshot/none'"):
        open_remote_tree(str(upstream), "snapshot/none", state)
    bare = init_bare(tmp_path / "plain.git")
    commit(bare, {"README": b"not a config repo\n"})
    with pytest.raises(SourceError, match=r"no tether.yaml at the root of this commit"):
        open_remote_tree(str(bare), None, state)


def test_damaged_mirror_is_repaired_with_a_warning(upstream: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    with open_remote_tree(str(upstream), None, state) as tree:
        mirror = tree.mirror
    for pack in (mirror / "objects").rglob("*"):
        if pack.is_file():
            pack.write_bytes(b"garbage")
    with open_remote_tree(str(upstream), None, state) as tree:
        assert any("damaged" in line and "cloning it again" in line for line in tree.notices())
        assert tree.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"


def test_label_masks_the_password(upstream: Path, tmp_path: Path, http_server: str) -> None:
    url = http_server.replace("http://", "http://user:s3cret@") + "/config.git"
    with open_remote_tree(url, None, tmp_path / "s") as tree:
        assert "s3cret" not in tree.label and "user:***@" in tree.label
        assert tree.read_bytes("tether.yaml").startswith(b"version: 1")


def test_validate_repo_over_git_daemon_and_http(
    upstream: Path,
    tmp_path: Path,
    git_daemon: str,
    http_server: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = str(tmp_path / "s")
    for url in (f"{git_daemon}/config.git", f"{http_server}/config.git", f"file://{upstream}"):
        assert main(["validate", "--repo", url, "--state-dir", state, "--json"]) == 0
        out = capsys.readouterr().out
        assert json.loads(out) is not None
    assert (
        main(["validate", "--repo", str(upstream), "--ref", "nope", "--state-dir", state])
        == ExitCode.ERROR
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no branch, tag or commit 'nope'" in err


def test_validate_repo_reports_a_broken_manifest_at_the_commit(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(upstream, {"tether.yaml": b"version: 1\n"})
    code = main(["validate", "--repo", str(upstream), "--state-dir", str(tmp_path / "s")])
    assert code == ExitCode.ERROR
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert f"{upstream}@" in text and "tether.yaml" in text  # names the commit it came from


def test_validate_repo_when_offline_warns_stale(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "s")
    url = f"file://{upstream}"
    assert main(["validate", "--repo", url, "--state-dir", state]) == 0
    shutil.move(upstream, tmp_path / "elsewhere.git")
    assert main(["validate", "--repo", url, "--state-dir", state]) == 0
    assert "(stale)" in capsys.readouterr().err


def test_remote_tree_can_be_built_directly(tmp_path: Path) -> None:
    up = init_bare(tmp_path / "r.git")
    sha = commit(up, config_files(**{"a": b"A"}))
    path = gitmirror.fetch(gitremote.parse_remote(str(up)), tmp_path / "s").path
    tree = RemoteTree(path, sha, gitobjects.list_tree(path, sha), display="r")
    assert tree.read_bytes("configs/a") == b"A"
    tree.close()
    tree.close()  # twice is fine
    assert tree.read_bytes("configs/a") == b"A"  # reopens on demand
    tree.close()


def test_a_blob_lost_from_the_mirror_is_repaired_on_the_next_run(
    upstream: Path, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    with open_remote_tree(str(upstream), None, state) as tree:
        mirror, blob = tree.mirror, tree.blob_id("configs/.bashrc")
    assert blob is not None
    # Turn the pack into loose objects, then lose one blob: the refs still look fine.
    for pack in list((mirror / "objects" / "pack").glob("*.pack")):
        data = pack.read_bytes()
        for leftover in pack.parent.glob(pack.stem + ".*"):
            leftover.unlink()
        subprocess.run(
            ["git", "--git-dir", str(mirror), "unpack-objects", "-q"], input=data, check=True
        )
    (mirror / "objects" / blob[:2] / blob[2:]).unlink()
    assert gitmirror.mirror_problem(mirror) is None
    with open_remote_tree(str(upstream), None, state) as tree:
        with pytest.raises(GitError, match=f"object {blob[:12]} is missing") as err:
            tree.read_bytes("configs/.bashrc")
        assert "run again" in (err.value.hint or "")
    assert gitmirror.mirror_problem(mirror) is not None
    with open_remote_tree(str(upstream), None, state) as tree:
        assert any("cloning it again" in line for line in tree.notices())
        assert tree.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"
