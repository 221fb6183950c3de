"""`tether doctor`: each broken case caught, one at a time, on a real config repo."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scanhelp import BIN, git, git_env, init_repo
from testing.gitrepos import commit, config_files, free_port, init_bare
from tether.agent.loop import suspend
from tether.cli import main
from tether.commands.doctor import CHECKS, DoctorContext, check_remote, run_checks
from tether.config.options import HostOptions
from tether.exitcodes import ExitCode
from tether.state.ledger import ledger_path
from tether.state.lock import INFO_NAME, LOCK_NAME, state_lock

SECRET = "s3cr3t-Value-123"


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    cfg = tmp_path / "cfg"
    assert main(["init", str(cfg), "--home", "/home/anas"]) == 0
    (cfg / "inventory/include-paths.txt").write_text("app/config.yaml\napp/plain.txt\n")
    (cfg / "configs/app").mkdir(parents=True)
    (cfg / "configs/app/config.yaml").write_text("token: __REDACTED_APP_TOKEN__\n")
    (cfg / "configs/app/plain.txt").write_text("hello\n")
    store = tmp_path / "secrets.env"
    store.write_text(f"APP_TOKEN='{SECRET}'\n")
    store.chmod(0o600)
    return {"cfg": cfg, "store": store, "state": tmp_path / "state", "root": tmp_path / "root"}


def doctor(
    paths: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any], str]:
    args = [
        "doctor",
        "--json",
        "--source",
        str(paths["cfg"]),
        "--secrets-file",
        str(paths["store"]),
        "--state-dir",
        str(paths["state"]),
        "--root",
        str(paths["root"]),
        *extra,
    ]
    code = main(args)
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    return code, json.loads(captured.out), captured.out


def levels(report: dict[str, Any]) -> dict[str, str]:
    worst: dict[str, str] = {}
    order = {"ok": 0, "warning": 1, "error": 2}
    for check in report["checks"]:
        if order[check["level"]] >= order.get(worst.get(check["check"], "ok"), 0):
            worst[check["check"]] = check["level"]
    return worst


def messages(report: dict[str, Any], check: str) -> str:
    return " | ".join(
        f"{c['message']} -> {c['hint']}" for c in report["checks"] if c["check"] == check
    )


def test_healthy_host_passes_with_a_warning_for_no_units(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert report["ok"] is True
    assert levels(report) == {
        "manifest": "ok",
        "remote": "ok",
        "secret store": "ok",
        "placeholders": "ok",
        "ledger": "ok",
        "lock": "ok",
        "hooks": "ok",
        "units": "warning",
        "suspended": "ok",
        "services": "ok",
    }
    assert "not a git work tree" in messages(report, "hooks")
    assert "no remote configured" in messages(report, "remote")
    assert "1 secrets, mode 0600" in messages(report, "secret store")


def test_invalid_manifest(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (setup["cfg"] / "tether.yaml").write_text("version: 1\ntarget: [oops\n")
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["manifest"] == "error"
    assert "tether.yaml" in messages(report, "manifest")
    assert report["errors"] == 1  # the checks that need the repo say "not checked"
    assert "not checked: the config repo is unusable" in messages(report, "placeholders")


def test_no_config_repo(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(setup["root"].parent)
    code = main(["doctor", "--json", "--state-dir", str(setup["state"])])
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.ERROR
    assert "no config repo" in messages(report, "manifest")


def test_missing_store(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    setup["store"].unlink()
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["secret store"] == "error"
    assert "no secret store" in messages(report, "secret store")


def test_missing_store_is_fine_without_placeholders(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["store"].unlink()
    (setup["cfg"] / "configs/app/config.yaml").write_text("token: none\n")
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["secret store"] == "ok"


def test_store_readable_by_others(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["store"].chmod(0o644)
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["secret store"] == "error"
    assert "chmod 600" in messages(report, "secret store")


def test_store_is_a_symlink(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    real = setup["store"].with_name("real.env")
    setup["store"].rename(real)
    setup["store"].symlink_to(real)
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert "symlink" in messages(report, "secret store")


def test_placeholder_without_value(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (setup["cfg"] / "configs/app/plain.txt").write_text("key: __REDACTED_OTHER_KEY__\n")
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    text = messages(report, "placeholders")
    assert "configs/app/plain.txt: no value for OTHER_KEY" in text
    assert "APP_TOKEN" not in text


def test_units_installed_but_not_enabled(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    install = ["agent", "install", "--source", str(setup["cfg"]), "--root", str(setup["root"])]
    assert main([*install, "--state-dir", str(setup["state"])]) == 0
    code, report, _ = doctor(setup, capsys)
    assert levels(report)["units"] == "error"  # the image under --root has no tether yet
    assert "missing or not executable" in messages(report, "units")
    program = setup["root"] / Path(sys.executable).absolute().relative_to("/")
    program.parent.mkdir(parents=True)
    program.symlink_to(sys.executable)
    code, report, _ = doctor(setup, capsys)
    assert levels(report)["units"] == "ok"
    assert code == 0
    link = setup["root"] / "etc/systemd/system/timers.target.wants/tether-reconcile.timer"
    link.unlink()
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["units"] == "error"
    assert "not enabled" in messages(report, "units")


def test_suspended_is_a_warning(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    suspend(setup["state"], "migration")
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["suspended"] == "warning"
    assert "migration" in messages(report, "suspended")
    assert "tether agent resume" in messages(report, "suspended")


def test_text_output(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    setup["store"].chmod(0o640)
    args = ["doctor", "--source", str(setup["cfg"]), "--secrets-file", str(setup["store"])]
    assert (
        main([*args, "--state-dir", str(setup["state"]), "--root", str(setup["root"])])
        == ExitCode.ERROR
    )
    captured = capsys.readouterr()
    assert "error    secret store:" in captured.out
    assert "doctor: 1 error, 2 warnings" in captured.err
    assert "not checked: the secret store is unusable" in captured.out


def test_checks_are_a_list_the_lead_can_extend(setup: dict[str, Path]) -> None:
    host = HostOptions(Path("/"), None, setup["state"], setup["store"])
    ctx = DoctorContext((setup["cfg"], None, None), host, setup["root"], False, {})
    extra = (lambda _ctx: [],)
    assert len(run_checks(ctx, (*CHECKS, *extra))) == len(run_checks(ctx))


def test_environment_overrides_the_store(setup: dict[str, Path]) -> None:
    setup["store"].write_text("")
    host = HostOptions(Path("/"), None, setup["state"], setup["store"])
    ctx = DoctorContext((setup["cfg"], None, None), host, setup["root"], False, {})
    assert any(r.level == "error" for r in run_checks(ctx))
    env = {"APP_TOKEN": "from-env"}
    ctx = DoctorContext((setup["cfg"], None, None), host, setup["root"], False, env)
    assert not any(r.level == "error" for r in run_checks(ctx))


# ---- the remote -------------------------------------------------------------------------------


def doctor_repo(
    url: str, paths: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], str]:
    args = ["doctor", "--json", "--repo", url, "--secrets-file", str(paths["store"])]
    code = main([*args, "--state-dir", str(paths["state"]), "--root", str(paths["root"])])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.out + captured.err


def test_reachable_repo(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bare = init_bare(tmp_path / "config.git")
    commit(bare, config_files(**{"app.conf": b"x\n"}))
    code, report, _ = doctor_repo(str(bare), setup, capsys)
    assert levels(report)["remote"] == "ok"
    assert "reachable, 1 branches" in messages(report, "remote")
    assert levels(report)["manifest"] == "ok"
    assert code == 0


def test_unreachable_repo_is_an_error_naming_the_url(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], closed_port: str
) -> None:
    code, report, _ = doctor_repo(closed_port, setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["remote"] == "error"
    text = messages(report, "remote")
    assert f"{closed_port} (--repo): unreachable" in text
    assert "connection refused" in text
    assert report["errors"] == 1  # one cause counted once
    assert "not checked: the remote is unusable" in messages(report, "manifest")


def test_unreachable_remote_url_is_masked(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://deploy:{SECRET}@127.0.0.1:{free_port()}/config.git"
    code, report, out = doctor_repo(url, setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["remote"] == "error"
    assert "http://deploy:***@127.0.0.1" in messages(report, "remote")
    assert SECRET not in out


def test_capture_remote_of_the_manifest_is_probed(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], closed_port: str
) -> None:
    manifest = setup["cfg"] / "tether.yaml"
    text = manifest.read_text().replace("capture:\n", f"capture:\n  remote: {closed_port}\n")
    manifest.write_text(text)
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["remote"] == "error"
    assert "capture.remote in tether.yaml" in messages(report, "remote")


# ---- ledger and lock --------------------------------------------------------------------------


def test_corrupt_ledger(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    setup["state"].mkdir()
    ledger_path(setup["state"]).write_text("{not json")
    code, report, _ = doctor(setup, capsys)
    assert code == ExitCode.ERROR
    assert levels(report)["ledger"] == "error"
    text = messages(report, "ledger")
    assert "the ledger is corrupt" in text
    assert "tether reconcile --rebuild-ledger" in text


def test_ledger_written_by_a_real_apply_is_ok(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["root"].mkdir()
    host = ["--target-root", str(setup["root"]), "--state-dir", str(setup["state"])]
    args = ["reconcile", "--apply", "--source", str(setup["cfg"]), *host]
    assert main([*args, "--secrets-file", str(setup["store"])]) == 0
    capsys.readouterr()
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["ledger"] == "ok"
    assert "readable, 2 destinations" in messages(report, "ledger")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_left_by_a_dead_process_is_a_warning(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["state"].mkdir()
    (setup["state"] / LOCK_NAME).write_text("")
    pid = dead_pid()
    info = {"pid": pid, "command": "reconcile --apply", "since": "2026-01-01T00:00:00Z"}
    (setup["state"] / INFO_NAME).write_text(json.dumps(info))
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["lock"] == "warning"
    text = messages(report, "lock")
    assert f"pid {pid} (reconcile --apply)" in text
    assert "the next run takes the lock over" in text
    with state_lock(setup["state"], "reconcile --apply") as took_over:
        assert took_over == pid  # what doctor promised
    _, report, _ = doctor(setup, capsys)
    assert levels(report)["lock"] == "ok"


def test_lock_held_by_a_live_run_is_ok(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["state"].mkdir()
    with state_lock(setup["state"], "reconcile --apply"):
        code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["lock"] == "ok"
    assert "a run is in progress: pid" in messages(report, "lock")


# ---- hooks ------------------------------------------------------------------------------------


def test_git_config_repo_without_hooks_is_a_warning(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    init_repo(setup["cfg"], git_env(tmp_path))
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["hooks"] == "warning"
    assert "tether hooks install" in messages(report, "hooks")


def test_tether_hooks_installed(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    init_repo(setup["cfg"], git_env(tmp_path))
    assert main(["hooks", "install", str(setup["cfg"])]) == 0
    (setup["cfg"] / ".git/hooks/pre-push").unlink()
    _, report, _ = doctor(setup, capsys)
    assert levels(report)["hooks"] == "warning"
    assert "no pre-push hook" in messages(report, "hooks")
    assert main(["hooks", "install", str(setup["cfg"])]) == 0
    _, report, _ = doctor(setup, capsys)
    assert levels(report)["hooks"] == "ok"
    assert "tether's pre-commit and pre-push hooks" in messages(report, "hooks")


def test_pre_commit_framework_running_tether_scan(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    env = git_env(tmp_path)
    init_repo(setup["cfg"], env)
    installed = subprocess.run(
        [str(BIN / "pre-commit"), "install"],
        cwd=setup["cfg"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    _, report, _ = doctor(setup, capsys)
    assert levels(report)["hooks"] == "ok"
    assert "pre-commit runs tether-scan" in messages(report, "hooks")
    config = setup["cfg"] / ".pre-commit-config.yaml"
    config.write_text(config.read_text().replace("tether-scan", "something-else"))
    _, report, _ = doctor(setup, capsys)
    assert levels(report)["hooks"] == "warning"
    assert "does not use tether-scan" in messages(report, "hooks")
    git(setup["cfg"], "status", env=env)  # still a healthy work tree


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_remote_that_never_answers_times_out(setup: dict[str, Path], scheme: str) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"{scheme}://127.0.0.1:{silent.getsockname()[1]}/config.git"
        host = HostOptions(Path("/"), None, setup["state"], setup["store"])
        ctx = DoctorContext((None, url, None), host, setup["root"], remote_timeout=0.3)
        started = time.monotonic()
        results = check_remote(ctx)
    assert time.monotonic() - started < 5
    assert [r.level for r in results] == ["error"]
    assert "unreachable: timed out" in results[0].message
    assert socket.getdefaulttimeout() is None  # the process-wide default is restored


def test_units_enabled_where_systemd_does_not_run(
    setup: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here: a real install would start the timer")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    install = ["agent", "install", "--user", "--source", str(setup["cfg"])]
    assert main([*install, "--state-dir", str(setup["state"])]) == 0
    capsys.readouterr()
    args = ["doctor", "--json", "--user", "--source", str(setup["cfg"])]
    code = main([*args, "--secrets-file", str(setup["store"]), "--state-dir", str(setup["state"])])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert levels(report)["units"] == "warning"
    assert "systemd is not running here" in messages(report, "units")
    assert "tether agent run" in messages(report, "units")
    assert main(["agent", "uninstall", "--user"]) == 0


def test_store_is_the_one_reconcile_reads(
    setup: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`secrets.file: ~/...` with no --secrets-file: doctor checks the file reconcile fills from."""
    home = tmp_path / "runner"
    (home / ".config/tether").mkdir(parents=True)
    setup["store"].rename(home / ".config/tether/secrets.env")
    monkeypatch.setenv("HOME", str(home))  # target.home stays /home/anas
    setup["root"].mkdir()
    state = ["--state-dir", str(setup["state"])]
    target = ["--target-root", str(setup["root"]), "--source", str(setup["cfg"])]
    assert main(["reconcile", *target, *state]) == ExitCode.OK  # both files can be written
    capsys.readouterr()
    code = main(["doctor", "--json", *target, *state, "--root", str(setup["root"])])
    report = json.loads(capsys.readouterr().out)
    assert levels(report)["secret store"] == "ok", messages(report, "secret store")
    assert levels(report)["placeholders"] == "ok"
    assert str(home / ".config/tether/secrets.env") in messages(report, "secret store")
    assert code == 0
