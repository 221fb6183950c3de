"""A plan saved with `--out PLAN.json` and applied later with `tether apply PLAN.json`.

It holds keyed hashes of what each destination held and should hold, never secret values, so
`tether apply` can compare-and-swap: refuse the whole plan if anything moved since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.errors import StateError
from tether.reconcile.applier import Report
from tether.reconcile.report import to_json

FORMAT = "tether-plan/1"


@dataclass(frozen=True)
class PlanContext:
    source: str | None
    repo: str | None
    ref: str | None
    target_root: str
    target_home: str
    state_dir: str
    secrets_file: str | None
    key_id: str
    overwrite: bool
    prune: bool
    host: str | None = None  # the profile of `hosts:` the plan was made for


def plan_document(report: Report, context: PlanContext) -> dict[str, Any]:
    doc = to_json(report, {"format": FORMAT, "context": context.__dict__})
    by_dest = {i.dest: i for i in report.plan.items}
    for row in doc["files"]:
        item = by_dest[row["dest"]]
        row["desired_hash"] = item.d_hash
        row["actual_hash"] = item.a_hash
        row["backup_first"] = item.backup
    return doc


_TEXT = ("target_root", "target_home", "state_dir", "key_id")
_OPTIONAL_TEXT = ("source", "repo", "ref", "secrets_file", "host")


def _check_types(context: PlanContext) -> None:
    """A hand-edited or foreign context fails here, not as a TypeError deep in apply."""
    fields = context.__dict__
    ok = all(isinstance(fields[k], str) for k in _TEXT)
    ok = ok and all(fields[k] is None or isinstance(fields[k], str) for k in _OPTIONAL_TEXT)
    if not ok or not isinstance(context.overwrite, bool) or not isinstance(context.prune, bool):
        raise TypeError("bad context")


@dataclass(frozen=True)
class SavedItem:
    dest: str
    action: str
    write: bool
    remove: bool
    backup: bool
    desired_hash: str | None
    actual_hash: str | None


def load_plan(path: Path) -> tuple[PlanContext, list[SavedItem]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(f"{path}: no such plan file", hint="save one with --out") from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise StateError(f"{path}: cannot read the plan ({why})") from None
    found = doc.get("format") if isinstance(doc, dict) else None
    if isinstance(found, str) and found.startswith("tether-plan/") and found != FORMAT:
        raise StateError(
            f"{path}: made by another tether version ({found}; this one reads {FORMAT})",
            hint="make a new plan with this tether: `tether reconcile --plan --out PLAN.json`",
        )
    try:
        if found != FORMAT:
            raise ValueError
        context = PlanContext(**doc["context"])
        _check_types(context)
        items = [
            SavedItem(
                row["dest"],
                row["action"],
                bool(row["write"]),
                bool(row["remove"]),
                bool(row["backup_first"]),
                row["desired_hash"],
                row["actual_hash"],
            )
            for row in doc["files"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StateError(
            f"{path}: not a tether plan ({FORMAT})",
            hint="save one with `tether reconcile --plan --out PLAN.json`",
        ) from None
    return context, items
