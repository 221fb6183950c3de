"""Findings of a check (validate, doctor): a level, a place and what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import click

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


def echo_findings(findings: Sequence[Finding], *, as_json: bool, subject: str) -> None:
    errors, warnings = count(findings, "error"), count(findings, "warning")
    if as_json:
        payload = {
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "findings": [
                {"level": f.level, "where": f.where, "message": f.message} for f in findings
            ],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    for finding in findings:
        click.echo(finding.line(), err=finding.level != "ok")
    verdict = "invalid" if errors else "valid"
    click.echo(f"{subject}: {verdict} ({errors} errors, {warnings} warnings)", err=True)
