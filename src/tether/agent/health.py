"""The health of one host from its state dir: Flux-style conditions, revisions, what is left.

`tether status` prints it; the fleet report (refs/tether/status/<host>) carries it to git.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.agent.loop import Suspension, suspension
from tether.errors import StateError
from tether.exitcodes import ExitCode
from tether.state.lock import lock_held
from tether.state.runs import RunRecord, load_runs
from tether.state.services import ServiceRecord, load_services, pending_names

RECONCILE_KINDS = ("reconcile", "apply")  # `tether apply PLAN.json` is a reconcile too
SHOWN_RUNS = 10
STALLED_AFTER = 3  # failed runs in a row
PENDING_ACTIONS = ("drift", "conflict", "preexisting", "blocked", "prune", "create", "update")
ATTENTION_ACTIONS = ("drift", "conflict", "preexisting", "blocked")  # apply leaves these alone


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown", as Kubernetes writes them
    reason: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }


def counts_text(counts: dict[str, int] | Any) -> str:
    parts = [f"{counts[a]} {a}" for a in PENDING_ACTIONS if counts.get(a)]
    return ", ".join(parts) or "no changes"


def applies(run: RunRecord) -> bool:
    """`reconcile --apply` or `apply PLAN.json`, not a plan."""
    return run.command.endswith("--apply") or run.command.startswith("apply ")


def pending_actions(last: RunRecord | None) -> dict[str, int]:
    """What the last reconcile left to do: all of a plan; after an apply, what needs a person.

    The counts are the plan's; an apply did the creates, updates (and overwrites, prunes when
    asked) and exits 3 only when something was left for a person.
    """
    if last is None:
        return {}
    left: tuple[str, ...] = PENDING_ACTIONS
    if applies(last):
        if last.exit_code != ExitCode.ATTENTION:
            return {}
        left = ATTENTION_ACTIONS
    return {a: n for a, n in last.counts.items() if a in left and n}


def ready_condition(last: RunRecord | None) -> Condition:
    if last is None:
        return Condition("Ready", "Unknown", "NeverRun", "no reconcile has been recorded yet")
    rev = last.revision_applied or last.revision_attempted or "unknown revision"
    if last.exit_code == ExitCode.OK and not applies(last):  # a plan: nothing was applied
        pending = pending_actions(last)
        if pending:
            return Condition("Ready", "False", "ChangesPending", counts_text(pending))
        return Condition("Ready", "True", "InSync", f"planned {rev}: nothing to apply")
    if last.exit_code == ExitCode.OK:
        return Condition("Ready", "True", "ReconciliationSucceeded", f"applied {rev}")
    if last.exit_code == ExitCode.CHANGES:
        return Condition("Ready", "False", "ChangesPending", counts_text(last.counts))
    if last.exit_code == ExitCode.ATTENTION:
        return Condition(
            "Ready", "False", "NeedsAttention", last.message or counts_text(last.counts)
        )
    return Condition(
        "Ready", "False", "ReconciliationFailed", last.message or f"exit code {last.exit_code}"
    )


def stalled_condition(reconciles: Sequence[RunRecord]) -> Condition:
    last = reconciles[-1] if reconciles else None
    if last is not None and last.exit_code in (ExitCode.USAGE, ExitCode.BUG):
        reason = "InvalidInvocation" if last.exit_code == ExitCode.USAGE else "InternalError"
        return Condition("Stalled", "True", reason, last.message or last.result)
    streak = 0
    for run in reversed(reconciles):
        if not run.failed:
            break
        streak += 1
    if streak >= STALLED_AFTER and last is not None:
        message = f"{streak} runs in a row failed; last: {last.message or last.result}"
        return Condition("Stalled", "True", "RepeatedFailures", message)
    return Condition("Stalled", "False", "Progressing", "")


def services_condition(records: dict[str, ServiceRecord] | None) -> Condition:
    if records is None:
        return Condition(
            "ServicesReady", "Unknown", "Unreadable", "the services file is unreadable"
        )
    failed = [n for n in pending_names(records) if records[n].error]
    pending = [n for n in pending_names(records) if not records[n].error]
    if failed:
        message = "; ".join(f"{n}: {records[n].state}" for n in failed)
        if pending:
            message += f"; pending: {', '.join(pending)}"
        return Condition("ServicesReady", "False", "HandlerFailed", message)
    if pending:
        return Condition("ServicesReady", "False", "HandlersPending", ", ".join(pending))
    return Condition("ServicesReady", "True", "HandlersSucceeded", "")


def capture_held_condition(runs: Sequence[RunRecord]) -> Condition:
    """True while the last capture held files back for a secret finding; a capture that saw
    every file (not --only) clears it, one that failed before deciding does not."""
    for run in reversed(runs):
        if run.kind != "capture" or run.exit_code not in (ExitCode.OK, ExitCode.ATTENTION):
            continue
        if run.counts.get("held"):
            return Condition("CaptureHeld", "True", "SecretFinding", run.message or "")
        if "--only" not in run.command.split():
            break
    return Condition("CaptureHeld", "False", "NothingHeld", "")


def build_status(state_dir: Path) -> dict[str, Any]:
    runs = load_runs(state_dir)
    reconciles = [r for r in runs if r.kind in RECONCILE_KINDS]
    last = reconciles[-1] if reconciles else None
    busy = lock_held(state_dir)
    held: Suspension | None = suspension(state_dir)
    conditions = [
        ready_condition(last),
        Condition(
            "Reconciling",
            "True" if busy else "False",
            "LockHeld" if busy else "Idle",
            "a tether run holds the lock" if busy else "",
        ),
        stalled_condition(reconciles),
    ]
    try:
        records: dict[str, ServiceRecord] | None = load_services(state_dir)
    except StateError:
        records = None
    conditions.append(services_condition(records))
    conditions.append(capture_held_condition(runs))
    applied = next((r.revision_applied for r in reversed(reconciles) if r.revision_applied), None)
    attempted = next(
        (r.revision_attempted for r in reversed(reconciles) if r.revision_attempted), None
    )
    pending = pending_actions(last)
    return {
        "state_dir": str(state_dir),
        "conditions": [c.to_json() for c in conditions],
        "last_applied_revision": applied,
        "last_attempted_revision": attempted,
        "pending_drift": pending,
        "suspended": held is not None,
        "suspended_since": held.since if held else None,
        "suspend_reason": held.reason if held else None,
        "pending_services": pending_names(records or {}),
        "services": [{"name": n, "state": r.state} for n, r in sorted((records or {}).items())],
        "runs": [r.to_json() for r in runs[-SHOWN_RUNS:]],
    }
