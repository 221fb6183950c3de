"""The run history: one JSON line per reconcile or capture run, the last MAX_RUNS kept.

Rewritten whole under an flock (read, append, trim, temp file, rename), so a reader never sees
a half-written line and two runs finishing together both land.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import StateError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import exclusive_lock, write_atomic
from tether.state.statedir import remove_left_temps

RUNS_FILE = "runs.jsonl"
# Records written before exit codes were renumbered carry no "codes" field: 1 meant changes
# pending, 2 a usage error, 4 an error.
CODES_VERSION = 2
_FIRST_CODES = {1: ExitCode.CHANGES, 2: ExitCode.USAGE, 4: ExitCode.ERROR}
MAX_RUNS = 200
FAILED_CODES = frozenset(
    {ExitCode.USAGE, ExitCode.ERROR, ExitCode.BUG, ExitCode.INTERRUPTED, ExitCode.CLOSED_PIPE}
)


def result_word(exit_code: int) -> str:
    try:
        return ExitCode(exit_code).name.lower()
    except ValueError:
        return "unknown"


@dataclass(frozen=True)
class RunRecord:
    """One run: what was asked, how it ended, what it did (counts per plan action)."""

    command: str  # "reconcile --apply", "reconcile --plan", "capture"
    started: float  # unix time
    duration: float  # seconds
    exit_code: int
    counts: Mapping[str, int] = field(default_factory=dict)  # action -> files
    revision_attempted: str | None = None
    revision_applied: str | None = None
    message: str | None = None  # the one error line when it failed (never a secret)
    # service handlers run: name, result, exit, seconds, each command's output tail (masked)
    services: tuple[Mapping[str, Any], ...] = ()

    @property
    def result(self) -> str:
        return result_word(self.exit_code)

    @property
    def failed(self) -> bool:
        return self.exit_code in FAILED_CODES or self.exit_code not in set(ExitCode)

    @property
    def kind(self) -> str:
        return self.command.split()[0] if self.command else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "started": self.started,
            "duration": round(self.duration, 3),
            "exit_code": self.exit_code,
            "codes": CODES_VERSION,
            "result": self.result,
            "counts": dict(sorted(self.counts.items())),
            "revision_attempted": self.revision_attempted,
            "revision_applied": self.revision_applied,
            "message": self.message,
            **({"services": list(self.services)} if self.services else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        counts = data.get("counts") or {}
        if not isinstance(counts, dict):
            raise TypeError("counts is not an object")
        return cls(
            command=str(data["command"]),
            started=float(data["started"]),
            duration=float(data["duration"]),
            exit_code=_current_code(int(_either(data, "exit_code", "exitCode")), data.get("codes")),
            counts={str(k): int(v) for k, v in counts.items()},
            revision_attempted=_optional(_either(data, "revision_attempted", "revisionAttempted")),
            revision_applied=_optional(_either(data, "revision_applied", "revisionApplied")),
            message=_optional(data.get("message")),
            services=tuple(s for s in data.get("services") or () if isinstance(s, dict)),
        )


def _either(data: Mapping[str, Any], key: str, before: str) -> Any:
    """`key`, or its camelCase name in a history written before keys were snake_case."""
    return data[key] if key in data else data.get(before)


def _current_code(code: int, version: object) -> int:
    if version is None:
        return int(_FIRST_CODES.get(code, code))
    return code


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def runs_path(state_dir: Path) -> Path:
    return state_dir / RUNS_FILE


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with exclusive_lock(state_dir / f".{RUNS_FILE}.lock"):
        yield


def _parse(text: str) -> list[RunRecord]:
    runs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            runs.append(RunRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):  # e.g. a line of `null`
            continue  # a hand-edited or foreign line: skip it, keep the rest
    return runs


def load_runs(state_dir: Path) -> list[RunRecord]:
    """Every recorded run, oldest first; none when nothing was recorded yet."""
    path = runs_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise StateError(
            f"{path}: cannot read the run history ({reason})",
            hint="check its permissions, or delete it to start a new history",
        ) from None
    return _parse(text)


def record_run(state_dir: Path, run: RunRecord, *, keep: int = MAX_RUNS) -> None:
    """Append `run`, keeping the last `keep` runs."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(state_dir):
            runs = [*load_runs(state_dir), run][-keep:]
            text = "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in runs)
            remove_left_temps(runs_path(state_dir))
            write_atomic(runs_path(state_dir), text.encode("utf-8"), 0o600)
    except OSError as exc:
        raise StateError(
            f"{runs_path(state_dir)}: cannot record the run ({exc.strerror})",
            hint="check that the state dir is writable and the disk is not full",
        ) from None
