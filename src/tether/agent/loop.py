"""The foreground agent: reconcile on every tick, for hosts and containers without systemd.

Each tick runs tether again as a child process, so a crash in one tick never kills the loop.
Failed ticks (exit code ERROR, BUG, USAGE, or killed) back off exponentially up to a cap;
SIGTERM and SIGINT end the loop at once when it waits, and after forwarding the signal to the
running child otherwise. The suspend flag in the state dir (the same file the systemd units
test with ConditionPathExists=) makes ticks skip until it is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from tether.agent.units import SUSPEND_FLAG
from tether.errors import StateError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import write_atomic
from tether.stamps import utc_stamp
from tether.state.runs import RunRecord, record_run, runs_path
from tether.textsafe import counted

SUCCESS_CODES = frozenset({ExitCode.OK, ExitCode.CHANGES, ExitCode.ATTENTION})
MAX_BACKOFF = 3600.0
BACKOFF_FACTOR = 8  # never wait more than 8 intervals (nor more than MAX_BACKOFF)
STOP_GRACE = 60.0  # how long a child may take to stop after a forwarded signal


# ---- suspend switch -------------------------------------------------------------------------


@dataclass(frozen=True)
class Suspension:
    since: str
    reason: str


def suspend_flag(state_dir: Path) -> Path:
    return state_dir / SUSPEND_FLAG


def suspension(state_dir: Path) -> Suspension | None:
    """The suspension in force, or None; an unreadable flag still means suspended."""
    flag = suspend_flag(state_dir)
    try:
        text = flag.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Suspension("unknown", f"flag file unreadable ({exc.strerror})")
    except UnicodeDecodeError:
        return Suspension("unknown", "flag file is not UTF-8")
    try:
        data = json.loads(text)
        return Suspension(str(data.get("since", "unknown")), str(data.get("reason", "")))
    except (ValueError, AttributeError):
        return Suspension("unknown", text.strip()[:200])


def suspend(state_dir: Path, reason: str | None) -> Suspension:
    record = Suspension(utc_stamp(), reason or "")
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = {"since": record.since, "reason": record.reason}
        write_atomic(suspend_flag(state_dir), json.dumps(payload).encode() + b"\n", 0o644)
    except OSError as exc:
        raise StateError(
            f"{suspend_flag(state_dir)}: cannot write the suspend flag ({exc.strerror})",
            hint="run as the user that owns the state dir",
        ) from None
    return record


def resume(state_dir: Path) -> bool:
    """Remove the flag; False when the agent was not suspended."""
    try:
        suspend_flag(state_dir).unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateError(
            f"{suspend_flag(state_dir)}: cannot remove the suspend flag ({exc.strerror})",
            hint="run as the user that owns the state dir",
        ) from None
    return True


# ---- the loop -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopConfig:
    command: tuple[str, ...]  # one tick: normally tether reconcile --apply <options>
    state_dir: Path
    interval: float = 300.0
    jitter: float = 30.0
    once: bool = False
    max_backoff: float | None = None  # default: min(8 x interval, 1h), never below interval
    # the run-history name of a tick ("reconcile --apply"): a failed tick that recorded nothing
    # (a usage error, a crash before the command started) is recorded by the loop under it
    record_as: str | None = None
    # what the ticks run until one succeeds, if not `command` (agent run --bring-up)
    first: tuple[str, ...] | None = None

    def cap(self) -> float:
        if self.max_backoff is not None:
            return self.max_backoff
        return max(self.interval, min(self.interval * BACKOFF_FACTOR, MAX_BACKOFF))


def next_delay(config: LoopConfig, failures: int, rand: Callable[[], float]) -> float:
    """Seconds to wait after a tick: the interval, doubled per failure in a row, capped."""
    base = config.interval * (2**failures) if failures else config.interval
    return min(base, config.cap()) + config.jitter * rand()


def describe(code: int) -> str:
    if code < 0:
        return f"killed by signal {-code}"
    try:
        return ExitCode(code).name.lower()
    except ValueError:
        return f"exit {code}"


def log(message: str) -> None:
    print(f"{utc_stamp()} tether agent: {message}", file=sys.stderr, flush=True)


class _Signals:
    """SIGTERM/SIGINT -> a flag plus a byte on a self-pipe, so `select` wakes at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        child = self.child
        if first and child is not None and child.poll() is None:
            # children run in their own session, so only this forward reaches them
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Signals]:
        previous = {s: signal.signal(s, self.handle) for s in (signal.SIGTERM, signal.SIGINT)}
        old_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        try:
            yield self
        finally:
            signal.set_wakeup_fd(old_fd)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._read)
            os.close(self._write)

    def stopped(self) -> bool:
        return self.received is not None

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a stop signal came."""
        deadline = time.monotonic() + seconds
        while self.received is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._read, 512)
        return True


def _relay(stream: IO[bytes], last: list[str]) -> None:
    """Copy the child's stderr to ours as it comes, keeping its last non-empty line."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        with contextlib.suppress(OSError, ValueError):  # keep draining: a full pipe blocks it
            sys.stderr.write(line)
            sys.stderr.flush()
        if line.strip():
            last[0] = line.strip()
    stream.close()


def _run_tick(command: Sequence[str], signals: _Signals) -> tuple[int, str]:
    """The tick's exit code and the last line it wrote on stderr (its error, when it failed)."""
    try:
        child = subprocess.Popen(list(command), start_new_session=True, stderr=subprocess.PIPE)
    except OSError as exc:
        log(f"cannot start {command[0]}: {exc.strerror}")
        return int(ExitCode.ERROR), f"cannot start {command[0]}: {exc.strerror}"
    last = [""]
    assert child.stderr is not None
    relay = threading.Thread(target=_relay, args=(child.stderr, last), daemon=True)
    relay.start()
    signals.child = child
    try:
        try:
            return child.wait(timeout=None), last[0]
        finally:
            if signals.received is not None and child.poll() is None:
                try:
                    child.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            relay.join(timeout=5)
    finally:
        signals.child = None


def _history_mark(state_dir: Path) -> tuple[int, int] | None:
    try:
        st = runs_path(state_dir).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _record_unrecorded(
    config: LoopConfig, started: float, took: float, code: int, why: str
) -> None:
    """A failed tick that left no run record (it stopped before reconcile began) gets one."""
    if config.record_as is None:
        return
    message = why[:300] or f"the tick ended: {describe(code)}"
    exit_code = code if code >= 0 else int(ExitCode.ERROR)  # killed: no exit code of its own
    run = RunRecord(config.record_as, started, took, exit_code, message=message)
    try:
        record_run(config.state_dir, run)
    except StateError as exc:
        log(f"cannot record the failed tick: {exc.line()}")


def run_loop(config: LoopConfig, rand: Callable[[], float] = random.random) -> int:
    """Tick until a stop signal (exit OK) or, with `once`, return the one tick's exit code."""
    signals = _Signals()
    failures = 0
    first = config.first
    reported: Suspension | None = None
    with signals.installed():
        tick = 0
        while signals.received is None:
            held = suspension(config.state_dir)
            if held is not None:
                if held != reported:
                    why = f": {held.reason}" if held.reason else ""
                    log(f"suspended since {held.since}{why}; skipping ticks until resumed")
                reported = held
                if config.once:
                    return int(ExitCode.OK)
            else:
                if reported is not None:
                    log("resumed")
                    reported = None
                tick += 1
                started, wall = time.monotonic(), time.time()
                mark = _history_mark(config.state_dir)
                code, last_line = _run_tick(first or config.command, signals)
                if code in SUCCESS_CODES:
                    first = None
                took = time.monotonic() - started
                if signals.stopped():
                    log(f"tick {tick} stopped by signal ({describe(code)}, {took:.1f}s)")
                    break
                if code not in SUCCESS_CODES and _history_mark(config.state_dir) == mark:
                    _record_unrecorded(config, wall, took, code, last_line)
                if config.once:
                    return code
                failures = 0 if code in SUCCESS_CODES else failures + 1
                delay = next_delay(config, failures, rand)
                state = f"backing off after {counted(failures, 'failure')}" if failures else "next"
                log(f"tick {tick}: {describe(code)} in {took:.1f}s; {state} in {delay:.0f}s")
                if signals.wait(delay):
                    break
                continue
            if signals.wait(next_delay(config, failures, rand)):
                break
        log(f"stopping on {signal.Signals(signals.received or signal.SIGTERM).name}")
    return int(ExitCode.OK)
