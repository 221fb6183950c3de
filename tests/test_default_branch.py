"""Which branch a --repo without --ref means: capture.branch, else the remote's HEAD, else its
only branch (a plain `git init --bare` points HEAD at master; the first push made main)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testing.gitrepos import MANIFEST, commit, config_files
from tether.cli import main
from tether.exitcodes import ExitCode


@pytest.fixture
def plain_bare(tmp_path: Path) -> Path:
    """`git init --bare` as a user runs it: HEAD names master, which nobody pushes."""
    path = tmp_path / "remote.git"
    subprocess.run(
        ["git", "-c", "init.defaultBranch=master", "init", "-q", "--bare", str(path)], check=True
    )
    commit(path, config_files(**{".bashrc": b"main\n"}), branch="main")
    return path


def run(tmp_path: Path, *argv: str) -> int:
    return main([*argv, "--state-dir", str(tmp_path / "state")])


def reconcile(tmp_path: Path, url: Path) -> int:
    root = tmp_path / "host"
    root.mkdir(exist_ok=True)
    return run(
        tmp_path, "reconcile", "--repo", str(url), "--target-root", str(root), "--apply",
        "--secrets-file", str(tmp_path / "none.env"),
    )  # fmt: skip


def test_head_naming_a_missing_branch_uses_the_only_branch(
    plain_bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reconcile(tmp_path, plain_bare) == ExitCode.OK
    assert (tmp_path / "host/home/u/.bashrc").read_bytes() == b"main\n"
    assert run(tmp_path, "validate", "--repo", str(plain_bare)) == ExitCode.OK
    assert run(tmp_path, "snapshots", "--repo", str(plain_bare)) == ExitCode.OK
    assert "no default branch" not in capsys.readouterr().err


def test_capture_branch_wins_over_head(plain_bare: Path, tmp_path: Path) -> None:
    manifest = MANIFEST + b"capture:\n  branch: live\n"
    base = commit(plain_bare, {"tether.yaml": manifest}, branch="main")
    commit(plain_bare, {"configs/.bashrc": b"live\n"}, branch="live", parent=base)
    assert reconcile(tmp_path, plain_bare) == ExitCode.OK
    assert (tmp_path / "host/home/u/.bashrc").read_bytes() == b"live\n"


def test_several_branches_take_the_one_capture_pushes_to(plain_bare: Path, tmp_path: Path) -> None:
    """capture.branch defaults to main: of main and other, main's manifest names main."""
    base = commit(plain_bare, {"configs/.bashrc": b"main 2\n"}, branch="main")
    commit(plain_bare, {"configs/.bashrc": b"other\n"}, branch="other", parent=base)
    assert reconcile(tmp_path, plain_bare) == ExitCode.OK
    assert (tmp_path / "host/home/u/.bashrc").read_bytes() == b"main 2\n"


def test_several_branches_and_no_head_say_which(
    plain_bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = MANIFEST + b"capture:\n  branch: prod\n"  # no branch is prod
    base = commit(plain_bare, {"tether.yaml": manifest}, branch="main")
    commit(plain_bare, {"configs/.bashrc": b"other\n"}, branch="other", parent=base)
    assert reconcile(tmp_path, plain_bare) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "HEAD names master, which does not exist" in err and "main, other" in err


def test_capture_branch_wins_over_a_valid_head(plain_bare: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(plain_bare), "symbolic-ref", "HEAD", "refs/heads/main"], check=True
    )
    manifest = MANIFEST + b"capture:\n  branch: live\n"
    base = commit(plain_bare, {"tether.yaml": manifest}, branch="main")
    commit(plain_bare, {"configs/.bashrc": b"live\n"}, branch="live", parent=base)
    assert reconcile(tmp_path, plain_bare) == ExitCode.OK
    assert (tmp_path / "host/home/u/.bashrc").read_bytes() == b"live\n"
