from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from testing.repos import make_config_repo
from tether import __version__
from tether.cli import cli, main
from tether.exitcodes import ExitCode
from tether.textsafe import mask_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help_list_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("validate", "init"):
        assert f"  {command}" in out
    for exit_code in ExitCode:
        assert f"{int(exit_code):>5}  " in out


@pytest.mark.parametrize("group", [(), ("agent",), ("hooks",), ("secrets",), ("backups",)])
def test_help_gives_every_command_one_whole_line(
    capsys: pytest.CaptureFixture[str], group: tuple[str, ...]
) -> None:
    code, out, _ = run(capsys, *group, "--help")
    assert code == 0
    listing = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    names = [line.split()[0] for line in listing]
    command = cli.commands[group[0]] if group else cli
    assert isinstance(command, click.Group)
    assert sorted(names) == sorted(command.commands)  # one line each, none wrapped
    assert not [line for line in listing if line.endswith("...")]  # none cut short


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "frobnicate")
    assert code == ExitCode.USAGE and "No such command" in err


def test_no_config_repo_here(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "validate")
    assert code == ExitCode.USAGE
    assert err.startswith("tether: no config repo:") and err.count("\n") == 1


def test_current_folder_is_the_source_when_it_holds_tether_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_config_repo(tmp_path, {"a.yml": "x: 1\n"})
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "validate")
    assert code == ExitCode.OK, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "--source", "a", "--repo", "b"], "name two config repos"),
        (["validate", "--ref", "main"], "--ref needs --repo"),
        (["validate", ".", "--source", "."], "DIR and --source"),
        (["validate", "--repo", "ftp://example.com/x.git"], "unsupported scheme 'ftp'"),
        (["validate", "--repo", "/no/such/repo"], "no such path"),
    ],
)
def test_source_option_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == ExitCode.USAGE
    assert message in err and "Traceback" not in err


def test_url_passwords_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "--repo", "ftp://me:hunter2@example.com/x.git")
    assert code == ExitCode.USAGE
    assert "hunter2" not in out + err and "me:***@" in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://me:pw@h/x", "https://me:***@h/x"),
        ("HTTPS://me:pw@h/x", "HTTPS://me:***@h/x"),
        ("Https://tok@h/x", "Https://***@h/x"),
        ("https://ghp_token0123@h/x", "https://***@h/x"),
        ("http://tok@h:80/x", "http://***@h:80/x"),
        ("ssh://git@h/x", "ssh://git@h/x"),
        ("git@h:x.git", "git@h:x.git"),
        ("https://h/x", "https://h/x"),
    ],
)
def test_mask_url_hides_passwords_and_http_tokens(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_internal_error_points_at_a_log_not_a_traceback(tmp_path: Path) -> None:
    """Any exception that is not a TetherError is a bug: one line, the traceback in a log."""
    script = (
        "import tether.commands.validate as v\n"
        "def boom(*a, **k):\n"
        "    raise RuntimeError('secret-value-must-not-show')\n"
        "v.check_config_repo = boom\n"
        "from tether.cli import main\n"
        "raise SystemExit(main(['validate', '--source', {!r}]))\n"
    ).format(str(make_config_repo(tmp_path / "repo")))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"TETHER_LOG_DIR": str(tmp_path / "logs"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == ExitCode.BUG
    assert "Traceback" not in done.stderr
    assert "secret-value-must-not-show" not in done.stderr
    assert done.stderr.startswith("tether: internal error (RuntimeError); the traceback is in ")
    (log,) = (tmp_path / "logs").glob("tether-crash-*.log")
    assert "RuntimeError" in log.read_text()
    assert log.stat().st_mode & 0o077 == 0


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in done.stdout


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path, {"a.yml": "x: 1\n"}, inventory="a.yml\nmissing.yml\n")
    code, out, _ = run(capsys, "validate", str(repo), "--json")
    data = json.loads(out)
    assert code == ExitCode.OK
    assert data["ok"] is True and data["warnings"] == 1
    assert data["findings"][0]["where"] == "inventory/include-paths.txt:2"
