"""What each service's handlers still owe (`services.json` in the state dir).

A service becomes pending when an apply changes one of its files (the apply journal names it
first, so a killed apply still leaves it pending) and stays pending until all its commands
succeed. The file is replaced whole, fsynced, under the state dir's lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tether.errors import StateError
from tether.stamps import parse_utc_stamp, utc_stamp
from tether.state.statedir import write_state_file

SERVICES_FILE = "services.json"


@dataclass(frozen=True)
class ServiceRecord:
    pending: bool = False
    changed: tuple[str, ...] = ()  # inventory paths changed since the last success
    since: str | None = None  # when it became pending
    error: str | None = None  # the last attempt's failure ("exit 1", "timed out after 300s")
    failed_at: str | None = None
    last_success: float | None = None  # unix time

    @property
    def state(self) -> str:
        if self.error and self.pending:
            return f"failed: {self.error} at {self.failed_at}"
        return "pending" if self.pending else "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "changed": list(self.changed),
            "since": self.since,
            "error": self.error,
            "failed_at": self.failed_at,
            "last_success": self.last_success,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServiceRecord:
        success = data.get("last_success")
        return cls(
            pending=bool(data.get("pending")),
            changed=tuple(str(p) for p in data.get("changed") or ()),
            since=data.get("since"),
            error=data.get("error"),
            failed_at=data.get("failed_at"),
            last_success=float(success) if isinstance(success, int | float) else None,
        )


def services_path(state_dir: Path) -> Path:
    return state_dir / SERVICES_FILE


def load_services(state_dir: Path) -> dict[str, ServiceRecord]:
    try:
        data = json.loads(services_path(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StateError(
            f"{services_path(state_dir)}: unreadable ({exc})",
            hint="remove it; the next `tether reconcile --apply --bring-up` runs every service",
        ) from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise StateError(
            f"{services_path(state_dir)}: not a services file",
            hint="remove it; the next `tether reconcile --apply --bring-up` runs every service",
        )
    return {str(k): ServiceRecord.from_json(v) for k, v in services.items() if isinstance(v, dict)}


def save_services(state_dir: Path, records: Mapping[str, ServiceRecord]) -> None:
    doc = {"version": 1, "services": {k: r.to_json() for k, r in sorted(records.items())}}
    write_state_file(services_path(state_dir), json.dumps(doc, indent=1).encode("utf-8"), 0o600)


def mark_pending(state_dir: Path, changed: Mapping[str, Iterable[str]]) -> None:
    """Make each named service pending, adding the paths that changed for it (durably)."""
    if not changed:
        return
    records = load_services(state_dir)
    now = utc_stamp()
    for name, paths in changed.items():
        known = records.get(name, ServiceRecord())
        merged = tuple(dict.fromkeys((*known.changed, *paths)))
        records[name] = replace(
            known, pending=True, changed=merged, since=known.since if known.pending else now
        )
    save_services(state_dir, records)


def record_result(state_dir: Path, name: str, error: str | None, when: float) -> None:
    """One service's attempt ended: cleared on success, still pending (and why) on failure."""
    records = load_services(state_dir)
    known = records.get(name, ServiceRecord())
    if error is None:
        records[name] = ServiceRecord(last_success=when)
    else:
        records[name] = replace(known, pending=True, error=error, failed_at=utc_stamp(when))
    save_services(state_dir, records)


def forget(state_dir: Path, name: str) -> bool:
    """Clear one service's pending state; False when nothing was known about it."""
    records = load_services(state_dir)
    known = records.get(name)
    if known is None:
        return False
    records[name] = ServiceRecord(last_success=known.last_success)
    save_services(state_dir, records)
    return True


def stuck(
    records: Mapping[str, ServiceRecord], now: float, older_than: float = 86400.0
) -> list[str]:
    """Services pending for longer than `older_than` seconds."""
    names = []
    for name, record in sorted(records.items()):
        since = parse_utc_stamp(record.since) if record.since else None
        if record.pending and since is not None and now - since > older_than:
            names.append(name)
    return names


def pending_names(records: Mapping[str, ServiceRecord]) -> list[str]:
    return sorted(name for name, record in records.items() if record.pending)
