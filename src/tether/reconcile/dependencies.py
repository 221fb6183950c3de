"""What a plan from a folder depended on, path by path, so a plan that found nothing to do can
be cached (`state.plancache`) and the next one vouched for by stat signatures alone.

Only a plan every input of which is a path is cached: from a plain folder (a git clone's
state depends on its mirror too), with a literal allowlist (a glob depends on every folder
it walks), with no owner or group to look up (the user database is not a path tether
watches), with no secret the environment overrides, with no destination reached through a
symlinked folder (its real folders are not on its path), that warned of nothing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tether.config.hosts import HOSTS_FOLDER
from tether.config.manifest import MANIFEST_NAME
from tether.config.sourcetree import FolderTree
from tether.hostfs.fsutil import git_work_tree
from tether.hostfs.probe import Sig
from tether.reconcile.applier import Report
from tether.reconcile.engine import Run, root_input
from tether.reconcile.planner import Action, Plan
from tether.reconcile.report import summary
from tether.state.keyring import KEY_NAME
from tether.state.ledger import ledger_path
from tether.state.plancache import CachedPlan, drop_plan_cache, save_plan_cache
from tether.state.services import services_path


def folders_between(base: str, paths: Iterable[str]) -> Iterator[str]:
    """`base` and every folder between it and each of `paths` (all below `base`), as the paths
    come: in sorted order, a folder's files come together, so each folder comes once (a path
    out of order costs a folder again, never one missed). Nothing is held but the last path's."""
    yield base
    prefix = base.rstrip("/")  # "/" as a base: its folders are "/etc", not "//etc"
    last: list[str] = []
    last_parent = base
    for path in paths:
        parent = path.rpartition("/")[0]
        if parent == last_parent:  # the common case: the folder of the file before
            continue
        last_parent = parent
        parts = parent[len(prefix) + 1 :].split("/") if len(parent) > len(prefix) else []
        same = 0
        for mine, theirs in zip(parts, last, strict=False):
            if mine != theirs:
                break
            same += 1
        for depth in range(same, len(parts)):
            yield "/".join([prefix, *parts[: depth + 1]])
        last = parts


def _through_a_link(run: Run, plan: Plan) -> bool:
    """A destination reached through a symlinked folder (one inside the target root, which
    tether allows): the folders it really lies in are not those on its path, so the signatures
    of its path cannot vouch for it."""
    last = None
    for item in plan.items:
        parent = item.dest.rpartition("/")[0]
        if parent != last:  # one check a folder (the confinement keeps each folder's answer)
            last = parent
            if run.confinement.real_dest(item.dest)[0] != item.dest:
                return True
    return False


def _walk_folders(top: str) -> list[str]:
    """Every folder below `top` (links not followed); none when it does not exist."""
    return [folder for folder, _dirs, _files in os.walk(top)]


class Dependencies(NamedTuple):
    seen: Iterator[tuple[str, Sig | None]]  # files the plan read, with the signature seen then
    watched: Iterator[str]  # the other paths it read or looked for
    resolved: dict[str, str]  # paths whose symlinks it resolved, with the real path found


def dependencies(run: Run, plan: Plan, explicit_root: str | None) -> Dependencies | None:
    """What `plan` depended on, or None when it depended on more than paths."""
    tree, repo = run.repo.tree, run.repo
    if not isinstance(tree, FolderTree) or repo.has_globs or git_work_tree(tree.root):
        return None
    if any(o.owner is not None or o.group is not None for o in repo.manifest.files):
        return None
    if any(name in os.environ for d in run.desired.files for name in d.secrets):
        return None
    if _through_a_link(run, plan):
        return None
    top = str(tree.root)

    def sources() -> Iterator[str]:
        return (f"{top}/{repo.source_path(d.path)}" for d in run.desired.files)

    def seen() -> Iterator[tuple[str, Sig | None]]:
        yield from zip(sources(), (d.source_sig for d in run.desired.files), strict=True)
        yield from ((i.dest, i.a_sig) for i in plan.items)

    inventories = [repo.manifest.inventory, *(repo.profile.inventory if repo.profile else ())]
    others = [
        *(f"{top}/{name}" for name in (MANIFEST_NAME, *inventories)),
        # tether's own files the plan read: a missing one is recorded as absent
        str(run.state_dir / KEY_NAME),
        str(ledger_path(run.ledger_dir)),
        str(ledger_path(run.state_dir)),
        str(services_path(run.state_dir)),
    ]
    if run.store.path is not None:
        others.append(str(run.store.path))
    if repo.profile is not None:  # a file put in the host's overlay changes where one comes from
        overlay = f"{top}/{HOSTS_FOLDER}/{repo.profile.name}"
        others += [f"{top}/{HOSTS_FOLDER}", overlay, *_walk_folders(overlay)]
    real_top = os.path.realpath(top)
    # a `.git` appearing in or above the folder makes it a clone, whose state the plan reports
    others += [str(folder / ".git") for folder in (Path(real_top), *Path(real_top).parents)]
    watched = itertools.chain(
        others,
        folders_between(top, sources()),
        folders_between(run.root, (i.dest for i in plan.items)),
    )
    resolved = {top: real_top, explicit_root or root_input(repo.manifest): run.root}
    return Dependencies(seen(), watched, resolved)


def cache_quiet_plan(
    run: Run,
    report: Report,
    key: Mapping[str, Any],
    *,
    warned: bool,
    explicit_root: str | None,
    text: str,
    exit_code: int,
    started_ns: int,
) -> bool:
    """Cache the plan when it found nothing to do (every file in sync, nothing to record, no
    warning: `warned`, said on stderr, is not in the report) and depended on paths only;
    otherwise drop any cached plan. True if cached."""
    items = report.plan.items
    quiet = (
        not warned
        and exit_code == 0
        and report.dry_run
        and not report.failed
        and not report.warnings
        and not run.desired.warnings
        and run.repo.tree.stale is None
        and all(i.action == Action.IN_SYNC and not i.record for i in items)
        and not any(s.action == "run" for s in report.services)
    )
    found = dependencies(run, report.plan, explicit_root) if quiet else None
    if found is None:
        drop_plan_cache(run.state_dir)
        return False
    plan = CachedPlan(text, summary(report), exit_code, run.desired.revision)
    return save_plan_cache(
        run.state_dir,
        key,
        seen=found.seen,
        watched=found.watched,
        resolved=found.resolved,
        plan=plan,
        started_ns=started_ns,
    )
