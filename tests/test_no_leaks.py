"""Planted secret values never appear in any command's output, nor in tether's own state.

One config repo with placeholders in several formats (a Docker secret file whose whole content is
one placeholder among them), one store holding distinctive values;
every command that touches them runs (plans, diffs, JSON, saved plans, apply, errors, scans,
status, doctor) and everything it printed or wrote outside the host is searched for the values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testing.repos import make_config_repo
from tether.cli import main
from tether.secrets import sealed

# Distinctive, realistic values; each must be masked wherever it could show.
PLANTED = {
    "APP_DB_PASSWORD": "Canary&Pass/word|1x$",
    "APP_API_TOKEN": "ghp_CanaryCanaryCanaryCanaryCanary0123",
    "PLEX_ONLINE_TOKEN": "CanaryPlexTokenZq93",
    "WG_PRIVATE_KEY": "CanaryWgKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "DB_DB_PASSWORD": "CanaryWhole&File|Secret9",  # a Docker secret file's whole content
}

FILES = {
    "app/docker-compose.yml": (
        "services:\n  app:\n    environment:\n      DB_PASSWORD: __REDACTED_APP_DB_PASSWORD__\n"
    ),
    "app/.env": "API_TOKEN=__REDACTED_APP_API_TOKEN__\nLOG_LEVEL=info\n",
    "plex/Preferences.xml": '<Preferences PlexOnlineToken="__REDACTED_PLEX_ONLINE_TOKEN__" A="1"/>\n',
    "vpn/wg.ini": "[Interface]\nPrivateKey = __REDACTED_WG_PRIVATE_KEY__\n",
    "db/compose.yaml": "secrets:\n  db_password:\n    file: ./db_password\n",
    "db/db_password": "__REDACTED_DB_DB_PASSWORD__",
}


def _store(path: Path) -> Path:
    lines = [f"{name}='{value}'\n" for name, value in PLANTED.items()]
    path.write_text("".join(lines))
    path.chmod(0o600)
    return path


def _leaks(text: str) -> list[str]:
    return [name for name, value in PLANTED.items() if value in text]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    repo = make_config_repo(tmp_path / "repo", FILES)
    return {
        "repo": repo,
        "root": tmp_path / "host",
        "state": tmp_path / "state",
        "store": _store(tmp_path / "secrets.env"),
        "tmp": tmp_path,
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_no_command_prints_or_stores_a_secret(
    capsys: pytest.CaptureFixture[str], world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    w["root"].mkdir()
    common = [
        "--source", str(w["repo"]), "--target-root", str(w["root"]),
        "--state-dir", str(w["state"]), "--secrets-file", str(w["store"]),
    ]  # fmt: skip
    outputs: dict[str, str] = {}
    plan_file = w["tmp"] / "plan.json"

    outputs["plan"] = run(capsys, "reconcile", *common, "--diff")[1]
    outputs["plan-json"] = run(capsys, "reconcile", *common, "--json", "--diff")[1]
    outputs["saved"] = run(capsys, "reconcile", *common, "--out", str(plan_file))[1]
    code, outputs["apply-saved"] = run(
        capsys, "apply", str(plan_file), "--state-dir", str(w["state"])
    )
    assert code == 0, outputs["apply-saved"]
    env = w["root"] / "home/demo/app/.env"
    assert PLANTED["APP_API_TOKEN"] in env.read_text()  # the host does get the value
    whole = w["root"] / "home/demo/db/db_password"
    assert whole.read_text() == PLANTED["DB_DB_PASSWORD"]  # the exact bytes, no newline added

    # drift and conflict: the host edits a secret-bearing file; diffs compare two secret texts
    env.write_text(env.read_text().replace("info", "debug") + "EXTRA=1\n")
    outputs["drift-diff"] = run(capsys, "reconcile", *common, "--diff")[1]
    (w["repo"] / "configs/app/.env").write_text(
        "API_TOKEN=__REDACTED_APP_API_TOKEN__\nLOG_LEVEL=warn\n"
    )
    outputs["conflict-diff"] = run(capsys, "reconcile", *common, "--diff", "--json")[1]
    outputs["overwrite"] = run(capsys, "reconcile", *common, "--apply", "--overwrite")[1]
    outputs["backups"] = run(capsys, "backups", "--state-dir", str(w["state"]), "--json")[1]

    # a missing secret: the error names the secret, never another value
    short = w["tmp"] / "short.env"
    short.write_text(f"APP_DB_PASSWORD='{PLANTED['APP_DB_PASSWORD']}'\n")
    short.chmod(0o600)
    outputs["blocked"] = run(
        capsys, "reconcile", *common[:-1], str(short), "--json", "--state-dir", str(w["state"])
    )[1]

    outputs["secrets-list"] = run(
        capsys,
        "secrets",
        "list",
        "--source",
        str(w["repo"]),
        "--secrets-file",
        str(w["store"]),
        "--json",
    )[1]
    outputs["secrets-check"] = run(
        capsys, "secrets", "check", "--source", str(w["repo"]), "--secrets-file", str(w["store"])
    )[1]
    # the rendered host files hold real values: scan and redact --check must report, not echo
    host_home = w["root"] / "home/demo"
    outputs["scan"] = run(capsys, "scan", str(host_home))[1]
    outputs["scan-json"] = run(capsys, "scan", str(host_home), "--format", "json")[1]
    outputs["scan-sarif"] = run(capsys, "scan", str(host_home), "--format", "sarif")[1]
    outputs["redact-check"] = run(
        capsys, "redact", "--check", str(host_home), "--secrets-file", str(w["tmp"] / "new.env")
    )[1]
    outputs["status"] = run(capsys, "status", "--state-dir", str(w["state"]), "--json")[1]

    # the store carried to a new host: export, import with a conflict, a wrong passphrase
    monkeypatch.setattr(sealed, "DEFAULT_PARAMS", sealed.KdfParams(log2_n=10))
    monkeypatch.setenv("TETHER_PASSPHRASE", "a passphrase for the move")
    moving = w["tmp"] / "moving.secrets"
    store = ["--secrets-file", str(w["store"])]
    outputs["export"] = run(capsys, "secrets", "export", "--to", str(moving), *store)[1]
    assert _leaks(moving.read_bytes().decode("ascii")) == []
    outputs["import-merge"] = run(
        capsys, "secrets", "import", "--from", str(moving), "--secrets-file", str(short)
    )[1]
    assert "APP_DB_PASSWORD" not in outputs["import-merge"]  # the same value: unchanged
    short.write_text("APP_API_TOKEN='CanaryOtherValue'\n")
    outputs["import-conflict"] = run(
        capsys, "secrets", "import", "--from", str(moving), "--secrets-file", str(short)
    )[1]
    assert "APP_API_TOKEN" in outputs["import-conflict"]
    assert "CanaryOtherValue" not in outputs["import-conflict"]
    outputs["import"] = run(capsys, "secrets", "import", "--from", str(moving), "--overwrite",
                            "--secrets-file", str(short))[1]  # fmt: skip
    monkeypatch.setenv("TETHER_PASSPHRASE", "not the passphrase")
    outputs["import-wrong"] = run(capsys, "secrets", "import", "--from", str(moving), *store)[1]
    outputs["doctor"] = run(capsys, "doctor", *common, "--json")[1]

    assert "Canary" not in outputs["scan"]  # the scan found them ...
    findings = json.loads(outputs["scan-json"].split("\n}\n", 1)[0] + "\n}")["findings"]
    assert len(findings) >= len(PLANTED)  # ... and said where, masked
    assert [f["line"] for f in findings if f["path"].endswith("db/db_password")] == [1]
    leaked = {label: _leaks(text) for label, text in outputs.items() if _leaks(text)}
    assert leaked == {}

    # tether's own files: ledger, saved plan, run history, key; backups hold old host bytes
    # (by design) and must be private instead
    for path in [plan_file, *w["state"].rglob("*")]:
        if not path.is_file():
            continue
        if path.is_relative_to(w["state"]) and "backups" in path.relative_to(w["state"]).parts:
            assert path.stat().st_mode & 0o077 == 0, path
            continue
        assert _leaks(path.read_bytes().decode("utf-8", "replace")) == [], path
    assert w["state"].stat().st_mode & 0o777 == 0o700
    # crash logs, if any command had failed unexpectedly, would sit here too
    for log in Path(os.environ["TETHER_LOG_DIR"]).glob("*.log"):
        assert _leaks(log.read_text()) == [], log
