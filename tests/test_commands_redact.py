"""`tether redact` and `tether secrets list|check` end to end, on a config repo in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tether.cli import main
from tether.exitcodes import ExitCode
from tether.secrets.render import render
from tether.secrets.store import load_store

WG = "aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Qga2V5MTI="
PLANTED = [WG, "plexkey123", "radarr-key-9", "p&a/s|s\\\\w", "Zx9abcDEFghiJKLmnoPQ", "pgpass12345"]
FILES = {
    "arrstack/docker-compose.yml": (
        "services:\n  gluetun:\n    environment:\n"
        f"      WIREGUARD_PRIVATE_KEY: {WG}\n      - TZ=Australia/Sydney\n"
    ),
    "homepage/config/services.yaml": (
        "- Media:\n    - Plex:\n        widget:\n          key: plexkey123\n"
        "    - Radarr:\n        widget:\n          key: radarr-key-9\n"
        '          password: "p&a/s|s\\\\w"\n'
    ),
    "plex/Library/Application Support/Plex Media Server/Preferences.xml": (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Preferences PlexOnlineToken="Zx9abcDEFghiJKLmnoPQ" PlexOnlineUsername="me"/>\n'
    ),
    "authentik/docker-compose.yml": (
        "services:\n  server:\n    environment:\n"
        "      AUTHENTIK_SECRET_KEY: ${AUTHENTIK_SECRET_KEY}\n"
    ),
    "authentik/config.ini": "[db]\nPG_PASS = pgpass12345\nport = 5432\n",
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    assert main(["init", str(root), "--home", "/home/anas"]) == 0
    (root / "inventory" / "include-paths.txt").write_text("\n".join(FILES) + "\n")
    for rel, text in FILES.items():
        path = root / "configs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("TETHER_SECRETS_FILE", str(tmp_path / "store" / "secrets.env"))
    monkeypatch.chdir(root)
    return root


def store_file(repo: Path) -> Path:
    return repo.parent / "store" / "secrets.env"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def no_leak(text: str) -> None:
    for value in PLANTED:
        assert value not in text


def test_check_lists_and_writes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(repo)
    assert main(["redact", "--check", "configs"]) == ExitCode.ATTENTION
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "configs/arrstack/docker-compose.yml:4: ARRSTACK_WIREGUARD_PRIVATE_KEY",
        "configs/authentik/config.ini:2: AUTHENTIK_PG_PASS",
        "configs/homepage/config/services.yaml:4: HOMEPAGE_PLEX_KEY",
        "configs/homepage/config/services.yaml:7: HOMEPAGE_RADARR_KEY",
        "configs/homepage/config/services.yaml:8: HOMEPAGE_PASSWORD",
        "configs/plex/Library/Application Support/Plex Media Server/Preferences.xml:2: "
        "PLEX_ONLINE_TOKEN",
    ]
    assert "need redaction" in err
    no_leak(out + err)
    assert snapshot(repo) == before
    assert not store_file(repo).exists()


def test_redact_then_rehydrate_then_idempotent(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redact", "configs"]) == 0
    out, err = capsys.readouterr()
    no_leak(out + err)
    for rel in FILES:
        no_leak((repo / "configs" / rel).read_text())
    store = load_store(store_file(repo), {})
    assert stat.S_IMODE(store_file(repo).stat().st_mode) == 0o600
    for rel, original in FILES.items():
        data = (repo / "configs" / rel).read_bytes()
        assert render(data, store.get).data == original.encode()
    before = snapshot(repo)
    store_before = store_file(repo).read_bytes()
    assert main(["redact", "configs"]) == 0
    assert "nothing to redact" in capsys.readouterr().err
    assert snapshot(repo) == before
    assert store_file(repo).read_bytes() == store_before
    assert main(["redact", "--check", "configs"]) == 0


def test_rotation_updates_the_same_name(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redact", "configs"]) == 0
    compose = repo / "configs" / "arrstack" / "docker-compose.yml"
    redacted = compose.read_text()
    compose.write_text(FILES["arrstack/docker-compose.yml"].replace(WG, "rotated/value+1="))
    assert main(["redact", str(compose)]) == 0
    assert compose.read_text() == redacted
    store = load_store(store_file(repo), {})
    assert store.get("ARRSTACK_WIREGUARD_PRIVATE_KEY") == "rotated/value+1="
    assert store.get("HOMEPAGE_PLEX_KEY") == "plexkey123"  # nothing else lost
    no_leak(capsys.readouterr().out)


def test_same_key_in_two_files_of_a_service(repo: Path) -> None:
    standby = repo / "configs" / "arrstack" / "docker-compose.standby.yml"
    standby.write_text(FILES["arrstack/docker-compose.yml"].replace(WG, "other-key-value"))
    assert main(["redact", "configs"]) == 0
    store = load_store(store_file(repo), {})
    # The first file in path order keeps the plain name; the other one's file name joins it.
    assert store.get("ARRSTACK_WIREGUARD_PRIVATE_KEY") == "other-key-value"
    assert store.get("ARRSTACK_DOCKER_COMPOSE_WIREGUARD_PRIVATE_KEY") == WG


def test_unreadable_store_is_one_line_and_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file(repo).parent.mkdir()
    store_file(repo).write_text("export A=1\n")
    store_file(repo).chmod(0o640)
    before = snapshot(repo)
    assert main(["redact", "configs"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "chmod 600" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(repo) == before


def test_missing_path_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redact", "nope.yml"]) == ExitCode.USAGE
    assert "nope.yml: no such file or folder" in capsys.readouterr().err


def test_secrets_list_and_check(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["secrets", "check"]) == 0  # no placeholder yet
    assert main(["redact", "configs"]) == 0
    capsys.readouterr()
    assert main(["secrets", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {s["name"] for s in listing["secrets"]} == {
        "ARRSTACK_WIREGUARD_PRIVATE_KEY", "AUTHENTIK_PG_PASS", "HOMEPAGE_PLEX_KEY",
        "HOMEPAGE_RADARR_KEY", "HOMEPAGE_PASSWORD", "PLEX_ONLINE_TOKEN",
    }  # fmt: skip
    assert all(s["stored"] for s in listing["secrets"])
    assert main(["secrets", "check"]) == 0
    text = store_file(repo).read_text().replace("export HOMEPAGE_PLEX_KEY=plexkey123\n", "")
    store_file(repo).write_text(text)
    assert main(["secrets", "check"]) == ExitCode.ATTENTION
    out, err = capsys.readouterr()
    assert out == "homepage/config/services.yaml:4: HOMEPAGE_PLEX_KEY has no value in the store\n"
    no_leak(out + err)
    assert main(["secrets", "list"]) == 0
    out = capsys.readouterr().out
    assert "HOMEPAGE_PLEX_KEY  MISSING  homepage/config/services.yaml:4" in out
    no_leak(out)


def test_bare_redacted_needs_a_name(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ini = repo / "configs" / "authentik" / "config.ini"
    ini.write_text("[db]\nPG_PASS = REDACTED\nother_token = REDACTED\n")
    assert main(["secrets", "check"]) == ExitCode.ATTENTION
    out = capsys.readouterr().out
    assert "authentik/config.ini:2: bare REDACTED with no name" in out
    manifest = repo / "tether.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "  # map:", "  map:\n    authentik/config.ini:\n      PG_PASS: AUTHENTIK_PG_PASS\n  #"
        )
    )
    os.environ["OTHER_TOKEN"] = "from-env"
    try:
        assert main(["secrets", "check"]) == ExitCode.ATTENTION
        out = capsys.readouterr().out
        assert out == "authentik/config.ini:2: AUTHENTIK_PG_PASS has no value in the store\n"
    finally:
        del os.environ["OTHER_TOKEN"]


@pytest.mark.slow
def test_pre_commit_hook_blocks_a_secret(tmp_path: Path) -> None:
    """Real pre-commit in a real git repo runs `tether redact --check` on staged files."""
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    tether = str(Path(sys.executable).parent / "tether")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "PRE_COMMIT_HOME": str(tmp_path / "pc")}
    env["TETHER_SECRETS_FILE"] = str(tmp_path / "s.env")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, check=False)

    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.com")
    run("git", "config", "user.name", "t")
    (work / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: tether-redact\n"
        f"        name: tether redact --check\n        entry: {tether} redact --check\n"
        "        language: system\n"
    )
    (work / "app").mkdir()
    (work / "app" / ".env").write_text(f"WG_PRIVATE_KEY={WG}\n")
    run("git", "add", "-A")
    blocked = run(pre_commit, "run", "--files", "app/.env")
    assert blocked.returncode != 0, blocked.stdout + blocked.stderr
    assert "app/.env:1: APP_WG_PRIVATE_KEY" in blocked.stdout
    assert WG not in blocked.stdout + blocked.stderr
    assert run(tether, "redact", "app").returncode == 0
    run("git", "add", "-A")
    passed = run(pre_commit, "run", "--files", "app/.env")
    assert passed.returncode == 0, passed.stdout + passed.stderr


ARTICLE_STORE = """export PLEX_ONLINE_TOKEN='Zx9abcDEFghiJKLmnoPQ'
export WIREGUARD_PRIVATE_KEY='aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Qga2V5MTI='
export TAUTULLI_API_KEY=0123456789abcdef
"""


def test_article_repo_with_article_store(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The article's bare REDACTED files, filled from its ~/.homelab-secrets.env as it is."""
    configs = repo / "configs"
    (configs / "arrstack" / "docker-compose.yml").write_text(
        "services:\n  gluetun:\n    environment:\n      WIREGUARD_PRIVATE_KEY: REDACTED\n"
    )
    (configs / "plex/Library/Application Support/Plex Media Server/Preferences.xml").write_text(
        '<Preferences PlexOnlineToken="REDACTED" PlexOnlineUsername="me"/>\n'
    )
    (configs / "homepage" / "config" / "services.yaml").write_text(
        "- Media:\n    - Tautulli:\n        widget:\n          key: REDACTED\n"
        "    - Plex:\n        widget:\n          key: REDACTED\n"
    )
    store_file(repo).parent.mkdir()
    store_file(repo).write_text(ARTICLE_STORE)
    store_file(repo).chmod(0o600)
    assert main(["secrets", "check"]) == ExitCode.ATTENTION
    out = capsys.readouterr().out
    # The key on the line names the store entry; the homepage widgets need secrets.map or redact.
    assert out.splitlines() == [
        "homepage/config/services.yaml:4: bare REDACTED with no name "
        "(map it under secrets.map in tether.yaml, or redact it again)",
        "homepage/config/services.yaml:7: bare REDACTED with no name "
        "(map it under secrets.map in tether.yaml, or redact it again)",
    ]
    store = load_store(store_file(repo), {})
    data = (configs / "arrstack" / "docker-compose.yml").read_bytes()
    assert render(data, store.get).data == FILES["arrstack/docker-compose.yml"].encode().replace(
        b"      - TZ=Australia/Sydney\n", b""
    )


def test_outside_a_repo_binary_skipped_mode_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "loose"
    (work / "svc").mkdir(parents=True)
    env = work / "svc" / ".env"
    env.write_text("DB_PASSWORD=hunter2hunter\n")
    env.chmod(0o640)
    blob = work / "svc" / "data.bin"
    blob.write_bytes(b"\0password=hunter2hunter\xff")
    monkeypatch.chdir(work)
    store = tmp_path / "s.env"
    assert main(["redact", "--secrets-file", str(store), "svc"]) == 0
    assert capsys.readouterr().out == "svc/.env:1: SVC_DB_PASSWORD\n"
    assert env.read_text() == "DB_PASSWORD=__REDACTED_SVC_DB_PASSWORD__\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    assert blob.read_bytes() == b"\0password=hunter2hunter\xff"
    assert load_store(store, {}).get("SVC_DB_PASSWORD") == "hunter2hunter"


@pytest.mark.parametrize("command", [["redact", "--check", "configs"], ["scan"]])
def test_a_non_utf8_manifest_is_one_line_not_a_crash(
    repo: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    (repo / "tether.yaml").write_bytes(b"version: 1\ntarget: {home: /h\xff}\n")
    assert main(command) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "tether.yaml: not UTF-8 text" in err and "internal error" not in err


@pytest.mark.parametrize("sub", ["list", "check"])
def test_secrets_outside_a_config_repo_is_the_usage_error_validate_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sub: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["secrets", sub]) == main(["validate"]) == ExitCode.USAGE
    assert "no config repo" in capsys.readouterr().err


def test_a_store_value_where_no_rule_looks_is_reported_not_left_silently(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_file(repo)
    notes = repo / "configs" / "app" / "notes.txt"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text("# the old password was KNOWN-value-42, keep it for the migration\n")
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("OLD_PW=KNOWN-value-42\n")
    store.chmod(0o600)
    assert main(["redact", "--check", "configs"]) == ExitCode.ATTENTION
    err = capsys.readouterr().err
    assert "notes.txt:1: a value of the secret store, in plain text" in err
    assert "KNOWN-value-42" not in err


def test_counts_read_as_english(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    one = tmp_path / "one.ini"
    one.write_text("[db]\nPG_PASS = pgpass12345\n")
    monkeypatch.setenv("TETHER_SECRETS_FILE", str(tmp_path / "s.env"))
    assert main(["redact", "--check", str(one)]) == ExitCode.ATTENTION
    assert "1 secret in 1 file needs redaction" in capsys.readouterr().err
    assert main(["redact", str(one)]) == ExitCode.OK
    assert "redacted 1 secret in 1 file; 1 value added or updated" in capsys.readouterr().err


def test_a_stored_literal_redacted_is_no_plain_text_store_value(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """capture stores a host's literal `REDACTED` (PG_PASS_OLD=REDACTED): every placeholder
    holds that word, and none of them is a store value left in plain text."""
    store = store_file(repo)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("AUTHENTIK_PG_PASS_OLD=REDACTED\n")
    store.chmod(0o600)
    assert main(["redact", "configs"]) == ExitCode.OK
    assert main(["redact", "--check", "configs"]) == ExitCode.OK
    assert "plain text" not in capsys.readouterr().err
