"""The foreground loop, run as a real process with real ticks and real signals."""

from __future__ import annotations

import itertools
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.gitrepos import MANIFEST, commit, config_files, init_bare
from tether.agent.loop import (
    SUCCESS_CODES,
    LoopConfig,
    next_delay,
    resume,
    run_loop,
    suspend,
    suspension,
)
from tether.cli import main
from tether.commands.agent import run as agent_run
from tether.commands.agent import tick_command as tick_command_of
from tether.config.options import HostOptions, SourceOptions
from tether.exitcodes import ExitCode

LAUNCH = """
import json, sys
from pathlib import Path
from tether.agent.loop import LoopConfig, run_loop
c = json.loads(sys.argv[1])
config = LoopConfig(tuple(c["command"]), Path(c["state"]), c["interval"], 0.0,
                    max_backoff=c.get("cap"))
raise SystemExit(run_loop(config))
"""


def tick_command(log: Path, code: int | str = 0, sleep: float = 0.0) -> list[str]:
    """A tick that appends its start time to `log`, maybe sleeps, then exits with `code`.

    `code` may name a file holding the exit code, so a test can change it between ticks.
    """
    script = (
        "import sys, time, signal, pathlib\n"
        "signal.signal(signal.SIGTERM, lambda *a: (open(sys.argv[1] + '.term', 'w').close(),"
        " sys.exit(143)))\n"
        "with open(sys.argv[1], 'a') as f: f.write(f'{time.monotonic()}\\n')\n"
        "time.sleep(float(sys.argv[3]))\n"
        "c = sys.argv[2]\n"
        "sys.exit(int(pathlib.Path(c).read_text()) if not c.isdigit() else int(c))\n"
    )
    return [sys.executable, "-c", script, str(log), str(code), str(sleep)]


class Loop:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 5.0) -> tuple[int, float, str]:
        sent = time.monotonic()
        self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, time.monotonic() - sent, err


@pytest.fixture
def start_loop(tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(command: list[str], interval: float, cap: float | None = None) -> Loop:
        config = {"command": command, "state": str(tmp_path / "state"), "interval": interval}
        if cap is not None:
            config["cap"] = cap
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, json.dumps(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return Loop(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def ticks(log: Path) -> list[float]:
    return [float(x) for x in log.read_text().split()] if log.exists() else []


# ---- pure backoff ---------------------------------------------------------------------------


def test_backoff_doubles_and_caps() -> None:
    config = LoopConfig(("x",), Path("/nonexistent"), interval=60.0, jitter=0.0)
    delays = [next_delay(config, n, lambda: 0.0) for n in range(6)]
    assert delays == [60.0, 120.0, 240.0, 480.0, 480.0, 480.0]  # 8 x interval
    hourly = LoopConfig(("x",), Path("/nonexistent"), interval=900.0, jitter=0.0)
    assert next_delay(hourly, 10, lambda: 0.0) == 3600.0  # and never more than 1h
    long = LoopConfig(("x",), Path("/nonexistent"), interval=7200.0, jitter=0.0)
    assert next_delay(long, 3, lambda: 0.0) == 7200.0  # nor less than the interval


def test_jitter_is_added_on_top() -> None:
    config = LoopConfig(("x",), Path("/nonexistent"), interval=10.0, jitter=4.0)
    assert next_delay(config, 0, lambda: 0.5) == 12.0


# ---- the loop as a process ------------------------------------------------------------------


def test_failing_ticks_back_off_exponentially_and_capped(
    tmp_path: Path, start_loop: object
) -> None:
    log = tmp_path / "ticks"
    loop = start_loop(tick_command(log, int(ExitCode.ERROR)), interval=0.15, cap=0.6)  # type: ignore[operator]
    wait_for(lambda: len(ticks(log)) >= 5, timeout=15)
    code, _, err = loop.stop()
    times = ticks(log)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert code == 0
    assert gaps[0] >= 0.29  # 2 x interval after the first failure
    assert gaps[1] >= 0.55  # 4 x, capped at 0.6
    assert gaps[1] > gaps[0]
    assert gaps[3] < 2.0  # capped at 0.6 (uncapped it would be 2.4), slack for a busy machine
    assert "backing off after 1 failure" in err
    assert "error" in err


def test_success_resets_the_backoff(tmp_path: Path, start_loop: object) -> None:
    log, code_file = tmp_path / "ticks", tmp_path / "code"
    code_file.write_text(str(int(ExitCode.BUG)))
    loop = start_loop(tick_command(log, str(code_file)), interval=0.1, cap=5.0)  # type: ignore[operator]
    wait_for(lambda: len(ticks(log)) >= 3, timeout=15)
    code_file.write_text("0")
    wait_for(lambda: len(ticks(log)) >= 6, timeout=15)
    code, _, err = loop.stop()
    assert code == 0
    assert "bug" in err  # exit 70 named
    assert "next in 0s" in err  # back to the plain interval after a success


def test_a_tick_that_cannot_start_does_not_kill_the_loop(
    tmp_path: Path, start_loop: object
) -> None:
    loop = start_loop([str(tmp_path / "missing-tether")], interval=0.05, cap=0.1)  # type: ignore[operator]
    lines: list[str] = []  # read as the loop logs: a busy machine may start it late
    reader = threading.Thread(target=lambda: lines.extend(loop.proc.stderr), daemon=True)
    reader.start()
    wait_for(lambda: sum("cannot start" in line for line in lines) >= 2, timeout=30)
    assert loop.proc.poll() is None
    loop.proc.send_signal(signal.SIGTERM)
    assert loop.proc.wait(timeout=10) == 0
    reader.join(timeout=5)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_wait_exits_at_once(
    tmp_path: Path, start_loop: object, signum: int
) -> None:
    log = tmp_path / "ticks"
    loop = start_loop(tick_command(log, 0), interval=120.0)  # type: ignore[operator]
    wait_for(lambda: len(ticks(log)) == 1)
    time.sleep(0.2)  # now in the 2-minute wait
    code, took, err = loop.stop(signum)
    assert code == 0
    assert took < 2.0
    assert f"stopping on {signal.Signals(signum).name}" in err
    assert "Traceback" not in err


def test_sigterm_during_a_tick_is_forwarded_and_waited_for(
    tmp_path: Path, start_loop: object
) -> None:
    log = tmp_path / "ticks"
    loop = start_loop(tick_command(log, 0, sleep=30.0), interval=120.0)  # type: ignore[operator]
    wait_for(lambda: len(ticks(log)) == 1)
    time.sleep(0.3)  # the tick has installed its handler and sleeps
    code, took, err = loop.stop()
    assert code == 0
    assert took < 5.0
    assert Path(f"{log}.term").exists()  # the child got the SIGTERM
    assert "stopped by signal" in err


def test_suspended_loop_skips_ticks_and_logs_once(tmp_path: Path, start_loop: object) -> None:
    log, state = tmp_path / "ticks", tmp_path / "state"
    suspend(state, "maintenance")
    loop = start_loop(tick_command(log, 0), interval=0.05)  # type: ignore[operator]
    time.sleep(0.8)
    assert ticks(log) == []
    resume(state)
    wait_for(lambda: len(ticks(log)) >= 2)
    code, _, err = loop.stop()
    assert code == 0
    assert err.count("suspended since") == 1
    assert "maintenance" in err
    assert "resumed" in err


# ---- --once, in process ---------------------------------------------------------------------


def test_once_returns_the_tick_exit_code(tmp_path: Path) -> None:
    config = LoopConfig(
        tuple(tick_command(tmp_path / "t", int(ExitCode.ATTENTION))), tmp_path, 1.0, 0.0, once=True
    )
    assert run_loop(config) == 3
    assert len(ticks(tmp_path / "t")) == 1


def test_once_while_suspended_runs_nothing(tmp_path: Path) -> None:
    suspend(tmp_path, None)
    config = LoopConfig(
        tuple(tick_command(tmp_path / "t", int(ExitCode.ATTENTION))), tmp_path, 1.0, 0.0, once=True
    )
    assert run_loop(config) == ExitCode.OK
    assert ticks(tmp_path / "t") == []


def test_agent_run_command_builds_the_reconcile_tick(tmp_path: Path) -> None:
    host = HostOptions(Path("/"), None, tmp_path, None)
    code = agent_run(
        SourceOptions(folder=tmp_path),
        host,
        interval="5m",
        jitter="0",
        once=True,
        command=tick_command(tmp_path / "t", int(ExitCode.ERROR)),
    )
    assert code == ExitCode.ERROR


def test_tick_runs_reconcile_with_the_same_options(tmp_path: Path) -> None:
    host = HostOptions(Path("/srv/host"), "/home/a b", tmp_path / "st", tmp_path / "s.env")
    argv = tick_command_of(SourceOptions(repo="https://git.example/c.git", ref="v1"), host)
    assert argv == [
        sys.executable,
        "-m",
        "tether",
        "reconcile",
        "--apply",
        "--repo",
        "https://git.example/c.git",
        "--ref",
        "v1",
        "--target-root",
        "/srv/host",
        "--target-home",
        "/home/a b",
        "--state-dir",
        str(tmp_path / "st"),
        "--secrets-file",
        str(tmp_path / "s.env"),
    ]


def test_unreadable_suspend_flag_still_suspends(tmp_path: Path) -> None:
    (tmp_path / "agent.suspended").write_text("not json")
    held = suspension(tmp_path)
    assert held is not None
    assert held.reason == "not json"


def test_a_non_utf8_suspend_flag_still_suspends(tmp_path: Path) -> None:
    (tmp_path / "agent.suspended").write_bytes(b"\xff\xfe")
    held = suspension(tmp_path)
    assert held is not None and "UTF-8" in held.reason


# ---- end to end: the real reconcile on a real --repo -----------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    """A bare config repo built with dulwich, an empty host root and a state dir."""
    bare = init_bare(tmp_path / "config.git")
    root = tmp_path / "root"
    root.mkdir()
    return {"bare": bare, "root": root, "state": tmp_path / "state", "tmp": tmp_path}


def host_args(site: dict[str, Path]) -> list[str]:
    return ["--target-root", str(site["root"]), "--state-dir", str(site["state"])]


def status_json(state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    main(["status", "--json", "--state-dir", str(state)])
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def condition(status: dict[str, object], kind: str) -> dict[str, str]:
    found = [c for c in status["conditions"] if c["type"] == kind]  # type: ignore[attr-defined]
    return found[0]  # type: ignore[no-any-return]


def test_once_converges_the_host_from_a_real_repo(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first = commit(site["bare"], config_files(**{"app.conf": b"v1\n"}))
    metrics = site["tmp"] / "tether.prom"
    run = ["agent", "run", "--once", "--repo", str(site["bare"]), *host_args(site)]
    assert main([*run, "--metrics-file", str(metrics)]) == 0
    dest = site["root"] / "home/u/app.conf"
    assert dest.read_text() == "v1\n"
    assert "tether_last_run" in metrics.read_text()
    status = status_json(site["state"], capsys)
    assert condition(status, "Ready")["status"] == "True"
    assert status["last_applied_revision"] == first
    assert status["last_attempted_revision"] == first
    second = commit(site["bare"], {"configs/app.conf": b"v2\n"})
    assert main(run) == 0
    assert dest.read_text() == "v2\n"
    status = status_json(site["state"], capsys)
    assert status["last_applied_revision"] == second
    runs = status["runs"]
    assert [r["command"] for r in runs] == ["reconcile --apply"] * 2  # type: ignore[attr-defined]
    assert [r["revision_applied"] for r in runs] == [first, second]  # type: ignore[attr-defined]


def test_loop_follows_new_commits_and_stops_on_sigterm(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    commit(site["bare"], config_files(**{"app.conf": b"v1\n"}))
    argv = [sys.executable, "-m", "tether", "agent", "run", "--interval", "0.2s", "--jitter", "0"]
    proc = subprocess.Popen(
        [*argv, "--repo", str(site["bare"]), *host_args(site)],
        stderr=subprocess.PIPE,
        text=True,
    )
    dest = site["root"] / "home/u/app.conf"
    try:
        wait_for(lambda: dest.exists() and dest.read_text() == "v1\n", timeout=30)
        second = commit(site["bare"], {"configs/app.conf": b"v2\n"})
        wait_for(lambda: dest.read_text() == "v2\n", timeout=30)
        runs_file = site["state"] / "runs.jsonl"
        wait_for(lambda: second in runs_file.read_text(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "stopping on SIGTERM" in err
    status = status_json(site["state"], capsys)
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Reconciling")["status"] == "False"
    assert status["last_applied_revision"] == second


def test_unreachable_remote_backs_off_and_stalls(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str], closed_port: str
) -> None:
    run = ["agent", "run", "--repo", closed_port, *host_args(site)]
    assert main([*run, "--once"]) == ExitCode.ERROR
    assert not any(site["root"].iterdir())  # nothing fetched, nothing written
    status = status_json(site["state"], capsys)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReconciliationFailed")
    assert "connection refused" in ready["message"]
    assert condition(status, "Stalled")["status"] == "False"  # one failure is not a stall
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", *run, "--interval", "0.1s", "--jitter", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runs_file = site["state"] / "runs.jsonl"
        wait_for(lambda: len(runs_file.read_text().splitlines()) >= 4, timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "tick 1: error in" in err
    assert "backing off after 2 failures" in err
    status = status_json(site["state"], capsys)
    stalled = condition(status, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RepeatedFailures")
    assert "runs in a row failed" in stalled["message"]
    assert "connection refused" in stalled["message"]
    assert status["last_applied_revision"] is None
    assert main(["status", "--state-dir", str(site["state"])]) == ExitCode.ATTENTION


def test_unit_exec_start_runs_on_the_real_reconcile(site: dict[str, Path], tmp_path: Path) -> None:
    """The options the units pass (metrics file included) exist on the real command."""
    first = commit(site["bare"], config_files(**{"app.conf": b"v1\n"}))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    install = ["agent", "install", "--repo", str(site["bare"]), *host_args(site)]
    unit_root = tmp_path / "image"
    assert (
        main([*install, "--root", str(unit_root), "--metrics-dir", str(metrics), "--no-verify"])
        == 0
    )
    service = (unit_root / "etc/systemd/system/tether-reconcile.service").read_text()
    line = next(x for x in service.splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.split("=", 1)[1].replace("%%", "%").replace("$$", "$"))
    assert "--metrics-file" in argv
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (site["root"] / "home/u/app.conf").read_text() == "v1\n"
    prom = (metrics / "tether-reconcile.prom").read_text()
    assert "tether_last_run_success" in prom
    assert first in (site["state"] / "runs.jsonl").read_text()


def test_a_tick_that_fails_before_reconcile_starts_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config folder vanished after the agent started: the child stops at its options."""
    gone = tmp_path / "config"
    host = HostOptions(tmp_path, None, tmp_path / "state", None)
    argv = tick_command_of(SourceOptions(folder=gone), host)
    config = LoopConfig(
        tuple(argv), host.state_dir, 60, 0, once=True, record_as="reconcile --apply"
    )
    assert run_loop(config) == ExitCode.USAGE
    assert f"--source {gone}: not a folder" in capsys.readouterr().err  # relayed as it came
    status = status_json(host.state_dir, capsys)
    stalled = condition(status, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidInvocation")
    assert f"--source {gone}: not a folder" in stalled["message"]
    assert condition(status, "Ready")["reason"] == "ReconciliationFailed"


def test_a_tick_that_recorded_its_run_is_not_recorded_twice(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str], closed_port: str
) -> None:
    host = HostOptions(site["root"], None, site["state"], None)
    argv = tick_command_of(SourceOptions(repo=closed_port), host)
    config = LoopConfig(
        tuple(argv), host.state_dir, 60, 0, once=True, record_as="reconcile --apply"
    )
    assert run_loop(config) == ExitCode.ERROR
    runs = status_json(site["state"], capsys)["runs"]
    assert len(runs) == 1  # type: ignore[arg-type]
    assert "connection refused" in runs[0]["message"]  # type: ignore[index]


@pytest.mark.parametrize("job", ["tether-reconcile", "tether-capture"])
def test_every_option_a_unit_passes_exists_on_the_real_command(job: str, tmp_path: Path) -> None:
    """Click rejects an unknown option before it looks at --help: the argv parses as written."""
    install = ["agent", "install", "--repo", "https://git.example/c.git", "--ref", "v1"]
    install += ["--target-home", "/home/u", "--secrets-file", str(tmp_path / "s.env")]
    install += ["--state-dir", str(tmp_path / "state"), "--metrics-dir", str(tmp_path / "m")]
    root = tmp_path / "image"
    assert main([*install, "--capture", "daily", "--root", str(root), "--no-verify"]) == 0
    service = (root / f"etc/systemd/system/{job}.service").read_text()
    line = next(x for x in service.splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.split("=", 1)[1].replace("%%", "%").replace("$$", "$"))
    assert "--metrics-file" in argv
    done = subprocess.run([*argv, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_agent_ticks_run_handlers_and_retry_a_failed_one(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent's tick is a real apply: the changed service's handler runs with the revision
    in its environment; a failure is pending (tick exit ATTENTION, the loop's success: no
    backoff) and the next tick, with no new commit, retries it."""
    log, gate = site["tmp"] / "handler.log", site["tmp"] / "fail"
    manifest = (
        MANIFEST
        + (
            "services:\n  - name: app\n    paths: [app.conf]\n    on_change:\n"
            f'      - echo "$TETHER_SERVICE $TETHER_REVISION $TETHER_CHANGED" >> {log}\n'
            f"      - test ! -e {gate}\n"
        ).encode()
    )
    first = commit(site["bare"], {**config_files(**{"app.conf": b"v1\n"}), "tether.yaml": manifest})
    run = ["agent", "run", "--once", "--repo", str(site["bare"]), *host_args(site)]
    gate.touch()
    assert main(run) == ExitCode.ATTENTION
    assert ExitCode.ATTENTION in SUCCESS_CODES
    assert log.read_text() == f"app {first} app.conf\n"
    status = status_json(site["state"], capsys)
    assert status["pending_services"] == ["app"]
    assert condition(status, "ServicesReady")["status"] == "False"
    gate.unlink()
    assert main(run) == ExitCode.OK  # no new commit: the pending service is retried
    assert log.read_text() == f"app {first} app.conf\n" * 2
    status = status_json(site["state"], capsys)
    assert status["pending_services"] == []
    assert condition(status, "ServicesReady")["status"] == "True"
