"""--source of a git clone: a clone behind its upstream or with uncommitted edits says so."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from testing.gitrepos import commit, config_files, init_bare
from tether.cli import main
from tether.exitcodes import ExitCode


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    remote = init_bare(tmp_path / "remote.git")
    commit(remote, config_files(**{".bashrc": b"one\n"}))
    subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / "clone")], check=True)
    return tmp_path / "clone"


def plan(tmp_path: Path, folder: Path) -> dict[str, object]:
    (tmp_path / "host").mkdir(exist_ok=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([
            "reconcile", "--source", str(folder), "--target-root", str(tmp_path / "host"),
            "--state-dir", str(tmp_path / "state"), "--json",
            "--secrets-file", str(tmp_path / "none.env"),
        ])  # fmt: skip
    assert code == ExitCode.OK
    doc: dict[str, object] = json.loads(out.getvalue())
    return doc


def test_a_current_clean_clone_says_nothing(clone: Path, tmp_path: Path) -> None:
    assert plan(tmp_path, clone)["warnings"] == []


def test_a_clone_behind_its_upstream_says_how_far(clone: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    commit(remote, {"configs/.bashrc": b"two\n"})  # a capture pushed from elsewhere
    commit(remote, {"configs/.bashrc": b"three\n"})
    (warning,) = plan(tmp_path, clone)["warnings"]  # type: ignore[misc]
    assert "2 commits behind origin/main" in warning and "git -C" in warning


def test_uncommitted_edits_are_named(clone: Path, tmp_path: Path) -> None:
    (clone / "configs/.bashrc").write_text("edited\n")
    (warning,) = plan(tmp_path, clone)["warnings"]  # type: ignore[misc]
    assert "1 uncommitted change (configs/.bashrc)" in warning


def test_doctor_warns_about_a_clone_behind(
    clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(tmp_path / "remote.git", {"configs/.bashrc": b"two\n"})
    main([
        "doctor", "--source", str(clone), "--state-dir", str(tmp_path / "state"),
        "--target-root", str(tmp_path), "--json",
    ])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    found = [c for c in report["checks"] if c["check"] == "clone"]
    assert found and found[0]["level"] == "warning" and "1 commit behind" in found[0]["message"]


def test_doctor_probes_the_clones_origin_without_capture_remote(
    clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([
        "doctor", "--source", str(clone), "--state-dir", str(tmp_path / "state"),
        "--target-root", str(tmp_path), "--json",
    ])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    (remote,) = [c for c in report["checks"] if c["check"] == "remote"]
    assert remote["level"] == "ok" and "(the clone's origin): reachable" in remote["message"]
