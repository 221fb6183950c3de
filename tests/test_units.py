"""Unit rendering: quoting, schedules and hardening, checked by systemd-analyze itself."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tether.agent.units import (
    UnitSpec,
    exec_line,
    exec_program,
    on_calendar,
    quote_word,
    render_units,
)
from tether.errors import UsageError

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def unquote_exec(line: str) -> list[str]:
    """systemd's reading of an ExecStart= value (systemd.service(5), "Command lines")."""
    line = line.replace("%%", "\0")
    assert "%" not in line, f"unescaped specifier in {line!r}"
    line = line.replace("\0", "%")
    words: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", ";": ";"}
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        word = []
        quote = None
        while i < len(line) and (quote or line[i] != " "):
            char = line[i]
            if char == "\\":
                word.append(escapes[line[i + 1]])
                i += 2
                continue
            if char in "\"'" and quote is None:
                quote = char
            elif char == quote:
                quote = None
            else:
                word.append(char)
            i += 1
        words.append("".join(word).replace("$$", "\0").replace("\0", "$"))
    return words


def spec(tmp_path: Path, **changes: object) -> UnitSpec:
    values: dict[str, object] = {
        "tether": (sys.executable, "-m", "tether"),
        "args": ("--source", str(tmp_path / "cfg"), "--state-dir", str(tmp_path / "state")),
        "state_dir": tmp_path / "state",
        "writable": (tmp_path / "target",),
    }
    values.update(changes)
    return UnitSpec(**values)  # type: ignore[arg-type]


def verify(folder: Path, units: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify; a clean pass is exit 0 with no output at all."""
    assert ANALYZE is not None
    for name, text in units.items():
        (folder / name).write_text(text)
    return subprocess.run(
        [ANALYZE, "verify", *(str(folder / n) for n in units)],
        capture_output=True,
        text=True,
        check=False,
    )


def exec_start(text: str) -> str:
    return next(x for x in text.splitlines() if x.startswith("ExecStart=")).split("=", 1)[1]


@pytest.mark.parametrize(
    "word",
    [
        "plain",
        "/path with space/x",
        "50%",
        "%n",
        "$HOME",
        'say "hi"',
        "back\\slash",
        "semi;colon",
        ";",
        "",
        "'single'",
    ],
)
def test_quote_word_round_trips(word: str) -> None:
    assert unquote_exec(quote_word(word)) == [word]


@pytest.mark.parametrize(
    "program", ["/usr/bin/tether", "/opt/my tools/100% $x/tether", '/q"uote\\d/tether']
)
def test_exec_program_reads_back_the_first_word(tmp_path: Path, program: str) -> None:
    service = render_units(spec(tmp_path, tether=(program,)))["tether-reconcile.service"]
    assert exec_program(service) == program
    assert exec_program("[Service]\nType=oneshot\n") is None


def test_exec_line_keeps_word_boundaries() -> None:
    argv = ["/opt/my tools/tether", "reconcile", "--source", "/srv/100% repo", "--ref", "a b"]
    assert unquote_exec(exec_line(argv)) == argv


@pytest.mark.parametrize("word", ["new\nline", "tab\there", "bell\x07"])
def test_control_characters_are_refused(word: str) -> None:
    with pytest.raises(UsageError, match="control character"):
        quote_word(word)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (30, "*-*-* *:*:0/30"),
        (300, "*-*-* *:0/5:00"),
        (900, "*-*-* *:0/15:00"),
        (3600, "*-*-* 0/1:00:00"),
        (6 * 3600, "*-*-* 0/6:00:00"),
        (86400, "daily"),
        (604800, "weekly"),
    ],
)
def test_on_calendar(seconds: int, expected: str) -> None:
    assert on_calendar(seconds) == expected


@pytest.mark.parametrize("seconds", [7 * 60, 45, 5 * 3600, 2 * 86400, 0])
def test_on_calendar_refuses_uneven_intervals(seconds: int) -> None:
    with pytest.raises(UsageError, match="divide"):
        on_calendar(seconds)


@needs_analyze
def test_calendar_expressions_fire_at_the_interval() -> None:
    assert ANALYZE is not None
    out = subprocess.run(
        [ANALYZE, "calendar", "--iterations=3", on_calendar(900)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "*-*-* *:00/15:00" in out


def test_timer_has_spreading_and_catch_up(tmp_path: Path) -> None:
    timer = render_units(spec(tmp_path, interval=300.0, jitter=45.0))["tether-reconcile.timer"]
    for line in (
        "OnCalendar=*-*-* *:0/5:00",
        "RandomizedDelaySec=45s",
        "FixedRandomDelay=true",
        "AccuracySec=1s",
        "Persistent=true",
        "Unit=tether-reconcile.service",
        "WantedBy=timers.target",
    ):
        assert line in timer.splitlines()


def test_service_hardening_keeps_destinations_writable(tmp_path: Path) -> None:
    units = render_units(spec(tmp_path, capture="daily", capture_writable=(tmp_path / "cfg",)))
    reconcile = units["tether-reconcile.service"].splitlines()
    assert "Type=oneshot" in reconcile
    assert "ProtectSystem=strict" in reconcile
    assert "ProtectHome=read-only" in reconcile
    assert f"ReadWritePaths=-{tmp_path}/target -{tmp_path}/state" in reconcile
    capture = units["tether-capture.service"].splitlines()
    assert f"ReadWritePaths=-{tmp_path}/state -{tmp_path}/cfg" in capture
    assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH" in capture
    assert unquote_exec(exec_start("\n".join(capture)))[3] == "capture"


def test_suspend_flag_condition(tmp_path: Path) -> None:
    service = render_units(spec(tmp_path))["tether-reconcile.service"]
    assert f"ConditionPathExists=!{tmp_path}/state/agent.suspended" in service.splitlines()


def test_capture_units_only_when_asked(tmp_path: Path) -> None:
    assert sorted(render_units(spec(tmp_path))) == [
        "tether-reconcile.service",
        "tether-reconcile.timer",
    ]
    assert len(render_units(spec(tmp_path, capture="hourly"))) == 4


def test_user_units_drop_namespace_hardening(tmp_path: Path) -> None:
    service = render_units(spec(tmp_path, user=True))["tether-reconcile.service"]
    assert "ProtectSystem=strict" not in service
    assert "NoNewPrivileges=yes" in service


@needs_analyze
def test_generated_units_verify(tmp_path: Path) -> None:
    units = render_units(spec(tmp_path, capture="daily", metrics_dir=tmp_path / "metrics"))
    done = verify(tmp_path, units)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_analyze
def test_verify_catches_a_typo(tmp_path: Path) -> None:
    units = render_units(spec(tmp_path))
    name = "tether-reconcile.service"
    units[name] = units[name].replace("ProtectSystem=strict", "ProtectSystem=strictt")
    done = verify(tmp_path, units)
    # systemd only warns ("ignoring") and exits 0: install treats any output as a rejection
    assert "Failed to parse protect system value" in done.stderr


def _fake_tether(folder: Path) -> Path:
    folder.mkdir(parents=True)
    exe = folder / "tether"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@needs_analyze
def test_paths_with_spaces_and_percent_verify(tmp_path: Path) -> None:
    odd = tmp_path / "my tools %n 100%"
    exe = _fake_tether(odd / "bin")
    state = odd / "state dir"
    units = render_units(
        spec(tmp_path, tether=(str(exe),), state_dir=state, writable=(odd / "tar get",))
    )
    done = verify(tmp_path, units)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    assert unquote_exec(exec_start(units["tether-reconcile.service"]))[0] == str(exe)


@needs_analyze
def test_verify_sees_the_quoting_matters(tmp_path: Path) -> None:
    """The same path written without quoting is rejected: verify really parses it."""
    exe = _fake_tether(tmp_path / "my tools %n" / "bin")
    units = render_units(spec(tmp_path, tether=(str(exe),)))
    name = "tether-reconcile.service"
    quoted = exec_start(units[name])
    units[name] = units[name].replace(quoted, f"{exe} reconcile --apply")
    done = verify(tmp_path, units)
    assert done.returncode != 0
    assert os.fspath(exe) not in done.stdout


def test_reconcile_unit_lets_a_docker_compose_handler_reach_the_daemon(tmp_path: Path) -> None:
    """What docs/agent.md (Handlers under the units) relies on: the Docker socket is an AF_UNIX
    socket the unit may connect to, nothing hides /run or /usr/bin, and the unit runs long
    enough for a handler's default timeout."""
    lines = render_units(spec(tmp_path))["tether-reconcile.service"].splitlines()
    families = next(x for x in lines if x.startswith("RestrictAddressFamilies=")).split("=", 1)[1]
    assert "AF_UNIX" in families.split()
    assert not any(x.startswith(("InaccessiblePaths=", "TemporaryFileSystem=")) for x in lines)
    assert not any(x.startswith(("PrivateNetwork=", "IPAddressDeny=")) for x in lines)
    assert "User=" not in "\n".join(lines)  # runs as root: the socket's owner
    timeout = next(x for x in lines if x.startswith("TimeoutStartSec="))
    assert timeout == "TimeoutStartSec=30min"  # > a service's default 5 min timeout
