"""The services step of a reconcile run: which services an apply (or a plan) brings up, and
running their handlers with this run's revision, folders and secrets to mask.

Shared by `reconcile`, `apply PLAN.json` and `services run`; the services to consider are
passed in, so a caller can narrow the manifest's list first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.config.manifest import Service
from tether.errors import warn
from tether.reconcile.applier import Report
from tether.reconcile.engine import Run
from tether.reconcile.services import (
    HandlerEnv,
    Selected,
    ServiceResult,
    owners,
    run_selected,
    select,
)
from tether.secrets.render import mask
from tether.state.runlog import RunOutcome
from tether.state.services import load_services
from tether.textsafe import printable

FAILURE_LINES = 10  # lines of a failed handler's (masked) output shown on stderr


@dataclass(frozen=True)
class ServiceOptions:
    bring_up: bool = False  # run every service, changed or not (a restore)
    handlers: bool = True  # False: write files only; the services stay pending

    def of(self, run: Run) -> Sequence[Service]:
        """The services this run considers: the manifest's."""
        return run.repo.manifest.services


def bring_up_services(
    run: Run, report: Report, options: ServiceOptions, outcome: RunOutcome
) -> None:
    """After the files: choose the services, run them on a real apply, record the results in
    `report` and in the run's outcome (masked output included)."""
    dry_run = report.dry_run
    report.services = plan_services(
        run,
        report,
        options.of(run),
        bring_up=options.bring_up,
        handlers=options.handlers,
    )
    if dry_run or not options.handlers:
        return
    report.service_results = run_handlers(run, report.services, notify=warn)
    outcome.services = [r.to_json(output=True) for r in report.service_results]
    for result in report.service_results:
        if result.result == "failed":
            warn(f"service {result.name} failed ({result.reason}); it stays pending")
            tail = result.commands[-1].output.rstrip("\n").split("\n")[-FAILURE_LINES:]
            for line in tail:
                if line:
                    print(f"    {printable(line)}", file=sys.stderr)
        elif result.result == "not-run":
            warn(f"service {result.name} not run ({result.reason}); it stays pending")


def plan_services(
    run: Run,
    report: Report | None,
    services: Sequence[Service],
    *,
    bring_up: bool = False,
    handlers: bool = True,
    only: Sequence[str] | None = None,
) -> list[Selected]:
    """Who runs after this apply (or would, after this plan), in order, and why."""
    changed: list[str] = []
    if report is not None:
        acted = report.where(lambda i: i.changes)
        changed = [o.item.path for o in acted if o.done or report.dry_run]
    return select(
        services,
        owners(services, changed),
        load_services(run.state_dir),
        bring_up=bring_up,
        handlers=handlers,
        only=only,
    )


def folder_finder(run: Run) -> Callable[[Service, Sequence[str]], Path]:
    """The folder of the service's first matching file (a changed one first) that exists."""
    dests = {f.path: f.dest for f in run.desired.files}
    for entry_dest, entry in run.ledger.items():
        dests.setdefault(entry.path, entry_dest)

    def folder_of(service: Service, changed: Sequence[str]) -> Path:
        mine = owners([service], dests).get(service.name, ())
        for path in (*changed, *mine):
            dest = dests.get(path)
            if dest is not None and (folder := Path(dest).parent).is_dir():
                return folder
        return Path(run.root)

    return folder_of


def run_handlers(
    run: Run, chosen: Sequence[Selected], notify: Callable[[str], None] | None = None
) -> list[ServiceResult]:
    secrets = run.secrets_to_mask()
    if any(s.action == "run" for s in chosen):
        from tether.git.remote import TOKEN_ENV  # noqa: PLC0415 (dulwich loads only if needed)

        # handlers inherit tether's environment: one echoing the git token stays masked
        if token := os.environ.get(TOKEN_ENV):
            secrets[TOKEN_ENV] = token
    env = HandlerEnv(
        state_dir=run.state_dir,
        revision=run.desired.revision,
        folder_of=folder_finder(run),
        mask=lambda text: mask(text, secrets),
    )
    return run_selected(chosen, env, notify=notify)
