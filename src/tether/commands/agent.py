"""`tether agent install|uninstall|run|suspend|resume`: run tether on a schedule.

install writes the units of `tether.agent.units` (verified with `systemd-analyze verify` first),
enables the timers and keeps an install record next to the units listing every file, link
and folder it created, so uninstall removes exactly those and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tether.agent.durations import format_duration, parse_duration
from tether.agent.invocation import passthrough_args, tether_command
from tether.agent.loop import LoopConfig, resume, run_loop, suspend, suspension
from tether.agent.units import (
    CAPTURE_SCHEDULES,
    UnitSpec,
    normal_path,
    on_calendar,
    pid1_name,
    render_units,
    systemd_booted,
    unit_dir,
    wants_link,
)
from tether.config.configrepo import open_config_repo
from tether.config.manifest import DEFAULT_SECRETS_FILE, Manifest
from tether.config.options import HostOptions, SourceOptions
from tether.errors import HostError, StateError, TetherError, UsageError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import make_dirs, write_atomic
from tether.secrets.store import store_path
from tether.textsafe import counted

RECORD_NAME = ".tether-agent-install.json"


def say(message: str) -> None:
    click.echo(f"tether agent: {message}", err=True)


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise HostError(
            f"`{' '.join(argv)}` failed (exit {done.returncode}): "
            + ("; ".join(detail[-3:]) if detail else "no output"),
            hint="see the message above; the unit files are left as they were",
        )


def _systemctl(user: bool, *args: str) -> list[str]:
    return ["systemctl", *(["--user"] if user else []), *args]


# ---- the spec -------------------------------------------------------------------------------


def _manifest(source: SourceOptions, host: HostOptions) -> Manifest | None:
    if source.folder is None:
        return None
    with contextlib.suppress(TetherError):
        return open_config_repo(source.folder_tree(), host=host.host_name).manifest
    return None


def _manifest_home(manifest: Manifest | None) -> str | None:
    home = manifest.target_home if manifest is not None else None
    return home if home and home.startswith("/") else None


def install_store(source: SourceOptions, host: HostOptions) -> Path:
    """The secret store the units use, resolved now, by the user installing them: `~` in a
    unit would be the home of the user the unit runs as (root's, for a system unit)."""
    manifest = _manifest(source, host)
    configured = manifest.secrets_file if manifest is not None else DEFAULT_SECRETS_FILE
    return Path(normal_path(store_path(host.secrets_file, configured).absolute()))


def build_spec(
    source: SourceOptions,
    host: HostOptions,
    *,
    interval: float,
    jitter: float | None,
    capture: str,
    user: bool,
    writable: Sequence[Path],
    metrics_dir: Path | None,
    tether: Sequence[str] | None = None,
) -> UnitSpec:
    on_calendar(interval)  # reject an interval a timer cannot express, before anything else
    if capture not in ("off", *CAPTURE_SCHEDULES):
        raise UsageError(f"--capture {capture}: unknown schedule", hint="use daily, hourly or off")
    root = host.target_root.absolute()
    manifest = _manifest(source, host)
    home = host.target_home or _manifest_home(manifest)
    store = install_store(source, host)
    host = dataclasses.replace(host, secrets_file=store)
    # capture writes new secrets into the store (a temp file beside it, then a rename)
    capture_paths = [store.parent, *([source.folder.absolute()] if source.folder else [])]
    paths = [Path(normal_path(p)) for p in writable] or [root]
    if home is not None:
        paths.append(Path(normal_path(f"{root}/{home}")))
    return UnitSpec(
        tether=tuple(tether or tether_command()),
        args=tuple(passthrough_args(source, host)),
        state_dir=Path(normal_path(host.state_dir.absolute())),
        writable=tuple(dict.fromkeys(paths)),
        interval=interval,
        jitter=jitter,
        capture=capture,
        capture_writable=tuple(dict.fromkeys(capture_paths)),
        store=store,
        protect_home=home is not None,
        metrics_dir=Path(normal_path(metrics_dir.absolute())) if metrics_dir else None,
        user=user,
    )


# ---- verify ---------------------------------------------------------------------------------


def verify_units(units: dict[str, str], *, user: bool) -> str | None:
    """Run `systemd-analyze verify` on the units; None when it is not installed."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return None
    with tempfile.TemporaryDirectory(prefix="tether-units-") as tmp:
        for name, text in units.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        env = dict(os.environ)
        if user and not env.get("XDG_RUNTIME_DIR"):
            runtime = Path(tmp) / "runtime"
            runtime.mkdir(mode=0o700)
            env["XDG_RUNTIME_DIR"] = str(runtime)  # a user manager needs one, even offline
        argv = [analyze, *(["--user"] if user else []), "verify", *(f"{tmp}/{n}" for n in units)]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        output = (done.stderr + done.stdout).replace(f"{tmp}/", "")
        # verify only warns about a bad value ("..., ignoring") and still exits 0: any
        # output at all means systemd would not run the unit as written.
        if done.returncode != 0 or output.strip():
            raise HostError(
                "systemd-analyze verify rejected the units: "
                + "; ".join(line for line in output.splitlines() if line.strip())[:800],
                hint="nothing was installed; fix the options (or pass --no-verify for an image "
                "whose tether path does not exist here)",
            )
        return output


# ---- install record -------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallRecord:
    scope: str
    files: dict[str, str]  # path -> sha256 of what install wrote
    links: list[str]
    dirs: list[str]  # folders install created, outermost first
    timers: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "scope": self.scope,
            "files": self.files,
            "links": self.links,
            "dirs": self.dirs,
            "timers": self.timers,
        }


def record_path(folder: Path) -> Path:
    return folder / RECORD_NAME


def load_record(folder: Path) -> InstallRecord | None:
    path = record_path(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return InstallRecord(
            scope=str(data["scope"]),
            files={str(k): str(v) for k, v in data["files"].items()},
            links=[str(x) for x in data["links"]],
            dirs=[str(x) for x in data["dirs"]],
            timers=[str(x) for x in data["timers"]],
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise StateError(
            f"{path}: unreadable install record",
            hint="remove the tether-* units by hand, then delete this file",
        ) from None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- enable / disable -----------------------------------------------------------------------


def _link_target(folder: Path, root: Path | None, name: str) -> str:
    """What systemctl would point the wants link at: the unit's path on the running host."""
    path = folder / name
    return "/" + str(path.relative_to(root)) if root is not None else str(path)


def _enable(folder: Path, timers: list[str], *, root: Path | None, user: bool) -> None:
    """Enable the timers: systemctl when it can, else the timers.target.wants links."""
    if root is None and systemd_booted():
        _run(_systemctl(user, "daemon-reload"))
        _run(_systemctl(user, "enable", "--now", *timers))
        return
    if root is not None and not user and shutil.which("systemctl"):
        _run(["systemctl", f"--root={root}", "enable", *timers])
        return
    make_dirs(folder / "timers.target.wants")
    for timer in timers:
        link = wants_link(folder, timer)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(_link_target(folder, root, timer))


def _disable(folder: Path, timers: list[str], *, root: Path | None, user: bool) -> None:
    if root is None and systemd_booted():
        with contextlib.suppress(HostError):
            _run(_systemctl(user, "disable", "--now", *timers))
        services = [t.removesuffix(".timer") + ".service" for t in timers]
        with contextlib.suppress(HostError):
            _run(_systemctl(user, "stop", *services))
    elif root is not None and not user and shutil.which("systemctl"):
        with contextlib.suppress(HostError):
            _run(["systemctl", f"--root={root}", "disable", *timers])
    for timer in timers:
        link = wants_link(folder, timer)
        if link.is_symlink():
            link.unlink()


def _remove_files(record: InstallRecord, keep: set[str]) -> list[str]:
    """Remove recorded files not in `keep`; returns those changed since install (left alone)."""
    changed = []
    for name, digest in record.files.items():
        path = Path(name)
        if name in keep or not path.exists():
            continue
        if _sha(path.read_bytes()) != digest:
            changed.append(name)
            continue
        path.unlink()
    return changed


def _roll_back(folder: Path, fresh: Sequence[Path], created: Sequence[Path]) -> None:
    """Undo a failed install: the unit files it created, their links, the folders it made."""
    for path in fresh:
        with contextlib.suppress(OSError):
            if wants_link(folder, path.name).is_symlink():
                wants_link(folder, path.name).unlink()
            path.unlink()
    _remove_dirs([str(p) for p in created])


def _remove_dirs(dirs: Sequence[str]) -> None:
    for name in reversed(dirs):  # innermost first
        with contextlib.suppress(OSError):
            Path(name).rmdir()  # only when empty


# ---- commands -------------------------------------------------------------------------------


def _say_store(spec: UnitSpec) -> None:
    if spec.store is not None:
        say(f"secret store: {spec.store} (passed as --secrets-file; capture may write it)")


def install(
    spec: UnitSpec,
    *,
    root: Path | None,
    print_only: bool,
    verify: bool = True,
) -> int:
    units = render_units(spec)
    folder = unit_dir(user=spec.user, root=root)
    if print_only:
        shown = unit_dir(user=spec.user, root=None)
        for name, text in units.items():
            click.echo(f"# {shown / name}\n{text}")
        _say_store(spec)
        return int(ExitCode.OK)
    if verify and verify_units(units, user=spec.user) is None:
        say("systemd-analyze not found; installing the units unverified")
    previous = load_record(folder)
    wants = folder / "timers.target.wants"
    created: list[Path] = []
    fresh: list[Path] = []  # unit files this call created (a failure removes them again)
    try:
        created += make_dirs(folder)
        state = Path(f"{root}/{spec.state_dir}") if root is not None else spec.state_dir
        created += make_dirs(state, mode=0o700)
        files: dict[str, str] = {}
        for name, text in units.items():
            data = text.encode("utf-8")
            if not (folder / name).exists():
                fresh.append(folder / name)
            write_atomic(folder / name, data, 0o644)
            files[str(folder / name)] = _sha(data)
        if previous is not None:
            stale = [t for t in previous.timers if t not in spec.timers()]
            _disable(folder, stale, root=root, user=spec.user)
            _remove_files(previous, keep=set(files))
        if not wants.exists():
            created.append(wants)
        _enable(folder, spec.timers(), root=root, user=spec.user)
        dirs = [*(previous.dirs if previous else []), *map(str, created)]
        record = InstallRecord(
            scope="user" if spec.user else "system",
            files=files,
            links=[str(wants_link(folder, t)) for t in spec.timers()],
            dirs=list(dict.fromkeys(dirs)),
            timers=spec.timers(),
        )
        write_atomic(record_path(folder), json.dumps(record.to_json(), indent=2).encode(), 0o644)
    except (OSError, HostError) as exc:
        _roll_back(folder, fresh, created)
        if isinstance(exc, HostError):
            raise
        raise HostError(
            f"{exc.filename or folder}: cannot install the units ({exc.strerror})",
            hint="nothing was installed; run as root for a system install, or pass --user",
        ) from None
    for name in files:
        say(f"wrote {name}")
    _say_store(spec)
    timers = " ".join(spec.timers())
    if root is not None:
        say(f"enabled {timers} under {root}")
    elif systemd_booted():
        say(f"enabled and started {timers}; see `systemctl list-timers 'tether-*'`")
    else:
        say(
            f"systemd is not running here (PID 1 is {pid1_name()}): {timers} will start at the "
            "next boot with systemd; on a host or container without it, use `tether agent run`"
        )
    if spec.user:
        say("for the timers to run while you are logged out: loginctl enable-linger $USER")
    return int(ExitCode.OK)


def uninstall(*, root: Path | None, user: bool) -> int:
    folder = unit_dir(user=user, root=root)
    record = load_record(folder)
    if record is None:
        say(f"nothing to uninstall: no install record in {folder}")
        return int(ExitCode.OK)
    try:
        _disable(folder, record.timers, root=root, user=user)
        for link in record.links:
            if Path(link).is_symlink():
                Path(link).unlink()
        changed = _remove_files(record, keep=set())
        record_path(folder).unlink()
        _remove_dirs(record.dirs)
        if root is None and systemd_booted():
            with contextlib.suppress(HostError):
                _run(_systemctl(user, "daemon-reload"))
    except OSError as exc:
        raise HostError(
            f"{exc.filename or folder}: cannot uninstall ({exc.strerror})",
            hint="run as the user that installed the units",
        ) from None
    for name in changed:
        say(f"kept {name}: it was edited after install; remove it yourself if you want it gone")
    say(f"removed {counted(len(record.files) - len(changed), 'unit')} from {folder}")
    return int(ExitCode.ATTENTION if changed else ExitCode.OK)


def tick_command(
    source: SourceOptions, host: HostOptions, metrics_file: Path | None = None
) -> list[str]:
    """What each `agent run` tick executes: this tether, reconcile --apply, the same options."""
    args = passthrough_args(source, host, metrics_file)
    return [*tether_command(), "reconcile", "--apply", *args]


def run(
    source: SourceOptions,
    host: HostOptions,
    *,
    interval: str,
    jitter: str,
    once: bool,
    command: Sequence[str] | None = None,
    metrics_file: Path | None = None,
    bring_up: bool = False,
) -> int:
    every = parse_duration(interval, "--interval")
    spread = parse_duration(jitter, "--jitter")
    if every <= 0:
        raise UsageError(f"--interval {interval}: must be longer than 0", hint="e.g. 5min")
    tick = command or tick_command(source, host, metrics_file)
    record_as = None if command else "reconcile --apply"
    first = (*tick, "--bring-up") if bring_up and not command else None
    config = LoopConfig(
        tuple(tick), host.state_dir, every, spread, once, record_as=record_as, first=first
    )
    if not once:
        say(f"reconciling every {format_duration(every)} (+ up to {format_duration(spread)})")
    return run_loop(config)


def suspend_cmd(state_dir: Path, reason: str | None) -> int:
    held = suspend(state_dir, reason)
    say(f"suspended at {held.since}; the timer and `agent run` skip runs until `agent resume`")
    return int(ExitCode.OK)


def resume_cmd(state_dir: Path) -> int:
    held = suspension(state_dir)
    if resume(state_dir):
        say(f"resumed (was suspended since {held.since if held else 'unknown'})")
    else:
        say("not suspended")
    return int(ExitCode.OK)
