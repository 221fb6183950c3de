"""`tether hooks install [REPO]`: plain git pre-commit and pre-push hooks that run tether scan.

The hooks go where git looks for them (`core.hooksPath` when set, else the common git dir's
`hooks/`). A hook tether did not write is never replaced silently: without `--force` the
install stops before writing anything; `--chain` keeps it beside ours and ours runs it after
a clean scan; `--force` replaces it and keeps a copy.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from tether.errors import TetherError, UsageError
from tether.exitcodes import ExitCode
from tether.git.read import hooks_dir
from tether.hostfs.fsutil import write_atomic
from tether.secrets.hooks import HOOK_NAMES, MARKER

CHAINED_SUFFIX = ".tether-chained"
BACKUP_SUFFIX = ".tether-backup"
_DEFAULT_LINE = "TETHER=${TETHER:-tether}"


def hook_text(name: str, tether: str | None = None) -> str:
    """The hook script; `tether` pins the executable git should run when PATH lacks one."""
    text = resources.files("tether").joinpath("templates", "hooks", name).read_text("utf-8")
    if tether:
        text = text.replace(_DEFAULT_LINE, f"TETHER=${{TETHER:-{_sh_quote(tether)}}}", 1)
    return text


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def installed_tether() -> str | None:
    """The `tether` executable beside the running interpreter (a venv's bin), if any."""
    beside = Path(sys.executable).parent / "tether"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("tether")


@dataclass(frozen=True)
class Plan:
    name: str
    target: Path
    action: str  # "create", "update" (ours), "chain", "replace"


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text("utf-8", errors="replace")
    except OSError:
        return False


def plan_install(folder: Path, *, force: bool, chain: bool) -> list[Plan]:
    plans = []
    foreign = []
    for name in HOOK_NAMES:
        target = folder / name
        if not (target.exists() or target.is_symlink()):
            plans.append(Plan(name, target, "create"))
        elif _is_ours(target):
            plans.append(Plan(name, target, "update"))
        elif chain:
            kept = target.with_name(name + CHAINED_SUFFIX)
            if kept.exists() or kept.is_symlink():
                raise TetherError(
                    f"{target}: a chained hook is already kept at {kept}",
                    hint="merge the two by hand, or use --force",
                )
            plans.append(Plan(name, target, "chain"))
        elif force:
            plans.append(Plan(name, target, "replace"))
        else:
            foreign.append(str(target))
    if foreign:
        raise TetherError(
            f"{', '.join(foreign)}: a hook tether did not write is already installed",
            hint="--chain keeps it and runs it after tether's; --force replaces it (a copy is "
            "kept as *.tether-backup)",
        )
    return plans


def install(path: Path, *, force: bool = False, chain: bool = False) -> int:
    if force and chain:
        raise UsageError(
            "--force and --chain ask for two things",
            hint="--chain keeps the foreign hook, --force replaces it: give one",
        )
    folder = hooks_dir(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        plans = plan_install(folder, force=force, chain=chain)
        tether = installed_tether()
        for plan in plans:
            if plan.action == "chain":
                plan.target.replace(plan.target.with_name(plan.name + CHAINED_SUFFIX))
            elif plan.action == "replace":
                shutil.copy2(plan.target, plan.target.with_name(plan.name + BACKUP_SUFFIX))
            write_atomic(plan.target, hook_text(plan.name, tether).encode(), 0o755)
    except OSError as exc:
        raise TetherError(
            f"{folder}: cannot install hooks ({exc.strerror})",
            hint="check the folder's permissions",
        ) from None
    for plan in plans:
        note = {
            "create": "installed",
            "update": "updated",
            "chain": f"installed (the previous hook now runs after it: {plan.name}"
            f"{CHAINED_SUFFIX})",
            "replace": f"installed (replaced; copy in {plan.name}{BACKUP_SUFFIX})",
        }[plan.action]
        click.echo(f"{plan.target}: {note}", err=True)
    return int(ExitCode.OK)
