"""systemd units for the agent: a oneshot service and a timer per job, rendered as text.

Pure functions: `render_units(spec)` returns file names and contents; installing them on disk
is `tether.commands.agent`. Quoting follows systemd.service(5) and systemd.unit(5):
specifiers (`%`) are resolved on the raw line, so a literal `%` is written `%%`; ExecStart
words are split on whitespace with C-style escapes inside double quotes, and `$NAME` is
expanded, so a literal `$` is written `$$`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.agent.durations import format_duration
from tether.errors import UsageError

RECONCILE = "tether-reconcile"
CAPTURE = "tether-capture"
SUSPEND_FLAG = "agent.suspended"
CAPTURE_SCHEDULES = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0}

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _check_printable(text: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UsageError(
            f"{text!r}: holds a control character a unit file cannot carry",
            hint="rename the path or pick another value",
        )


def quote_word(word: str, *, expand_dollar: bool = True) -> str:
    """One ExecStart/Environment word, quoted so systemd reads back exactly `word`."""
    _check_printable(word)
    if word == ";":  # a lone ; separates commands in a oneshot ExecStart
        return "\\;"
    if word and _PLAIN_WORD.fullmatch(word):
        text = word
    else:
        text = '"' + "".join(_C_ESCAPES.get(c, c) for c in word) + '"'
    text = escape_specifiers(text)
    return text.replace("$", "$$") if expand_dollar else text


def exec_line(argv: Sequence[str]) -> str:
    return " ".join(quote_word(a) for a in argv)


def exec_program(unit_text: str) -> str | None:
    """The program an ExecStart= line runs (its first word, read back), or None."""
    for line in unit_text.splitlines():
        if not line.startswith("ExecStart="):
            continue
        text = line.split("=", 1)[1].lstrip("@-:+!").replace("%%", "%").replace("$$", "$")
        if not text.startswith('"'):
            return text.split(" ", 1)[0]
        out, i = [], 1
        unescape = {v[1]: k for k, v in _C_ESCAPES.items()}
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                out.append(unescape.get(text[i + 1], text[i + 1]))
                i += 2
                continue
            out.append(text[i])
            i += 1
        return "".join(out)
    return None


def _path_word(path: str, *, optional: bool = True) -> str:
    """A path in a space-separated path list (ReadWritePaths=): unquoted, then specifiers."""
    _check_printable(path)
    word = ("-" if optional else "") + path
    if " " in word or '"' in word or "\\" in word or "'" in word:
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escape_specifiers(word)


def normal_path(path: Path | str) -> str:
    text = os.path.normpath(str(path))
    if not text.startswith("/"):
        raise UsageError(f"{path}: not an absolute path", hint="give an absolute path")
    return text


def on_calendar(seconds: float, option: str = "--interval") -> str:
    """An OnCalendar= expression firing every `seconds` (so Persistent= can catch up)."""
    whole = round(seconds)
    if whole == 604800:
        return "weekly"
    if whole == 86400:
        return "daily"
    if whole >= 3600 and whole % 3600 == 0 and 24 % (whole // 3600) == 0:
        return f"*-*-* 0/{whole // 3600}:00:00"
    if whole >= 60 and whole % 60 == 0 and 60 % (whole // 60) == 0:
        return f"*-*-* *:0/{whole // 60}:00"
    if 0 < whole < 60 and 60 % whole == 0:
        return f"*-*-* *:*:0/{whole}"
    raise UsageError(
        f"{option} {format_duration(seconds)}: a timer interval must divide a minute, an hour "
        "or a day evenly",
        hint="pick one of 30s, 1min, 5min, 10min, 15min, 30min, 1h, 2h, 6h, 12h, 1d, 1w",
    )


@dataclass(frozen=True)
class UnitSpec:
    """Everything the units say; paths are as seen by the host that will run them."""

    tether: tuple[str, ...]  # the absolute tether command
    args: tuple[str, ...]  # source/target/state options passed on to every run
    state_dir: Path
    writable: tuple[Path, ...]  # what reconcile may write besides the state dir
    interval: float = 900.0
    jitter: float | None = None  # default: a quarter of the interval
    capture: str = "off"  # off | hourly | daily | weekly
    capture_writable: tuple[Path, ...] = ()  # e.g. a --source folder capture commits into
    protect_home: bool = True  # false when the target home is unknown at install time
    metrics_dir: Path | None = None
    user: bool = False
    store: Path | None = None  # the secret store, resolved at install time (--secrets-file)

    def names(self) -> list[str]:
        jobs = [RECONCILE] + ([CAPTURE] if self.capture != "off" else [])
        return [f"{job}.{kind}" for job in jobs for kind in ("service", "timer")]

    def timers(self) -> list[str]:
        return [n for n in self.names() if n.endswith(".timer")]


def _hardening(spec: UnitSpec, writable: Sequence[Path], capabilities: str) -> list[str]:
    paths = " ".join(_path_word(normal_path(p)) for p in writable)
    if spec.user:
        # A user manager cannot set up mount namespaces without privileges; keep what works.
        return ["NoNewPrivileges=yes", "UMask=0077"]
    lines = [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={paths}",
    ]
    if spec.protect_home:
        lines.append("ProtectHome=read-only")
    else:
        lines.append("# ProtectHome= is off: the target home is only known from tether.yaml")
    return [
        *lines,
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        f"CapabilityBoundingSet={capabilities}",
        "AmbientCapabilities=",
    ]


def _service(
    spec: UnitSpec,
    *,
    job: str,
    description: str,
    argv: Sequence[str],
    writable: Sequence[Path],
    capabilities: str,
    umask: str,
) -> str:
    state = normal_path(spec.state_dir)
    flag = escape_specifiers(f"{state.rstrip('/')}/{SUSPEND_FLAG}")
    _check_printable(flag)
    env_log = quote_word(f"TETHER_LOG_DIR={state}/log", expand_dollar=False)
    lines = [
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        "After=network-online.target",
        "# `tether agent suspend` creates this file; the timer then skips its runs",
        f"ConditionPathExists=!{flag}",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={exec_line(argv)}",
        "Environment=PYTHONUNBUFFERED=1",
        f"Environment={env_log}",
        f"SyslogIdentifier={job}",
        "TimeoutStartSec=30min",
        "Nice=10",
        "IOSchedulingClass=idle",
    ]
    hardening = _hardening(spec, writable, capabilities)
    if not spec.user:
        hardening.append(f"UMask={umask}")
    return "\n".join([*lines, *hardening, ""])


def _timer(job: str, description: str, every: float, jitter: float) -> str:
    return "\n".join(
        [
            "[Unit]",
            f"Description={description}",
            "",
            "[Timer]",
            f"OnCalendar={on_calendar(every)}",
            "OnBootSec=2min",
            "# spread a fleet; FixedRandomDelay keeps each host's offset stable between runs",
            f"RandomizedDelaySec={format_duration(jitter)}",
            "FixedRandomDelay=true",
            "# the default 1min accuracy would coalesce runs and undo the spreading",
            "AccuracySec=1s",
            "# run a missed event after downtime",
            "Persistent=true",
            f"Unit={job}.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def _metrics_args(spec: UnitSpec, job: str) -> list[str]:
    if spec.metrics_dir is None:
        return []
    return ["--metrics-file", normal_path(spec.metrics_dir / f"{job}.prom")]


def render_units(spec: UnitSpec) -> dict[str, str]:
    """File name -> unit text for every unit the spec asks for."""
    every = format_duration(spec.interval)
    jitter = spec.jitter if spec.jitter is not None else spec.interval / 4
    extra = [spec.metrics_dir] if spec.metrics_dir else []
    units = {
        f"{RECONCILE}.service": _service(
            spec,
            job=RECONCILE,
            description="tether: reconcile this host with its config repo",
            argv=[
                *spec.tether,
                "reconcile",
                "--apply",
                *spec.args,
                *_metrics_args(spec, RECONCILE),
            ],
            writable=[*spec.writable, spec.state_dir, *extra],
            # chown/chmod managed files and write into folders root does not own
            capabilities="CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER",
            umask="0022",
        ),
        f"{RECONCILE}.timer": _timer(
            RECONCILE, f"tether: reconcile every {every}", spec.interval, jitter
        ),
    }
    if spec.capture != "off":
        every_capture = CAPTURE_SCHEDULES[spec.capture]
        units[f"{CAPTURE}.service"] = _service(
            spec,
            job=CAPTURE,
            description="tether: capture host changes into the config repo",
            argv=[*spec.tether, "capture", *spec.args, *_metrics_args(spec, CAPTURE)],
            writable=[spec.state_dir, *spec.capture_writable, *extra],
            # read the allowlisted files whoever owns them; write only tether's state
            capabilities="CAP_DAC_READ_SEARCH",
            umask="0077",
        )
        units[f"{CAPTURE}.timer"] = _timer(
            CAPTURE,
            f"tether: capture {spec.capture}",
            every_capture,
            min(3600.0, every_capture / 4),
        )
    return units


def unit_dir(*, user: bool, root: Path | None, home: Path | None = None) -> Path:
    """Where units go: /etc/systemd/system, or ~/.config/systemd/user; under `root` if given."""
    if user:
        base = (home or Path.home()) / ".config" / "systemd" / "user"
    else:
        base = Path("/etc/systemd/system")
    return root / base.relative_to("/") if root is not None else base


def wants_link(folder: Path, timer: str) -> Path:
    return folder / "timers.target.wants" / timer


def systemd_booted() -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return Path("/run/systemd/system").is_dir()


def pid1_name() -> str:
    try:
        return Path("/proc/1/comm").read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"
