"""`tether add PATH...` and `tether capture --only`: real bare remotes, the one capture path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_capture import SECRET, World
from tether.cli import main
from tether.exitcodes import ExitCode
from tether.hostfs.discover import skip_reason

INVENTORY = "inventory/include-paths.txt"


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, "# services\napp/config.yml\n")
    w.write("app/config.yml", "server:\n  port: 8080\n")
    w.write("app/.env", f"DB_PASSWORD={SECRET}\nPORT=80\n")
    w.write("web/compose.yml", "services:\n  web:\n    image: nginx\n")
    w.write("web/data/app.db", "x")
    w.write("web/site.log", "x")
    return w


def _add(world: World, *paths: str | Path) -> int:
    return main(["add", *map(str, paths), "--repo", str(world.remote), *world.host_args()])


def test_add_allowlists_and_captures_redacted_in_one_commit(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    before = world.head()
    assert _add(world, world.home / "app/.env", world.home / "web/compose.yml") == ExitCode.OK
    out = capsys.readouterr()
    assert "allowlist extended: app/.env, web/compose.yml" in out.out
    assert SECRET not in out.out + out.err
    files = world.files_at(world.head())
    assert world.head() != before
    assert files[INVENTORY] == b"# services\napp/config.yml\napp/.env\nweb/compose.yml\n"
    assert (
        b"__REDACTED_" in files["configs/app/.env"]
        and SECRET.encode() not in files["configs/app/.env"]
    )
    assert files["configs/web/compose.yml"].startswith(b"services:")
    assert SECRET in world.store.read_text()
    # a file already listed is captured, never listed twice; nothing new: no commit
    head = world.head()
    assert _add(world, world.home / "app/.env") == ExitCode.OK
    assert world.head() == head
    # the next reconcile has nothing to do: the ledger recorded what add captured
    capsys.readouterr()
    assert world.reconcile("--detailed-exitcode") == ExitCode.OK


def test_add_takes_paths_relative_to_the_current_folder(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world.home / "web")
    assert _add(world, "compose.yml", "../app/.env") == ExitCode.OK
    files = world.files_at(world.head())
    assert b"web/compose.yml\n" in files[INVENTORY] and b"app/.env\n" in files[INVENTORY]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("web/data/app.db", "inside a data folder (data/)"),
        ("web/site.log", "a database, media, archive, log or run-time file"),
        ("web", "a folder; name its files, or write 'web/**'"),
        ("nope.yml", "no such file on the host"),
        ("link.yml", "is a symlink; tether never follows links"),
        ("/etc/hostname", "outside the home"),
    ],
)
def test_add_refuses_with_one_line_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str], path: str, why: str
) -> None:
    (world.home / "link.yml").symlink_to(world.home / "app/config.yml")
    before = world.head()
    target = path if path.startswith("/") else str(world.home / path)
    assert _add(world, world.home / "app/.env", target) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert why in err and "nothing was changed" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert world.head() == before
    assert not world.store.exists()


def test_add_dry_run_writes_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    before = world.head()
    assert _add(world, world.home / "app/.env", "--dry-run") == ExitCode.OK
    assert "allowlist would be extended: app/.env" in capsys.readouterr().out
    assert world.head() == before
    assert not world.store.exists()


def test_capture_only_captures_the_named_paths(world: World) -> None:
    w = World(world.tmp / "two", "app/config.yml\napp/.env\nweb/*.yml\n")
    w.write("app/config.yml", "a: 1\n")
    w.write("app/.env", "PORT=1\n")
    w.write("web/compose.yml", "services: {}\n")
    assert w.capture("--only", "web/*.yml") == ExitCode.OK
    files = w.files_at(w.head())
    assert "configs/web/compose.yml" in files
    assert "configs/app/config.yml" not in files and "configs/app/.env" not in files
    assert w.capture("--only", "app") == ExitCode.OK  # a folder above the paths
    files = w.files_at(w.head())
    assert "configs/app/config.yml" in files and "configs/app/.env" in files


def test_data_is_judged_by_folder_and_name() -> None:
    assert skip_reason("plex/Library/Plex Media Server/Cache/x.xml") is not None
    assert skip_reason("plex/Library/Plex Media Server/Preferences.xml") is None
    assert skip_reason("sonarr/config/sonarr.db") is not None
    assert skip_reason("traefik/dynamic/tls.yaml") is None
    assert skip_reason("app/.env") is None


def test_a_held_file_is_not_listed_and_the_others_are(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.write("app/leak.txt", "x: aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC2dF4gH6jK8\n")
    code = _add(world, world.home / "app/leak.txt", world.home / "web/compose.yml")
    assert code == ExitCode.ATTENTION
    out = capsys.readouterr()
    assert "allowlist extended: web/compose.yml" in out.out
    assert "held back app/leak.txt (line 1: generic-high-entropy)" in out.err
    files = world.files_at(world.head())
    assert files[INVENTORY] == b"# services\napp/config.yml\nweb/compose.yml\n"
    assert "configs/app/leak.txt" not in files


def test_add_json_lists_the_allowlist_lines(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add(world, world.home / "web/compose.yml", "--json") == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["allowlisted"] == ["web/compose.yml"] and doc["pushed"] is True


def test_add_refuses_a_path_the_host_profile_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, "app/config.yml\n", "hosts:\n  pi:\n    exclude: ['web/**']\n")
    w.write("app/config.yml", "a: 1\n")
    w.write("app/.env", "PORT=1\n")
    w.write("web/compose.yml", "services: {}\n")
    before = w.head()
    args = ["--repo", str(w.remote), "--host", "pi", *w.host_args()]
    assert main(["add", str(w.home / "web/compose.yml"), *args]) == ExitCode.USAGE
    assert "host 'pi''s include/exclude in tether.yaml leaves it out" in capsys.readouterr().err
    assert w.head() == before
    assert main(["add", str(w.home / "app/.env"), *args]) == ExitCode.OK
    assert w.files_at(w.head())[INVENTORY] == b"app/config.yml\napp/.env\n"
