"""`tether status`: conditions and revisions from real run records, lock and suspend flag."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from testing.gitrepos import commit, config_files, init_bare
from testing.reconcile import make_site
from tether.agent.loop import suspend
from tether.cli import main
from tether.exitcodes import ExitCode
from tether.state.runs import RunRecord, record_run


def reconcile(
    n: int, code: int = 0, counts: dict[str, int] | None = None, **extra: Any
) -> RunRecord:
    return RunRecord(
        command="reconcile --apply",
        started=1_764_324_000.0 + 60 * n,
        duration=0.8,
        exit_code=code,
        counts=counts or {"in_sync": 5},
        **extra,
    )


def status(state: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["status", "--json", "--state-dir", str(state)])
    return code, json.loads(capsys.readouterr().out)


def conditions(report: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in report["conditions"]}


def test_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = status(tmp_path, capsys)
    assert code == ExitCode.ATTENTION
    assert set(report) >= {
        "conditions",
        "last_applied_revision",
        "last_attempted_revision",
        "runs",
        "suspended",
    }
    assert conditions(report)["Ready"][:2] == ("Unknown", "NeverRun")
    assert report["runs"] == []
    assert report["suspended"] is False


def test_ready_after_a_good_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_run(tmp_path, reconcile(1, revision_attempted="aaa", revision_applied="aaa"))
    code, report = status(tmp_path, capsys)
    assert code == 0
    assert conditions(report)["Ready"] == ("True", "ReconciliationSucceeded", "applied aaa")
    assert conditions(report)["Reconciling"][0] == "False"
    assert conditions(report)["Stalled"][0] == "False"
    assert report["last_applied_revision"] == "aaa"
    assert report["runs"][0]["result"] == "ok"


def test_a_plan_before_any_apply_is_not_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = reconcile(1, counts={"create": 2}, revision_attempted="bbb")
    record_run(tmp_path, dataclasses.replace(plan, command="reconcile --plan"))
    _, report = status(tmp_path, capsys)
    assert conditions(report)["Ready"] == ("False", "ChangesPending", "2 create")
    in_sync = reconcile(2, revision_attempted="bbb")
    record_run(tmp_path, dataclasses.replace(in_sync, command="reconcile --plan"))
    _, report = status(tmp_path, capsys)
    assert conditions(report)["Ready"] == ("True", "InSync", "planned bbb: nothing to apply")
    assert report["last_applied_revision"] is None


def test_failed_attempt_keeps_the_last_applied_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_run(tmp_path, reconcile(1, revision_attempted="aaa", revision_applied="aaa"))
    record_run(
        tmp_path,
        reconcile(
            2, ExitCode.ERROR, revision_attempted="bbb", message="remote unreachable: git.example"
        ),
    )
    code, report = status(tmp_path, capsys)
    assert code == ExitCode.ATTENTION
    assert report["last_applied_revision"] == "aaa"
    assert report["last_attempted_revision"] == "bbb"
    assert conditions(report)["Ready"] == (
        "False",
        "ReconciliationFailed",
        "remote unreachable: git.example",
    )
    assert conditions(report)["Stalled"][0] == "False"


def test_drift_is_pending_and_needs_attention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_run(
        tmp_path, reconcile(1, ExitCode.ATTENTION, {"in_sync": 3, "drift": 2, "conflict": 1})
    )
    code, report = status(tmp_path, capsys)
    assert code == ExitCode.ATTENTION
    assert report["pending_drift"] == {"drift": 2, "conflict": 1}
    assert conditions(report)["Ready"] == ("False", "NeedsAttention", "2 drift, 1 conflict")


def test_repeated_failures_stall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        record_run(tmp_path, reconcile(n, ExitCode.ERROR, message="permission denied: /etc/x"))
    _, report = status(tmp_path, capsys)
    stalled = conditions(report)["Stalled"]
    assert stalled[:2] == ("True", "RepeatedFailures")
    assert "3 runs in a row failed" in stalled[2]
    assert "permission denied" in stalled[2]


def test_usage_error_stalls_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_run(tmp_path, reconcile(1, ExitCode.USAGE, message="--source x: not a folder"))
    _, report = status(tmp_path, capsys)
    assert conditions(report)["Stalled"][:2] == ("True", "InvalidInvocation")


def test_capture_runs_are_listed_but_do_not_decide_ready(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_run(tmp_path, reconcile(1, revision_applied="aaa"))
    record_run(
        tmp_path,
        RunRecord("capture", 1_764_330_000.0, 2.0, ExitCode.ERROR, message="push rejected"),
    )
    code, report = status(tmp_path, capsys)
    assert code == 0
    assert [r["command"] for r in report["runs"]] == ["reconcile --apply", "capture"]


def test_only_the_last_ten_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(14):
        record_run(tmp_path, reconcile(n))
    _, report = status(tmp_path, capsys)
    assert len(report["runs"]) == 10
    assert report["runs"][-1]["started"] == reconcile(13).started


def test_lock_held_means_reconciling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _, report = status(tmp_path, capsys)
        assert conditions(report)["Reconciling"][:2] == ("True", "LockHeld")
    finally:
        os.close(fd)
    _, report = status(tmp_path, capsys)
    assert conditions(report)["Reconciling"][0] == "False"  # a lock file alone is not a lock


def test_suspended(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suspend(tmp_path, "moving house")
    _, report = status(tmp_path, capsys)
    assert report["suspended"] is True
    assert report["suspend_reason"] == "moving house"


def test_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_run(tmp_path, reconcile(1, ExitCode.ATTENTION, {"drift": 1}, revision_applied="abc123"))
    suspend(tmp_path, None)
    assert main(["status", "--state-dir", str(tmp_path)]) == ExitCode.ATTENTION
    out = capsys.readouterr().out
    assert "Ready          False   NeedsAttention: 1 drift" in out
    assert "applied        abc123" in out
    assert "ServicesReady  True    HandlersSucceeded" in out  # one column, the longest fits
    assert "pending        1 drift" in out
    assert "suspended      since" in out
    assert "attention" in out


# ---- from real runs -------------------------------------------------------------------------


def test_real_runs_pending_is_what_apply_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, {"a.conf": "a\n", "b.conf": "b\n"})
    assert site.reconcile().code == ExitCode.OK  # a plan: two creates pending
    code, report = status(site.state, capsys)
    assert report["pending_drift"] == {"create": 2}
    assert conditions(report)["Ready"][:2] == ("False", "ChangesPending")
    assert site.reconcile("--apply").code == 0
    code, report = status(site.state, capsys)
    assert code == 0
    assert report["pending_drift"] == {}  # the creates were done
    assert report["last_applied_revision"] == "folder"  # a --source folder has no commit id
    site.dest("a.conf").write_text("edited on the host\n")
    assert site.reconcile("--apply").code == ExitCode.ATTENTION
    code, report = status(site.state, capsys)
    assert code == ExitCode.ATTENTION
    assert report["pending_drift"] == {"drift": 1}
    assert conditions(report)["Ready"][:2] == ("False", "NeedsAttention")
    assert site.reconcile("--apply", "--overwrite").code == 0
    _, report = status(site.state, capsys)
    assert report["pending_drift"] == {}


def test_real_stale_source_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = init_bare(tmp_path / "config.git")
    first = commit(bare, config_files(**{"a.conf": b"a\n"}))
    (tmp_path / "root").mkdir()
    args = ["reconcile", "--apply", "--repo", f"file://{bare}", "--target-root"]
    args += [str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    assert main(args) == 0
    shutil.rmtree(bare)  # the remote is gone; the mirror is left
    assert main(args) == ExitCode.ATTENTION
    capsys.readouterr()
    _, report = status(tmp_path / "state", capsys)
    ready = conditions(report)["Ready"]
    assert ready[:2] == ("False", "NeedsAttention")
    assert ready[2].startswith("source is stale (")
    assert "converged on the last fetched revision" in ready[2]
    assert report["last_applied_revision"] == first


def test_capture_held_until_a_capture_of_every_file_clears_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_run(tmp_path, reconcile(1, revision_attempted="aaa", revision_applied="aaa"))
    assert status(tmp_path, capsys)[0] == ExitCode.OK
    assert conditions(status(tmp_path, capsys)[1])["CaptureHeld"] == ("False", "NothingHeld", "")
    held = "held back a/.env (line 2: generic-high-entropy)"

    def capture(n: int, code: int, counts: dict[str, int], **extra: Any) -> RunRecord:
        return dataclasses.replace(reconcile(n, code, counts), **{"command": "capture", **extra})

    record_run(tmp_path, capture(2, ExitCode.ATTENTION, {"held": 1, "add": 2}, message=held))
    code, report = status(tmp_path, capsys)
    assert code == ExitCode.ATTENTION
    assert conditions(report)["CaptureHeld"] == ("True", "SecretFinding", held)
    # Neither a capture that failed before deciding nor one of some files (--only) clears it.
    record_run(tmp_path, capture(3, ExitCode.ERROR, {}, message="remote unreachable"))
    record_run(tmp_path, capture(4, ExitCode.OK, {"modify": 1}, command="capture --only"))
    assert conditions(status(tmp_path, capsys)[1])["CaptureHeld"][0] == "True"
    record_run(tmp_path, capture(5, ExitCode.OK, {"modify": 1}))
    code, report = status(tmp_path, capsys)
    assert code == ExitCode.OK
    assert conditions(report)["CaptureHeld"] == ("False", "NothingHeld", "")
