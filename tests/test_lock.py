from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.reconcile import Site, make_site
from tether.errors import LockError
from tether.exitcodes import ExitCode
from tether.state.lock import INFO_NAME, LOCK_NAME, lock_held, state_lock, try_lock

HOLD = """
import sys, time
from pathlib import Path
from tether.state.lock import state_lock
with state_lock(Path(sys.argv[1]), "test holder"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = make_site(tmp_path, {"f": "x\n"})
    s.state.mkdir(mode=0o700)
    return s


def hold(state: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_says_who_holds_the_lock(site: Site) -> None:
    proc = hold(site.state, 30)
    try:
        result = site.reconcile("--apply")
        assert result.code == ExitCode.ATTENTION
        assert f"locked by pid {proc.pid} (test holder) since" in result.err
        assert "--wait" in result.err
        assert not site.dest("f").exists()
        # A plan does not need the lock.
        assert site.reconcile().code == ExitCode.OK
    finally:
        proc.kill()
        proc.wait()


def test_wait_for_the_lock(site: Site) -> None:
    proc = hold(site.state, 0.5)
    try:
        start = time.monotonic()
        result = site.reconcile("--apply", "--wait", "10")
        assert result.code == ExitCode.OK, result.err
        assert time.monotonic() - start < 10
        assert site.dest("f").exists()
    finally:
        proc.wait()


def test_wait_gives_up(site: Site) -> None:
    proc = hold(site.state, 30)
    try:
        with (
            pytest.raises(LockError, match=r"after waiting 0\.3 s"),
            state_lock(site.state, "x", 0.3),
        ):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_dead_process_is_taken_over(site: Site) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    (site.state / "lock").touch()
    (site.state / INFO_NAME).write_text(
        json.dumps({"pid": pid, "command": "reconcile --apply", "since": "x"})
    )
    result = site.reconcile("--apply")
    assert result.code == ExitCode.OK, result.err
    assert f"took over the lock left by pid {pid}" in result.err
    assert not (site.state / INFO_NAME).exists()


def test_an_info_file_that_cannot_be_written_does_not_stop_the_run(tmp_path: Path) -> None:
    (tmp_path / INFO_NAME).mkdir()  # as a full disk would: the info cannot be written
    with state_lock(tmp_path, "reconcile --apply") as dead:
        assert dead is None
        assert try_lock(tmp_path) is None  # the lock itself is held
    fd = try_lock(tmp_path)
    assert fd is not None
    os.close(fd)


def test_lock_held_probes_the_lock_file_the_lock_really_uses(tmp_path: Path) -> None:
    assert not lock_held(tmp_path)  # no lock file yet: not created by probing
    assert not (tmp_path / LOCK_NAME).exists()
    with state_lock(tmp_path, "reconcile --apply"):
        assert lock_held(tmp_path)
    assert not lock_held(tmp_path)
