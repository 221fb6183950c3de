"""Exit codes scripts can trust: a pending plan is success, errors are 1, usage 64, and the
ways a process can end early (closed pipe, broken install) each have their own code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing.reconcile import make_site
from tether.cli import main
from tether.exitcodes import ExitCode, for_process, worst


def test_worst_ranks_errors_above_attention_above_changes() -> None:
    assert worst(ExitCode.OK, ExitCode.CHANGES) == ExitCode.CHANGES
    assert worst(ExitCode.CHANGES, ExitCode.ATTENTION) == ExitCode.ATTENTION
    assert worst(ExitCode.ERROR, ExitCode.ATTENTION) == ExitCode.ERROR  # not max() by number
    assert worst(ExitCode.ATTENTION, ExitCode.BUG) == ExitCode.BUG


def test_changes_pending_is_success_unless_detailed() -> None:
    assert for_process(ExitCode.CHANGES, detailed=False) == ExitCode.OK
    assert for_process(ExitCode.CHANGES, detailed=True) == ExitCode.CHANGES
    assert for_process(ExitCode.ATTENTION, detailed=False) == ExitCode.ATTENTION
    assert for_process(ExitCode.ERROR, detailed=True) == ExitCode.ERROR


def test_a_plan_with_changes_exits_0_and_2_with_detailed_exitcode(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"a.conf": "a\n"})
    assert site.reconcile().code == ExitCode.OK
    assert site.reconcile("--detailed-exitcode").code == ExitCode.CHANGES
    assert site.reconcile("--apply", "--detailed-exitcode").code == ExitCode.OK
    assert site.reconcile("--detailed-exitcode").code == ExitCode.OK  # nothing left to do


def test_a_pending_plan_is_recorded_as_changes_for_status(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"a.conf": "a\n"})
    assert site.reconcile().code == ExitCode.OK
    runs = (site.state / "runs.jsonl").read_text().splitlines()
    assert '"exit_code": 2' in runs[-1]  # the outcome, whatever the process exited with


def test_click_usage_errors_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--no-such-option"]) == ExitCode.USAGE
    assert main(["no-such-command"]) == ExitCode.USAGE
    assert "No such" in capsys.readouterr().err


def _tether(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from tether.__main__ import run; run()", *args],
        text=True,
        capture_output="stdout" not in kwargs,
        check=False,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def test_a_closed_stdout_ends_quietly_with_141(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before tether writes, as `| head -1` after a line
    err = tmp_path / "err"
    with err.open("w") as stderr:
        done = _tether(["--help"], stdout=write_end, stderr=stderr)
    os.close(write_end)
    assert done.returncode == ExitCode.CLOSED_PIPE
    assert err.read_text() == ""  # no traceback, no "Exception ignored" at exit


def test_a_broken_install_is_one_line_and_exit_70() -> None:
    code = (
        "import sys; sys.modules['tether.cli'] = None\n"  # any import of it now raises ImportError
        "from tether.__main__ import run; run()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == ExitCode.BUG
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tether: broken install"), done.stderr
    assert "reinstall" in lines[0]
