"""`tether reconcile --repo`: a host converges from a remote's commit, and keeps going offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testing.gitrepos import commit, ref_of, tag
from testing.state import repo_state
from tether.cli import main
from tether.exitcodes import ExitCode
from tether.state.ledger import load_ledger
from tether.state.runs import load_runs


def reconcile(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path, *extra: str
) -> tuple[int, dict[str, object], str]:
    root = tmp_path / "host"
    root.mkdir(exist_ok=True)
    argv = [
        "reconcile", "--repo", url, "--target-root", str(root),
        "--state-dir", str(tmp_path / "state"), "--secrets-file", str(tmp_path / "none.env"),
        "--json", *extra,
    ]  # fmt: skip
    code = main(argv)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def host_file(tmp_path: Path, name: str) -> bytes:
    return (tmp_path / "host/home/u" / name).read_bytes()


@pytest.mark.parametrize("transport", ["path", "file", "git"])
def test_a_host_converges_from_a_remote(
    capsys: pytest.CaptureFixture[str],
    upstream: Path,
    tmp_path: Path,
    git_daemon: str,
    transport: str,
) -> None:
    url = {
        "path": str(upstream),
        "file": f"file://{upstream}",
        "git": f"{git_daemon}/config.git",
    }[transport]
    head = ref_of(upstream, "refs/heads/main")
    code, plan, _ = reconcile(capsys, url, tmp_path, "--apply")
    assert code == ExitCode.OK
    assert plan["revision"] == head and plan["summary"]["create"] == 1  # type: ignore[index]
    assert plan["source"] == {  # type: ignore[comparison-overlap]
        "folder": None, "repo": url, "ref": None, "stale": False, "reason": None, "forced": False,
        "host": None,
    }  # fmt: skip
    assert host_file(tmp_path, ".bashrc") == b"alias ll='ls -l'\n"
    (entry,) = load_ledger(repo_state(tmp_path / "state")).values()
    assert entry.revision == head

    # a new commit upstream is an update; the second plan is all in sync
    commit(upstream, {"configs/.bashrc": b"alias ll='ls -la'\n"}, "edit")
    code, plan, _ = reconcile(capsys, url, tmp_path, "--apply")
    assert code == ExitCode.OK and plan["summary"]["update"] == 1  # type: ignore[index]
    code, plan, _ = reconcile(capsys, url, tmp_path)
    assert code == ExitCode.OK and plan["summary"]["in_sync"] == 1  # type: ignore[index]
    assert host_file(tmp_path, ".bashrc") == b"alias ll='ls -la'\n"


def test_a_snapshot_tag_restores_an_old_state(
    capsys: pytest.CaptureFixture[str], upstream: Path, tmp_path: Path
) -> None:
    tag(upstream, "snapshot/2026-11-22", ref_of(upstream, "refs/heads/main") or "", "weekly")
    commit(upstream, {"configs/.bashrc": b"newer\n"}, "later")
    url = str(upstream)
    assert reconcile(capsys, url, tmp_path, "--apply")[0] == ExitCode.OK
    assert host_file(tmp_path, ".bashrc") == b"newer\n"
    code, plan, _ = reconcile(capsys, url, tmp_path, "--apply", "--ref", "snapshot/2026-11-22")
    assert code == ExitCode.OK and plan["summary"]["update"] == 1  # type: ignore[index]
    assert host_file(tmp_path, ".bashrc") == b"alias ll='ls -l'\n"


def test_offline_reconcile_is_stale_not_stuck(
    capsys: pytest.CaptureFixture[str], upstream: Path, tmp_path: Path
) -> None:
    url = f"file://{upstream}"
    assert reconcile(capsys, url, tmp_path, "--apply")[0] == ExitCode.OK
    shutil.move(upstream, tmp_path / "gone.git")  # the remote is unreachable now
    (tmp_path / "host/home/u/.bashrc").unlink()  # and the host lost a file meanwhile

    code, plan, err = reconcile(capsys, url, tmp_path, "--apply")
    assert code == ExitCode.ATTENTION  # converged on the last known state, and says so
    source = plan["source"]
    assert source["stale"] is True and source["reason"]  # type: ignore[index]
    assert host_file(tmp_path, ".bashrc") == b"alias ll='ls -l'\n"
    assert "stale" in err

    code, _, err = reconcile(capsys, url, tmp_path, "--require-fresh")
    assert code == ExitCode.ERROR
    assert err.startswith("tether: ") and err.count("\n") == 1 and "Traceback" not in err

    runs = load_runs(tmp_path / "state")
    assert [r.exit_code for r in runs] == [ExitCode.OK, ExitCode.ATTENTION, ExitCode.ERROR]
    assert runs[-1].message and "cannot fetch" in runs[-1].message


def test_runs_and_metrics_are_recorded(
    capsys: pytest.CaptureFixture[str], upstream: Path, tmp_path: Path
) -> None:
    metrics = tmp_path / "tether.prom"
    code, _, _ = reconcile(
        capsys, str(upstream), tmp_path, "--apply", "--metrics-file", str(metrics)
    )
    assert code == ExitCode.OK
    (run,) = load_runs(tmp_path / "state")
    head = ref_of(upstream, "refs/heads/main")
    assert run.command == "reconcile --apply"
    assert (run.revision_attempted, run.revision_applied) == (head, head)
    assert run.counts["create"] == 1
    text = metrics.read_text()
    assert "tether_last_run_success" in text and 'action="create"' in text

    assert main(["status", "--state-dir", str(tmp_path / "state"), "--json"]) == ExitCode.OK
    status = json.loads(capsys.readouterr().out)
    assert status["last_applied_revision"] == head


def test_no_tether_yaml_at_the_ref(
    capsys: pytest.CaptureFixture[str], upstream: Path, tmp_path: Path
) -> None:
    commit(upstream, {"tether.yaml": None}, "oops")
    code, _, err = reconcile(capsys, str(upstream), tmp_path)
    assert code == ExitCode.ERROR and "no tether.yaml" in err and err.count("\n") == 1


def test_unknown_ref(capsys: pytest.CaptureFixture[str], upstream: Path, tmp_path: Path) -> None:
    code, _, err = reconcile(capsys, str(upstream), tmp_path, "--ref", "no-such-branch")
    assert code == ExitCode.ERROR and "no-such-branch" in err and err.count("\n") == 1
