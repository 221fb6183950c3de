"""`tether validate`: the config repo's schema, allowlist and cross-checks, without a host."""

from __future__ import annotations

from tether.commands.findings import echo_findings
from tether.config.checks import Finding, check_config_repo, count
from tether.config.configrepo import open_config_repo
from tether.config.inventory import matches
from tether.config.sourcetree import SourceTree
from tether.errors import TetherError
from tether.exitcodes import ExitCode
from tether.secrets.render import has_marker


def validate(tree: SourceTree, *, as_json: bool, host: str | None = None) -> int:
    findings = check_config_repo(tree, host)
    if not count(findings, "error"):
        findings += exposed_secret_modes(tree)
    echo_findings(findings, as_json=as_json, subject=tree.label)
    return int(ExitCode.ERROR if count(findings, "error") else ExitCode.OK)


def exposed_secret_modes(tree: SourceTree) -> list[Finding]:
    """A manifest mode that lets group or others read a file holding placeholders: tether
    writes such a file 0600 unless told otherwise, and this is the telling otherwise."""
    try:
        repo = open_config_repo(tree)
    except TetherError:
        return []
    out = []
    for override in repo.manifest.files:
        if override.mode is None or not override.mode & 0o077:
            continue
        for path in repo.tracked_paths:
            if not matches(override.pattern, path):
                continue
            try:
                data = tree.read_bytes(repo.source_path(path))
            except TetherError:
                continue
            if has_marker(data):
                out.append(
                    Finding(
                        "warning",
                        "tether.yaml",
                        f"files: {override.pattern!r} mode {override.mode:04o} lets "
                        f"{'others' if override.mode & 0o007 else 'the group'} read {path}, "
                        "which holds secrets (0600 keeps them private)",
                    )
                )
    return out
