"""`tether validate`: the config repo's schema, allowlist and cross-checks, without a host."""

from __future__ import annotations

from tether.commands.findings import echo_findings
from tether.config.checks import check_config_repo, count
from tether.config.sourcetree import SourceTree
from tether.exitcodes import ExitCode


def validate(tree: SourceTree, *, as_json: bool, host: str | None = None) -> int:
    findings = check_config_repo(tree, host)
    echo_findings(findings, as_json=as_json, subject=tree.label)
    return int(ExitCode.ERROR if count(findings, "error") else ExitCode.OK)
