"""Findings of a check (validate, doctor) shown as text lines or JSON."""

from __future__ import annotations

from collections.abc import Sequence

import click

from tether.config.checks import Finding, count
from tether.jsondoc import json_document
from tether.textsafe import counted, printable


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
        click.echo(json_document(payload))
        return
    for finding in findings:
        click.echo(printable(finding.line()), err=finding.level != "ok")
    verdict = "invalid" if errors else "valid"
    click.echo(
        f"{subject}: {verdict} ({counted(errors, 'error')}, {counted(warnings, 'warning')})",
        err=True,
    )
