"""`tether agent install/uninstall/suspend/resume` against temp roots, with real systemd tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tether.agent.units import UnitSpec, render_units
from tether.cli import main
from tether.commands.agent import install, load_record
from tether.errors import HostError
from tether.exitcodes import ExitCode

ANALYZE = shutil.which("systemd-analyze")
SYSTEMCTL = shutil.which("systemctl")
UNITS = "etc/systemd/system"


def tree(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg"
    assert main(["init", str(folder), "--home", "/home/anas"]) == 0
    return folder


def install_args(cfg: Path, root: Path, *extra: str) -> list[str]:
    return [
        "agent",
        "install",
        "--source",
        str(cfg),
        "--root",
        str(root),
        "--state-dir",
        "/var/lib/tether",
        *extra,
    ]


def exec_start(path: Path) -> str:
    line = next(x for x in path.read_text().splitlines() if x.startswith("ExecStart="))
    return line.split("=", 1)[1]


def test_print_writes_units_to_stdout_and_nothing_else(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    assert main([*install_args(cfg, root), "--print", "--capture", "daily"]) == 0
    out = capsys.readouterr().out
    assert "# /etc/systemd/system/tether-reconcile.service" in out
    assert "# /etc/systemd/system/tether-capture.timer" in out
    assert not root.exists()


def test_install_into_root_verifies_and_enables(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(install_args(cfg, root, "--interval", "5min", "--capture", "daily")) == 0
    units = root / UNITS
    for name in ("tether-reconcile.timer", "tether-capture.timer"):
        link = units / "timers.target.wants" / name
        assert link.is_symlink()
        assert os.readlink(link) == f"/etc/systemd/system/{name}"
    assert (root / "var/lib/tether").is_dir()
    assert (root / "var/lib/tether").stat().st_mode & 0o777 == 0o700
    start = exec_start(units / "tether-reconcile.service")
    # the same options as given; the home from tether.yaml only widens ReadWritePaths
    assert f"reconcile --apply --source {cfg} --target-root / --state-dir" in start
    service = (units / "tether-reconcile.service").read_text().splitlines()
    assert "ReadWritePaths=-/ -/home/anas -/var/lib/tether" in service
    assert "--state-dir /var/lib/tether" in start
    assert "OnCalendar=*-*-* *:0/5:00" in (units / "tether-reconcile.timer").read_text()
    if ANALYZE:
        done = subprocess.run(
            [ANALYZE, "verify", *(str(p) for p in sorted(units.glob("tether-*")))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
    if SYSTEMCTL:
        enabled = subprocess.run(
            [SYSTEMCTL, f"--root={root}", "is-enabled", "tether-reconcile.timer"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert enabled.stdout.strip() == "enabled"


def test_uninstall_leaves_nothing_behind(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("box\n")
    before = tree(root)
    assert main(install_args(cfg, root, "--capture", "daily")) == 0
    assert tree(root) != before
    assert main(["agent", "uninstall", "--root", str(root)]) == 0
    assert tree(root) == before


def test_uninstall_keeps_a_state_dir_that_holds_state(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(install_args(cfg, root)) == 0
    (root / "var/lib/tether/ledger.json").write_text("{}")
    assert main(["agent", "uninstall", "--root", str(root)]) == 0
    assert tree(root) == ["var", "var/lib", "var/lib/tether", "var/lib/tether/ledger.json"]


def test_uninstall_keeps_an_edited_unit(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(install_args(cfg, root)) == 0
    service = root / UNITS / "tether-reconcile.service"
    service.write_text(service.read_text() + "# local edit\n")
    assert main(["agent", "uninstall", "--root", str(root)]) == ExitCode.ATTENTION
    assert service.exists()
    assert not (root / UNITS / "tether-reconcile.timer").exists()
    assert not (root / UNITS / "timers.target.wants").exists()


def test_uninstall_without_install_is_a_no_op(tmp_path: Path) -> None:
    assert main(["agent", "uninstall", "--root", str(tmp_path)]) == 0
    assert tree(tmp_path) == []


def test_reinstall_without_capture_removes_capture_units(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(install_args(cfg, root, "--capture", "daily")) == 0
    assert main(install_args(cfg, root)) == 0
    names = tree(root / UNITS)
    assert "tether-capture.service" not in names
    assert "timers.target.wants/tether-capture.timer" not in names
    assert "timers.target.wants/tether-reconcile.timer" in names
    record = load_record(root / UNITS)
    assert record is not None
    assert record.timers == ["tether-reconcile.timer"]
    assert main(["agent", "uninstall", "--root", str(root)]) == 0
    assert tree(root) == []


def test_install_without_systemctl_links_the_timer_itself(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))  # neither systemctl nor systemd-analyze here
    root = tmp_path / "root"
    assert main(install_args(cfg, root)) == 0
    link = root / UNITS / "timers.target.wants/tether-reconcile.timer"
    assert os.readlink(link) == "/etc/systemd/system/tether-reconcile.timer"
    assert main(["agent", "uninstall", "--root", str(root)]) == 0
    assert tree(root) == []


def test_user_install_under_root(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main([*install_args(cfg, root), "--user"]) == 0
    home = Path.home().relative_to("/")
    units = root / home / ".config/systemd/user"
    link = units / "timers.target.wants/tether-reconcile.timer"
    assert os.readlink(link) == f"/{home}/.config/systemd/user/tether-reconcile.timer"
    assert "ProtectSystem" not in (units / "tether-reconcile.service").read_text()
    assert main(["agent", "uninstall", "--root", str(root), "--user"]) == 0
    assert tree(root) == []


def test_real_user_install_without_systemd_says_so(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here: a real install would start the timer")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    args = ["agent", "install", "--user", "--source", str(cfg), "--state-dir", str(tmp_path / "s")]
    assert main(args) == 0
    assert "systemd is not running here" in capsys.readouterr().err
    assert (home / ".config/systemd/user/timers.target.wants/tether-reconcile.timer").is_symlink()
    assert main(["agent", "uninstall", "--user"]) == 0
    assert tree(home) == []


def test_console_script_path_goes_into_exec_start(cfg: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "tether"
    if not script.exists():
        pytest.skip("tether console script not installed")
    out = subprocess.run(
        [str(script), "agent", "install", "--print", "--source", str(cfg)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("ExecStart="))
    assert line.startswith(f"ExecStart={script.absolute()} reconcile --apply")


def test_in_process_falls_back_to_python_m_tether(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(install_args(cfg, root)) == 0
    start = exec_start(root / UNITS / "tether-reconcile.service")
    assert start.startswith(f"{Path(sys.executable).absolute()} -m tether reconcile")


def test_password_in_repo_url_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://bob:hunter2@git.example/cfg.git"
    assert main(["agent", "install", "--print", "--repo", url]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert "holds a password" in captured.err


def test_token_as_url_user_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """https://TOKEN@host is how GitHub/GitLab tokens are often written: never into a unit file."""
    url = "https://ghp_abcdef0123456789@git.example/cfg.git"
    assert main(["agent", "install", "--print", "--repo", url]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert "ghp_abcdef0123456789" not in captured.out + captured.err
    assert "https://***@git.example/cfg.git" in captured.err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--interval", "7min", "must divide"),
        ("--interval", "soon", "not a duration"),
        ("--capture", "yearly", "Invalid value"),
    ],
)
def test_bad_schedule_is_a_usage_error(
    cfg: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    message: str,
) -> None:
    assert main([*install_args(cfg, tmp_path / "root"), option, value]) == ExitCode.USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")
def test_units_verify_rejects_before_anything_is_written(tmp_path: Path) -> None:
    spec = UnitSpec(
        tether=(str(tmp_path / "no such tether"),),
        args=(),
        state_dir=tmp_path / "state",
        writable=(tmp_path,),
    )
    assert "tether-reconcile.service" in render_units(spec)
    with pytest.raises(HostError, match="not executable"):
        install(spec, root=tmp_path / "root", print_only=False)
    assert not (tmp_path / "root").exists()


def test_record_lists_what_was_written(cfg: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(install_args(cfg, root)) == 0
    data = json.loads((root / UNITS / ".tether-agent-install.json").read_text())
    assert sorted(Path(p).name for p in data["files"]) == [
        "tether-reconcile.service",
        "tether-reconcile.timer",
    ]
    assert data["dirs"][0] == str(root)


def test_suspend_and_resume_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["agent", "suspend", "--state-dir", str(state), "--reason", "disk swap"]) == 0
    flag = json.loads((state / "agent.suspended").read_text())
    assert flag["reason"] == "disk swap"
    assert main(["agent", "resume", "--state-dir", str(state)]) == 0
    assert not (state / "agent.suspended").exists()
    assert main(["agent", "resume", "--state-dir", str(state)]) == 0
    assert "not suspended" in capsys.readouterr().err


def test_suspend_into_unwritable_state_dir_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["agent", "suspend", "--state-dir", str(blocker / "state")]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot write the suspend flag" in err


def test_failed_install_leaves_nothing_half_done(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "var").write_text("not a folder")  # the state dir cannot be created
    before = tree(root)
    assert main(install_args(cfg, root)) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "cannot install the units" in err
    assert err.count("\n") == 1
    assert tree(root) == before


def test_failing_systemctl_rolls_back(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "systemctl"
    broken.write_text("#!/bin/sh\necho 'Failed to enable unit: boom' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    root = tmp_path / "root"
    assert main(install_args(cfg, root)) == ExitCode.ERROR
    assert "Failed to enable unit: boom" in capsys.readouterr().err
    assert tree(root) == []


def test_capture_unit_can_write_everything_capture_writes(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store (~ resolved now, by the installing user: a root unit would read root's home),
    the state dir and the --source folder are all under the capture unit's ReadWritePaths."""
    home = tmp_path / "installer"
    monkeypatch.setenv("HOME", str(home))
    root = tmp_path / "root"
    assert main(install_args(cfg, root, "--capture", "daily")) == 0  # verified by systemd-analyze
    store = home / ".config/tether/secrets.env"
    assert f"secret store: {store}" in capsys.readouterr().err
    units = root / UNITS
    text = (units / "tether-capture.service").read_text().splitlines()
    (line,) = [x for x in text if x.startswith("ReadWritePaths=")]
    writable = [Path(w.lstrip("-")) for w in line.split("=", 1)[1].split()]
    assert "ProtectHome=read-only" in text
    for written in (store, Path("/var/lib/tether/ledger.json"), cfg / "tether.yaml"):
        assert any(written.is_relative_to(w) for w in writable), (written, writable)
    for unit in ("tether-capture.service", "tether-reconcile.service"):
        assert f"--secrets-file {store}" in exec_start(units / unit)
    if ANALYZE:
        done = subprocess.run(
            [ANALYZE, "verify", *(str(p) for p in sorted(units.glob("tether-*")))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
