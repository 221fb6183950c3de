from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from testing.gitrepos import commit, decline_pushes, ref_of
from tether.cli import main
from tether.commands.snapshot import snapshot, tag_name
from tether.config.options import SourceOptions
from tether.errors import UsageError
from tether.exitcodes import ExitCode
from tether.git.tree import open_remote_tree

NOW = dt.datetime(2026, 11, 22, 3, 4, 5, tzinfo=dt.UTC)


def test_tag_name_fills_date_and_time_in_utc() -> None:
    assert tag_name("snapshot/{date}", NOW) == "snapshot/2026-11-22"
    assert tag_name("s/{date}-{time}", NOW) == "s/2026-11-22-030405"
    local = NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert tag_name("{date}", local) == "2026-11-22"


def test_snapshot_default_name_then_restore(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s"
    source = SourceOptions(repo=str(upstream))
    old = ref_of(upstream, "refs/heads/main")
    code = snapshot(source, state, name=None, message=None, push=True, now=NOW)
    assert code == 0
    assert "created tag snapshot/2026-11-22" in capsys.readouterr().out
    assert ref_of(upstream, "refs/tags/snapshot/2026-11-22") is not None  # pushed
    commit(upstream, {"configs/.bashrc": b"later\n"})
    with open_remote_tree(str(upstream), "snapshot/2026-11-22", state) as tree:
        assert tree.revision == old
        assert tree.read_bytes("configs/.bashrc") == b"alias ll='ls -l'\n"


def test_an_empty_name_is_refused_not_replaced_by_the_default(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["snapshot", "--repo", str(upstream), "--state-dir", str(tmp_path / "s"), "--name", ""]
    assert main(args) == ExitCode.USAGE
    assert "not a valid git ref name" in capsys.readouterr().err


def test_existing_tag_is_never_moved(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "s")
    args = ["snapshot", "--repo", str(upstream), "--state-dir", state, "--name", "snapshot/w"]
    assert main([*args, "--push"]) == 0
    first = ref_of(upstream, "refs/tags/snapshot/w")
    commit(upstream, {"configs/.bashrc": b"moved on\n"})
    capsys.readouterr()
    assert main(args) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "already exists" in err and "never moved" in err and err.count("\n") == 1
    assert ref_of(upstream, "refs/tags/snapshot/w") == first


def test_snapshots_lists_newest_first(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s"
    source = SourceOptions(repo=str(upstream))
    snapshot(source, state, name=None, message="week 47", push=False, now=NOW)
    second = commit(upstream, {"configs/.bashrc": b"v2\n"})
    later = NOW + dt.timedelta(days=7)
    snapshot(source, state, name=None, message="week 48", push=False, now=later)
    snapshot(source, state, name="release-1", message="not a snapshot", push=False, now=later)
    capsys.readouterr()
    base = ["snapshots", "--repo", str(upstream), "--state-dir", str(state)]
    assert main([*base, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["snapshots"]
    assert [t["name"] for t in listed] == ["snapshot/2026-11-29", "snapshot/2026-11-22"]
    assert listed[0] == {
        "name": "snapshot/2026-11-29",
        "commit": second,
        "date": "2026-11-29T03:04:05Z",
        "message": "week 48",
        "annotated": True,
        "local_only": True,  # made without --push
    }
    assert main([*base, "--all"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 3 and text[-1].startswith("snapshot/2026-11-22  2026-11-22T03:04:05")
    assert "week 47" in text[-1]


def test_push_rejected_by_the_server_fails_loudly(
    upstream: Path, tmp_path: Path, git_daemon: str, capsys: pytest.CaptureFixture[str]
) -> None:
    decline_pushes(upstream, "tags are frozen")
    state = str(tmp_path / "s")
    url = f"{git_daemon}/config.git"
    code = main(["snapshot", "--repo", url, "--state-dir", state, "--name", "s/1", "--push"])
    assert code == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "rejected" in err and "hook declined" in err and "not kept" in err
    assert ref_of(upstream, "refs/tags/s/1") is None
    # Nothing is left behind locally, so the same snapshot can be retried once the hook allows.
    (upstream / "hooks" / "pre-receive").unlink()
    assert main(["snapshot", "--repo", url, "--state-dir", state, "--name", "s/1", "--push"]) == 0
    assert ref_of(upstream, "refs/tags/s/1") is not None


def test_snapshot_needs_a_fresh_fetch(
    tmp_path: Path, closed_port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["snapshot", "--repo", closed_port, "--state-dir", str(tmp_path / "s")])
    assert code == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "connection refused" in err and "check the URL" in err


def test_snapshot_needs_a_repo(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs --repo"):
        snapshot(SourceOptions(folder=tmp_path), tmp_path, name=None, message=None, push=False)


def test_a_snapshot_made_without_push_can_be_pushed_later(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s"
    source = SourceOptions(repo=str(upstream))
    assert snapshot(source, state, name=None, message=None, push=False, now=NOW) == 0
    base = ["snapshots", "--repo", str(upstream), "--state-dir", str(state)]
    capsys.readouterr()
    assert main(base) == 0
    assert "local only" in capsys.readouterr().out
    assert snapshot(source, state, name=None, message=None, push=True, now=NOW) == 0
    assert "pushed the existing tag snapshot/2026-11-22" in capsys.readouterr().out
    assert ref_of(upstream, "refs/tags/snapshot/2026-11-22") is not None
    assert main([*base, "--json"]) == 0
    assert [t["local_only"] for t in json.loads(capsys.readouterr().out)["snapshots"]] == [False]


def test_several_snapshots_a_day_get_numbered(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s"
    source = SourceOptions(repo=str(upstream))
    for n in range(3):
        commit(upstream, {"configs/.bashrc": f"v{n}\n".encode()})
        later = NOW + dt.timedelta(hours=n)
        assert snapshot(source, state, name=None, message=None, push=True, now=later) == 0
    names = ["snapshot/2026-11-22", "snapshot/2026-11-22-2", "snapshot/2026-11-22-3"]
    assert all(ref_of(upstream, f"refs/tags/{n}") for n in names)
