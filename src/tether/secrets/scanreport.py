"""Scan results as text, JSON or SARIF 2.1.0. Only masked previews and fingerprints appear."""

from __future__ import annotations

import json
from typing import Any

from tether import __version__
from tether.jsondoc import json_document
from tether.secrets.scan import ScanResult


def as_text(result: ScanResult) -> str:
    return "".join(f"{finding.text()}\n" for finding in result.findings)


def as_json(result: ScanResult) -> str:
    payload = {
        "findings": [
            {"path": f.path, "line": f.line, "rule": f.rule, "fingerprint": f.fingerprint}
            for f in result.findings
        ],
        "files_scanned": result.files_scanned,
        "files_skipped": result.files_skipped,
    }
    return json_document(payload) + "\n"


def as_sarif(result: ScanResult) -> str:
    rules = sorted({f.rule for f in result.findings})
    results: list[dict[str, Any]] = []
    for f in result.findings:
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": rules.index(f.rule),
                "level": "error",
                "message": {"text": f"possible secret ({f.rule}); the value is not shown"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.path},
                            "region": {"startLine": f.line},
                        }
                    }
                ],
                "partialFingerprints": {"tetherSecret/v1": f.fingerprint},
            }
        )
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tether",
                        "version": __version__,
                        "rules": [
                            {"id": rule, "shortDescription": {"text": f"secret: {rule}"}}
                            for rule in rules
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


def render(result: ScanResult, fmt: str) -> str:
    if fmt == "json":
        return as_json(result)
    if fmt == "sarif":
        return as_sarif(result)
    return as_text(result)
