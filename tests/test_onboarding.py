"""Onboarding an existing host: `tether init --from-host` -> a bare remote -> an empty host
restored from it with the secret store -> identical bytes -> the timer units. Real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tether.cli import main
from tether.exitcodes import ExitCode

SECRETS = ("s3cr3tPassw0rdXyz", "Zq8vR2mXk4pL9sT1wY6bN3cJ7hD5fG0a", "hunter2-but-l0nger-Qx9")
HOST = {
    "traefik/docker-compose.yml": "services:\n  traefik:\n    image: traefik:v3\n",
    "traefik/.env": f"CF_API_TOKEN={SECRETS[1]}\n",
    "traefik/dynamic/tls.yaml": "tls:\n  options: {}\n",
    "authentik/compose.yaml": "services:\n  server:\n    image: authentik\n",
    "authentik/.env": f"PG_PASS={SECRETS[0]}\nPG_USER=authentik\n",
}
DATA = ("traefik/data/acme.json", "authentik/media/logo.png", "authentik/db.sqlite3")


def _git(*args: str | Path) -> str:
    done = subprocess.run(["git", *map(str, args)], capture_output=True, text=True, check=True)
    return done.stdout


def _host(home: Path) -> None:
    for rel, text in {**HOST, **dict.fromkeys(DATA, "data\n")}.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)


def test_existing_host_to_bare_remote_to_empty_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, repo, bare = tmp_path / "home", tmp_path / "homelab", tmp_path / "remote.git"
    _host(home)
    _git("init", "-q", "--bare", bare)  # HEAD -> master, the branch will be main
    store, state = tmp_path / "secrets.env", tmp_path / "state"
    host = ["--state-dir", str(state), "--secrets-file", str(store)]

    # 1. the existing host becomes a repo: proposal, git init, first redacted capture
    args = ["init", str(repo), "--from-host", "--home", str(home), "--remote", str(bare), *host]
    assert main(args) == ExitCode.OK
    err = capsys.readouterr().err
    assert f"next: review {repo}/inventory/include-paths.txt, then `git -C {repo} push" in err
    inventory = (repo / "inventory/include-paths.txt").read_text()
    listed = {line for line in inventory.splitlines() if line and not line.startswith("#")}
    assert listed == set(HOST)
    assert "# traefik/data/    (data, cache or media folder)" in inventory
    assert _git("-C", repo, "status", "--porcelain") == ""  # the work tree is the commit
    assert f"remote: {bare}" in (repo / "tether.yaml").read_text()

    # 2. pushed to the bare remote (the command init printed), then a host edit captured there
    _git("-C", repo, "push", "-q", "-u", "origin", "main")
    (home / "traefik/dynamic/tls.yaml").write_text("tls:\n  options:\n    default: {}\n")
    assert main(["capture", "--source", str(repo), *host]) == ExitCode.OK
    history = _git("-C", bare, "log", "-p", "--all")
    assert "+    default: {}" in history  # the edit reached the remote
    assert not any(s in history for s in SECRETS)
    assert "__REDACTED_AUTHENTIK_PG_PASS__" in history

    # 3. an empty host restored from the remote with the secret store: the same bytes
    empty = tmp_path / "empty"
    empty.mkdir()
    restore = [
        "reconcile", "--repo", str(bare), "--apply", "--target-root", str(empty),
        "--state-dir", str(tmp_path / "state2"), "--secrets-file", str(store),
    ]  # fmt: skip
    assert main(restore) == ExitCode.OK
    restored = empty / str(home).lstrip("/")
    for rel in HOST:
        assert (restored / rel).read_bytes() == (home / rel).read_bytes(), rel
    for rel in DATA:
        assert not (restored / rel).exists()
    out = capsys.readouterr()
    assert not any(s in out.out + out.err for s in SECRETS)

    # 4. the timer units that keep it converged
    units = ["agent", "install", "--print", "--user", "--repo", str(bare), "--no-verify", *host]
    assert main(units) == ExitCode.OK
    printed = capsys.readouterr().out
    assert "tether-reconcile.timer" in printed and "OnCalendar=" in printed
    assert f"reconcile --apply --repo {bare}" in printed


def test_init_from_host_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, empty_home = tmp_path / "r", tmp_path / "nothing"
    empty_home.mkdir()
    (empty_home / "notes.txt").write_text("hi\n")
    cases = [
        (["--home", str(tmp_path / "missing")], ExitCode.USAGE, "no such folder"),
        (["--home", str(empty_home)], ExitCode.ERROR, "no service config found"),
        (["--home", str(empty_home), "--remote", str(tmp_path / "nope.git")], ExitCode.USAGE, ""),
    ]
    for extra, code, why in cases:
        assert main(["init", str(repo), "--from-host", *extra]) == code
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not repo.exists()
    assert main(["init", str(repo), "--remote", "x"]) == ExitCode.USAGE  # needs --from-host
    home = tmp_path / "home"
    _host(home)
    (repo / "tether.yaml").parent.mkdir()
    (repo / "tether.yaml").write_text("mine\n")
    assert main(["init", str(repo), "--from-host", "--home", str(home)]) == ExitCode.USAGE
    assert "already holds a config repo" in capsys.readouterr().err
    assert (repo / "tether.yaml").read_text() == "mine\n" and not (repo / ".git").exists()


def test_the_walk_is_bounded_and_finds_shallow_services_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.hostfs import discover  # noqa: PLC0415

    monkeypatch.setattr(discover, "MAX_ENTRIES", 60)
    home = tmp_path / "home"
    _host(home)
    for n in range(100):  # a big tree sorted before the services: walked last, cut short
        (home / "aaa/b/src" / f"f{n}.yml").parent.mkdir(parents=True, exist_ok=True)
        (home / "aaa/b/src" / f"f{n}.yml").write_text("x: 1\n")
    (home / "pihole").mkdir()
    (home / "pihole/pihole.toml").write_text("a = 1\n")  # a known service, no compose file
    (home / "pihole/link.toml").symlink_to(home / "pihole/pihole.toml")
    (home / "elsewhere").mkdir()
    (home / "traefik/linked").symlink_to(home / "elsewhere", target_is_directory=True)
    found = discover.propose(home)
    assert found.truncated
    assert set(found.paths) == {*HOST, "pihole/pihole.toml"}
    assert ("pihole/link.toml", "a symlink (tether never follows links)") in found.skipped
    assert ("traefik/data/", "data, cache or media folder") in found.skipped
