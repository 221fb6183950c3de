"""Plans and apply reports as text (grouped and counted, like `terraform plan`) and JSON.

Secret values never reach this module's output: diffs are masked, JSON holds keyed hashes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from tether.exitcodes import ExitCode
from tether.reconcile.applier import Outcome, Report
from tether.reconcile.planner import ATTENTION, Action, Item
from tether.secrets.render import mask
from tether.textsafe import printable

SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.PRUNE: "-",
    Action.DRIFT: "!",
    Action.CONFLICT: "!",
    Action.PREEXISTING: "!",
    Action.BLOCKED: "x",
    Action.IN_SYNC: "=",
}
SUMMARY_KEYS = (
    "create",
    "update",
    "in_sync",
    "drift",
    "conflict",
    "preexisting",
    "blocked",
    "prune",
)
MAX_DIFF_BYTES = 1 << 20


def exit_code(report: Report) -> ExitCode:
    if report.failed:
        return ExitCode.ERROR
    if report.plan.attention or any(r.result != "ok" for r in report.service_results):
        return ExitCode.ATTENTION
    if report.dry_run and report.plan.changes:
        return ExitCode.CHANGES
    return ExitCode.OK


def summary(report: Report) -> dict[str, int]:
    counts = report.plan.count()
    return {key: counts[key] for key in SUMMARY_KEYS}


def _line(outcome: Outcome, layer: str = "shared") -> str:
    item = outcome.item
    text = f"  {SYMBOL[item.action]} {item.action.value:<12} {item.dest}"
    if layer == "host":
        text += "  [host layer]"
    reason = outcome.error or item.reason
    if outcome.error:
        text = f"  x {'failed':<12} {item.dest}"
    if reason:
        text += f"  ({reason})"
    if outcome.backup:
        text += f"  [backup {outcome.backup.id}]"
    return text


def _changes(item: Item) -> bool:
    return item.changes


def _needs_attention(item: Item) -> bool:
    return item.action in ATTENTION and not item.changes


def summary_line(report: Report) -> str:
    counts = summary(report)
    written = [o for o in report.where(_changes) if o.done or report.dry_run]
    attention = report.where(_needs_attention)
    created = sum(1 for o in written if o.item.write and o.item.action == Action.CREATE)
    updated = sum(1 for o in written if o.item.write and o.item.action != Action.CREATE)
    pruned = sum(1 for o in written if o.item.remove)
    if report.dry_run:
        head = f"Plan: {created} to create, {updated} to update, {pruned} to prune"
    else:
        head = f"Applied: {created} created, {updated} updated, {pruned} pruned"
    head += f", {counts['in_sync']} in sync"
    if attention:
        kinds = {a: sum(1 for o in attention if o.item.action == a) for a in ATTENTION}
        detail = ", ".join(f"{n} {a.value}" for a, n in sorted(kinds.items()) if n)
        head += f"; {len(attention)} need attention ({detail})"
    if report.failed:
        head += f"; {len(report.failed)} failed"
    if report.backups:
        head += f"; {len(report.backups)} backed up"
    return head + "."


def render_text(
    report: Report,
    header: str,
    diff_for: Callable[[Item], str | None] | None = None,
    *,
    detail: int = 0,
    paint: Callable[[str, str], str] = lambda _action, text: text,
) -> str:
    """The plan or the apply as text. `detail` -1 (quiet): only what needs a person, warnings
    and the summary line; 1 (verbose): also the files already in sync. `paint(action, line)`
    may colour a file's line by its action."""
    lines = [*map(printable, header.split("\n")), ""] if detail >= 0 else []
    changes = report.where(_changes)
    attention = report.where(_needs_attention)
    kept = report.where(lambda i: i.action == Action.PRUNE and not i.changes)
    in_sync = report.where(lambda i: i.action == Action.IN_SYNC, in_sync=True) if detail > 0 else []
    title = "Changes" if report.dry_run else "Changed"
    groups = [(title, changes), ("Needs attention", attention), ("Not pruned", kept)]
    if detail < 0:
        groups = [("Needs attention", attention)]
    for name, group in [*groups, ("In sync", in_sync)]:
        if not group:
            continue
        lines.append(f"{name} ({len(group)}):")
        for outcome in group:
            action = "failed" if outcome.error else outcome.item.action.value
            line = printable(_line(outcome, report.layers.get(outcome.item.path, "shared")))
            lines.append(paint(action, line))
            text = diff_for(outcome.item) if diff_for else None
            if text:
                lines.extend("      " + printable(x) for x in text.rstrip("\n").split("\n"))
        lines.append("")
    if detail >= 0:
        if not changes and not attention and not any(s.action == "run" for s in report.services):
            lines.append("Nothing to do: the host matches the desired state.")
            lines.append("")
        elif not changes and not attention:
            lines.append("No file to change: the host's files match the desired state.")
            lines.append("")
        lines.extend(printable(line) for line in _services_text(report))
    lines.extend(printable(f"warning: {warning}") for warning in report.warnings)
    lines.append(printable(summary_line(report)))
    return "\n".join(lines)


def _services_text(report: Report) -> list[str]:
    """The services that run (or would) after the files, in order, and why."""
    shown = [s for s in report.services if s.action != "skip"]
    if not shown:
        return []
    results = {r.name: r for r in report.service_results}
    lines = [f"Services ({len(shown)}, in order):"]
    for selected in shown:
        result = results.get(selected.service.name)
        if result is None:
            word = "run" if selected.action == "run" else "pending"
            lines.append(f"  > {word:<12} {selected.service.name}  ({selected.reason})")
        elif result.result == "ok":
            lines.append(
                f"  > {'ok':<12} {result.name}  ({result.seconds:.1f}s; {selected.reason})"
            )
        else:
            lines.append(f"  x {result.result:<12} {result.name}  ({result.reason})")
    lines.append("")
    return lines


def services_json(report: Report) -> list[dict[str, Any]]:
    results = {r.name: r for r in report.service_results}
    rows: list[dict[str, Any]] = []
    for selected in report.services:
        row: dict[str, Any] = selected.to_json()
        result = results.get(selected.service.name)
        if result is not None:
            row.update(result.to_json())
        elif not report.dry_run:
            row.update({"result": "not-run", "exit": None, "seconds": 0})
        rows.append(row)
    return rows


def to_json(report: Report, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    files = []
    for outcome in report.outcomes:
        item = outcome.item
        row: dict[str, Any] = {
            "path": item.path,
            "dest": item.dest,
            "layer": report.layers.get(item.path, "shared"),
            "action": item.action.value,
            "reason": item.reason,
            "write": item.write,
            "remove": item.remove,
        }
        if not report.dry_run and item.changes:
            row["done"] = outcome.done
        if outcome.error:
            row["error"] = outcome.error
        if outcome.backup:
            row["backup"] = outcome.backup.id
        files.append(row)
    doc: dict[str, Any] = {
        "revision": report.revision,
        "dry_run": report.dry_run,
        "summary": summary(report),
        "files": files,
        "backups": [asdict(b) for b in report.backups],
        "services": services_json(report),
        "warnings": report.warnings,
    }
    doc.update(extra or {})
    return doc


def unified(
    old: bytes | None,
    new: bytes | None,
    secrets: Mapping[str, str],
    a: str,
    b: str,
    *,
    label: str = "(secret {})",
) -> str:
    """A unified diff with every known secret value masked as `label` with its name."""
    if old == new:
        return ""
    if (old and len(old) > MAX_DIFF_BYTES) or (new and len(new) > MAX_DIFF_BYTES):
        return f"(files larger than {MAX_DIFF_BYTES} bytes: no diff shown)"
    try:
        old_text = (old or b"").decode("utf-8")
        new_text = (new or b"").decode("utf-8")
    except UnicodeDecodeError:
        return "Binary files differ"
    if "\0" in old_text or "\0" in new_text:
        return "Binary files differ"
    diff = difflib.unified_diff(
        mask(old_text, secrets, label).splitlines(keepends=True),
        mask(new_text, secrets, label).splitlines(keepends=True),
        a if old is not None else "/dev/null",
        b,
    )
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in diff)
