"""Service handlers after an apply: who runs (changed files, pending, bring-up), in which order
(`after`), and running them (`/bin/sh -c`, a timeout that kills the whole process group, the
readiness check), recording each result in the state dir's services file.

The selection takes the list of services to consider, so a caller can narrow it (a host
profile's services) before anything is chosen.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tether.config.inventory import matches
from tether.config.manifest import Service
from tether.state.services import ServiceRecord, record_result

OUTPUT_TAIL = 64 * 1024  # bytes of each command's output kept in the run history
MASK_MARGIN = 64 * 1024  # output read before the kept tail, so a secret it cuts is still masked
READY_INTERVAL = 2.0  # seconds between two readiness checks
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a timed-out command
SHELL = "/bin/sh"


def owners(services: Sequence[Service], paths: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """service name -> the given inventory paths that belong to it (services owning none left
    out), in manifest order."""
    paths = list(paths)
    found: dict[str, tuple[str, ...]] = {}
    for service in services:
        mine = tuple(p for p in paths if any(matches(g, p) for g in service.paths))
        if mine:
            found[service.name] = mine
    return found


def with_handlers(services: Sequence[Service]) -> list[Service]:
    """The services that have something to run (a service without commands is never owed)."""
    return [s for s in services if s.on_change or s.ready]


@dataclass(frozen=True)
class Selected:
    service: Service
    action: str  # "run" | "pending" (owed, not run now) | "skip"
    reason: str
    paths: tuple[str, ...] = ()  # inventory paths that changed for it

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.service.name,
            "action": self.action,
            "reason": self.reason,
            "paths": list(self.paths),
        }


def select(
    services: Sequence[Service],
    changed: Mapping[str, Sequence[str]],
    records: Mapping[str, ServiceRecord],
    *,
    bring_up: bool = False,
    handlers: bool = True,
    only: Sequence[str] | None = None,
) -> list[Selected]:
    """Every service in `services`, in run order, with what happens to it and why.

    `changed`: service -> paths this apply changes; `records`: the state dir's services file;
    `only`: names asked for by `tether services run NAME...` (run whether pending or not).
    """
    chosen: list[Selected] = []
    for service in order(services):
        record = records.get(service.name, ServiceRecord())
        paths = tuple(dict.fromkeys((*record.changed, *changed.get(service.name, ()))))
        if only is not None:
            asked = service.name in only
            reason = "asked for" if asked else "not asked for"
        elif bring_up:
            asked, reason = True, "bring-up"
        elif changed.get(service.name):
            asked, reason = True, "files changed: " + _some(changed[service.name])
        elif record.pending:
            asked = True
            reason = f"pending since {record.since}" if record.since else "pending"
            if record.error:
                reason += f"; last attempt: {record.error} at {record.failed_at}"
        else:
            asked, reason = False, "no file changed"
        if asked and not service.on_change and not service.ready:
            asked, reason = False, "no on_change commands"
        action = ("run" if handlers else "pending") if asked else "skip"
        chosen.append(Selected(service, action, reason, paths))
    return chosen


def _some(paths: Sequence[str], shown: int = 3) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")


def order(services: Sequence[Service]) -> list[Service]:
    """A topological order by `after` (ties by manifest order); unknown names are ignored and
    a cycle (refused by validate) falls back to manifest order for what is left."""
    index = {s.name: i for i, s in enumerate(services)}
    waits = {s.name: {a for a in s.after if a in index and a != s.name} for s in services}
    done: list[Service] = []
    left = list(services)
    while left:
        ready = [s for s in left if not waits[s.name] - {d.name for d in done}]
        pick = ready[0] if ready else left[0]
        done.append(pick)
        left.remove(pick)
    return done


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit: int | None  # None: killed after its timeout
    seconds: float
    output: str  # the last OUTPUT_TAIL bytes, secrets masked


@dataclass
class ServiceResult:
    name: str
    result: str  # "ok" | "failed" | "not-run"
    reason: str = ""
    exit: int | None = None
    seconds: float = 0.0
    commands: list[CommandResult] = field(default_factory=list)

    def to_json(self, *, output: bool = False) -> dict[str, object]:
        doc: dict[str, object] = {
            "name": self.name,
            "result": self.result,
            "exit": self.exit,
            "seconds": round(self.seconds, 3),
        }
        if self.reason:
            doc["error"] = self.reason
        if output:
            doc["commands"] = [
                {"command": c.command, "exit": c.exit, "seconds": round(c.seconds, 3),
                 "output": c.output}
                for c in self.commands
            ]  # fmt: skip
        return doc


@dataclass(frozen=True)
class HandlerEnv:
    """What every handler of one run shares."""

    state_dir: Path
    revision: str | None
    folder_of: Callable[[Service, Sequence[str]], Path]  # where a service's commands run
    mask: Callable[[str], str]  # hides every secret value in kept output
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def run_selected(
    chosen: Sequence[Selected], env: HandlerEnv, *, notify: Callable[[str], None] | None = None
) -> list[ServiceResult]:
    """Run the services marked "run", in order; a failure stops every service after it (that
    runs this time), not the independent ones. Each result is recorded as it ends."""
    running = {s.service.name for s in chosen if s.action == "run"}
    failed: dict[str, str] = {}  # name -> the failed service that stopped it (itself if it failed)
    results: list[ServiceResult] = []
    for selected in chosen:
        if selected.action != "run":
            continue
        service = selected.service
        blocker = next((failed[a] for a in service.after if a in running and a in failed), None)
        if blocker is not None:
            failed[service.name] = blocker
            results.append(ServiceResult(service.name, "not-run", f"after failed {blocker}"))
            continue
        if notify:
            notify(f"service {service.name}: running ({selected.reason})")
        result = run_service(service, selected.paths, env)
        results.append(result)
        record_result(env.state_dir, service.name, result.reason or None, time.time())
        if result.result != "ok":
            failed[service.name] = service.name
    return results


def run_service(service: Service, paths: Sequence[str], env: HandlerEnv) -> ServiceResult:
    folder = env.folder_of(service, paths)
    environ = dict(env.environ)
    environ["TETHER_SERVICE"] = service.name
    environ["TETHER_REVISION"] = env.revision or ""
    environ["TETHER_CHANGED"] = "\n".join(paths)
    result = ServiceResult(service.name, "ok")
    clock = time.monotonic()
    for command in service.on_change:
        done = run_command(command, folder, environ, service.timeout, env.mask)
        result.commands.append(done)
        if done.exit != 0:
            result.result, result.exit = "failed", done.exit
            result.reason = (
                f"timed out after {service.timeout:g}s: {command}"
                if done.exit is None
                else f"exit {done.exit}: {command}"
            )
            break
    if result.result == "ok" and service.ready:
        ready = wait_ready(service, folder, environ, env.mask)
        result.commands.append(ready)
        if ready.exit != 0:
            result.result, result.exit = "failed", ready.exit
            result.reason = f"not ready after {service.ready_timeout:g}s: {service.ready}"
    result.seconds = time.monotonic() - clock
    if result.exit is None and result.result == "ok":
        result.exit = 0
    return result


def wait_ready(
    service: Service, folder: Path, environ: Mapping[str, str], mask: Callable[[str], str]
) -> CommandResult:
    assert service.ready is not None
    deadline = time.monotonic() + service.ready_timeout
    while True:
        left = deadline - time.monotonic()
        check = run_command(service.ready, folder, environ, max(left, 0.1), mask)
        left = deadline - time.monotonic()
        if check.exit == 0 or left <= 0:
            return check
        time.sleep(min(READY_INTERVAL, left))


def run_command(
    command: str,
    folder: Path,
    environ: Mapping[str, str],
    timeout: float,
    mask: Callable[[str], str],
) -> CommandResult:
    """`/bin/sh -c command` in its own process group; past `timeout` the group gets SIGTERM,
    then SIGKILL after KILL_GRACE. Output goes to a temp file (a daemon left holding a pipe
    cannot hang the run); its tail is kept, masked."""
    clock = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen(
                [SHELL, "-c", command],
                cwd=folder,
                env=dict(environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return CommandResult(command, 127, 0.0, f"cannot start: {exc.strerror}")
        code: int | None
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
        except KeyboardInterrupt:  # Ctrl-C reaches tether alone: the command has its session
            _stop_on_interrupt(proc)
            raise
        # Masked before it is cut: a secret the cut would split is whole in the wider window.
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - OUTPUT_TAIL - MASK_MARGIN))
        masked = mask(log.read().decode("utf-8", "replace"))
    if code is not None and code < 0:
        code = 128 - code  # killed by a signal: as the shell reports it
    return CommandResult(command, code, time.monotonic() - clock, _tail(masked))


def _tail(text: str) -> str:
    """The last OUTPUT_TAIL bytes of `text`, cut at a character boundary."""
    data = text.encode("utf-8")
    return data[-OUTPUT_TAIL:].decode("utf-8", "ignore") if len(data) > OUTPUT_TAIL else text


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command's whole process group, SIGKILL to what is left after KILL_GRACE."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_GRACE)
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stop_on_interrupt(proc: subprocess.Popen[bytes]) -> None:
    """An interrupted run leaves no handler behind (the service stays pending); a second
    Ctrl-C during the grace kills the group at once."""
    try:
        _kill_group(proc)
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """Does a live (not zombie) process remain in the group? Where PID 1 does not reap (a
    container), killed members stay zombies, and signal 0 still reaches them."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = [child.name for child in Path("/proc").iterdir()]
    except OSError:
        return True  # no /proc: trust the signal
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii", errors="replace")
            fields = stat.rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
