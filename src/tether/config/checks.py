"""Checks of a config repo beyond the schema (validate and doctor share them): every finding
has a level, a place (`tether.yaml:LINE:COL` or a path) and what is wrong."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.hosts import HOSTS_FOLDER
from tether.config.inventory import matches
from tether.config.manifest import MANIFEST_NAME, Service
from tether.config.sourcetree import SourceTree
from tether.config.yamlload import YamlDocument, YamlLoadError, load_yaml
from tether.errors import InventoryError, ManifestError, TetherError
from tether.textsafe import counted

Level = Literal["error", "warning", "ok"]


@dataclass(frozen=True)
class Finding:
    level: Level
    where: str
    message: str

    def line(self) -> str:
        return f"{self.where}: {self.level}: {self.message}" if self.where else self.message


def from_lines(level: Level, lines: Iterable[str]) -> list[Finding]:
    """Findings from `where: message` lines as the loaders report them."""
    out = []
    for text in lines:
        where, sep, message = text.partition(": ")
        out.append(Finding(level, where, message) if sep else Finding(level, "", text))
    return out


def count(findings: Sequence[Finding], level: Level) -> int:
    return sum(1 for f in findings if f.level == level)


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


class _Positions:
    """`tether.yaml:LINE:COL` of a manifest node, parsed only when a finding needs one."""

    def __init__(self, repo: ConfigRepo) -> None:
        self.repo = repo
        self.doc: YamlDocument | None = None

    def _doc(self) -> YamlDocument | None:
        if self.doc is None:
            try:
                self.doc = load_yaml(self.repo.tree.read_bytes(MANIFEST_NAME).decode("utf-8"))
            except (TetherError, YamlLoadError, UnicodeDecodeError):
                return None
        return self.doc

    def at(self, *path: str | int) -> str:
        doc = self._doc()
        if doc is None:
            return self.repo.manifest.origin
        line, column = doc.position(list(path))
        return f"{self.repo.manifest.origin}:{line}:{column}"

    def key(self, parent: str, key: str) -> str:
        """Where the key `key` of the top-level mapping `parent` is written."""
        doc = self._doc()
        if doc is None:
            return self.repo.manifest.origin
        line, column = doc.key_position([parent], key)
        return f"{self.repo.manifest.origin}:{line}:{column}"


def _check_services(repo: ConfigRepo, at: _Positions, tracked: list[str]) -> list[Finding]:
    names = {s.name for s in repo.manifest.services}
    findings = []
    for index, service in enumerate(repo.manifest.services):
        if service.name in service.after:
            where = at.at("services", index, "after")
            findings.append(Finding("error", where, f"service {service.name!r} is after itself"))
        for number, dep in enumerate(service.after):
            where = at.at("services", index, "after", number)
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
        for number, pattern in enumerate(service.paths):
            if not any(matches(pattern, p) for p in tracked):
                findings.append(
                    Finding(
                        "warning",
                        at.at("services", index, "paths", number),
                        f"service {service.name!r}: path {pattern!r} matches no tracked file",
                    )
                )
    cycle = service_cycle(repo.manifest.services)
    if cycle:
        first = next(i for i, s in enumerate(repo.manifest.services) if s.name == cycle[0])
        where = at.at("services", first, "after")
        findings.append(Finding("error", where, f"services form a cycle: {' -> '.join(cycle)}"))
    return findings


def _check_overrides(repo: ConfigRepo, at: _Positions, tracked: list[str]) -> list[Finding]:
    findings = []
    for override in repo.manifest.files:
        if not any(matches(override.pattern, p) for p in tracked):
            close = difflib.get_close_matches(override.pattern, tracked, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            findings.append(
                Finding(
                    "error",
                    at.key("files", override.pattern),
                    f"files: {override.pattern!r} matches no tracked path{hint}",
                )
            )
    for pattern in repo.manifest.secrets_map:
        if not any(matches(pattern, p) for p in tracked):
            findings.append(
                Finding(
                    "warning",
                    at.at("secrets", "map", pattern),
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


def _check_hosts(repo: ConfigRepo, at: _Positions, views: list[ConfigRepo]) -> list[Finding]:
    """References to hosts and services, each host's selection and overlays."""
    manifest = repo.manifest
    hosts = manifest.hosts
    findings: list[Finding] = []
    services = {s.name for s in manifest.services}
    for name, profile in hosts.items():
        for number, service in enumerate(profile.services or ()):
            if service not in services:
                where = at.at("hosts", name, "services", number)
                findings.append(
                    Finding("error", where, f"host {name!r}: unknown service {service!r}")
                )
    for override in manifest.files:
        for host in override.hosts:
            if host not in hosts:
                where = at.at("files", override.pattern, "hosts")
                findings.append(
                    Finding(
                        "error", where, f"files: {override.pattern!r} names unknown host {host!r}"
                    )
                )
    for folder in repo.tree.files_under(HOSTS_FOLDER):
        name, _, rest = folder.partition("/")
        if name not in hosts and rest.startswith(f"{manifest.source}/"):
            where = f"{HOSTS_FOLDER}/{name}/{manifest.source}/"
            findings.append(Finding("warning", where, f"overlay of host {name!r}, not in hosts:"))
            break
    for view in views:
        assert view.profile is not None
        name = view.profile.name
        if not view.tracked_paths:
            where = at.key("hosts", name)
            findings.append(Finding("error", where, f"host {name!r} selects no tracked path"))
        tracked = set(view.tracked_paths)
        for path in sorted(view.overlay - tracked):
            findings.append(
                Finding(
                    "warning",
                    view.host_path(path),
                    f"host {name!r} does not track {path!r}: this overlay is never used",
                )
            )
    return findings


_UNCOVERED_SHOWN = 20  # a repo with hundreds of stray files gets a count, not a wall of lines


def _check_uncovered(repo: ConfigRepo) -> list[Finding]:
    """Files under the source folder that no allowlist (shared or a host's own) names: reconcile
    never writes them, which is rarely what whoever committed them meant."""
    files = [p for p in repo.source_files if p.rsplit("/", 1)[-1] != ".gitkeep"]
    covered = set(repo.inventory.select(files))
    for name in repo.manifest.hosts:
        with contextlib.suppress(TetherError):  # a broken host allowlist is reported elsewhere
            for inventory in repo.for_host(name).extra:
                covered.update(inventory.select(files))
    stray = [p for p in files if p not in covered]
    origin = repo.inventory.origin
    findings = [
        Finding(
            "warning",
            f"{repo.manifest.source}/{path}",
            f"no line of {origin} covers it: reconcile never writes it (add it there, or "
            "delete the file)",
        )
        for path in stray[:_UNCOVERED_SHOWN]
    ]
    if len(stray) > _UNCOVERED_SHOWN:
        more = counted(len(stray) - _UNCOVERED_SHOWN, "more file")
        findings.append(Finding("warning", f"{repo.manifest.source}/", f"and {more} like these"))
    return findings


def check_config_repo(tree: SourceTree, host: str | None = None) -> list[Finding]:
    """Every check; a repo with `hosts:` is checked as each host sees it (or only `host`)."""
    try:
        repo = open_config_repo(tree, shared=True)
    except (ManifestError, InventoryError) as exc:
        return from_lines("error", exc.problems)
    at = _Positions(repo)
    findings = _check_tracked(repo) + _check_uncovered(repo)
    tracked = repo.tracked_paths
    if repo.manifest.hosts:
        names = [host] if host is not None else sorted(repo.manifest.hosts)
        views = []
        for name in names:
            try:
                views.append(repo.for_host(name))
            except InventoryError as exc:
                findings.extend(from_lines("error", exc.problems))
        tracked = sorted({p for view in views for p in view.tracked_paths})
        findings += _check_hosts(repo, at, views)
    return findings + _check_overrides(repo, at, tracked) + _check_services(repo, at, tracked)
