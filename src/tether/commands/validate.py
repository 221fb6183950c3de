"""`tether validate`: the manifest, the inventory, overrides, services and tracked files."""

from __future__ import annotations

import difflib

from tether.configrepo import ConfigRepo, open_config_repo
from tether.errors import InventoryError, ManifestError
from tether.exitcodes import ExitCode
from tether.findings import Finding, count, echo_findings, from_lines
from tether.inventory import matches
from tether.manifest import Service
from tether.sourcetree import SourceTree


def service_cycle(services: tuple[Service, ...]) -> list[str] | None:
    """A cycle in the `after` graph as [a, b, ..., a], or None."""
    after = {s.name: [a for a in s.after if a != s.name] for s in services}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in after.get(name, []):
            if dep not in after:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[name] = 2
        return None

    for service in services:
        if service.name not in state and (cycle := visit(service.name)):
            return cycle
    return None


def _check_services(repo: ConfigRepo) -> list[Finding]:
    where = repo.manifest.origin
    names = {s.name for s in repo.manifest.services}
    findings = []
    for service in repo.manifest.services:
        if service.name in service.after:
            findings.append(Finding("error", where, f"service {service.name!r} is after itself"))
        for dep in service.after:
            if dep not in names:
                close = difflib.get_close_matches(dep, sorted(names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                findings.append(
                    Finding(
                        "error",
                        where,
                        f"service {service.name!r} is after unknown service {dep!r}{hint}",
                    )
                )
        for pattern in service.paths:
            if not any(matches(pattern, p) for p in repo.tracked_paths):
                findings.append(
                    Finding(
                        "warning",
                        where,
                        f"service {service.name!r}: path {pattern!r} matches no tracked file",
                    )
                )
    cycle = service_cycle(repo.manifest.services)
    if cycle:
        findings.append(Finding("error", where, f"services form a cycle: {' -> '.join(cycle)}"))
    return findings


def _check_overrides(repo: ConfigRepo) -> list[Finding]:
    findings = []
    tracked = repo.tracked_paths
    for override in repo.manifest.files:
        if not any(matches(override.pattern, p) for p in tracked):
            close = difflib.get_close_matches(override.pattern, tracked, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            findings.append(
                Finding(
                    "error",
                    repo.manifest.origin,
                    f"files: {override.pattern!r} matches no tracked path{hint}",
                )
            )
    for pattern in repo.manifest.secrets_map:
        if not any(matches(pattern, p) for p in tracked):
            findings.append(
                Finding(
                    "warning",
                    repo.manifest.origin,
                    f"secrets.map: {pattern!r} matches no tracked path",
                )
            )
    return findings


def _check_tracked(repo: ConfigRepo) -> list[Finding]:
    findings = from_lines("warning", repo.inventory.warnings)
    source = repo.manifest.source
    present = set(repo.source_files)
    for entry in repo.inventory.entries:
        if entry.is_glob:
            if not any(matches(entry.pattern, p) for p in present):
                findings.append(
                    Finding(
                        "warning",
                        f"{repo.inventory.origin}:{entry.line}",
                        f"{entry.pattern!r} matches nothing under {source}/",
                    )
                )
        elif entry.pattern not in present:
            findings.append(
                Finding(
                    "warning",
                    f"{repo.inventory.origin}:{entry.line}",
                    f"missing: {source}/{entry.pattern} (restore will skip it)",
                )
            )
    return findings


def check_config_repo(tree: SourceTree) -> list[Finding]:
    try:
        repo = open_config_repo(tree)
    except (ManifestError, InventoryError) as exc:
        return from_lines("error", exc.problems)
    return _check_tracked(repo) + _check_overrides(repo) + _check_services(repo)


def validate(tree: SourceTree, *, as_json: bool) -> int:
    findings = check_config_repo(tree)
    echo_findings(findings, as_json=as_json, subject=tree.label)
    return int(ExitCode.ERROR if count(findings, "error") else ExitCode.OK)
