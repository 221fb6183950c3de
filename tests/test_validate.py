from __future__ import annotations

from pathlib import Path

import pytest

from testing.repos import MINIMAL_MANIFEST, make_config_repo
from tether.cli import main
from tether.config.checks import check_config_repo, service_cycle
from tether.config.manifest import Service
from tether.config.sourcetree import FolderTree
from tether.exitcodes import ExitCode


def validate(capsys: pytest.CaptureFixture[str], repo: Path) -> tuple[int, str]:
    code = main(["validate", str(repo)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("version: 1\ntarget: {home: /a\n", "tether.yaml:3:1: "),
        (
            "version: 1\ntarget: {home: 5}\n",
            "tether.yaml:2:16: error: $.target.home: 5 is not of type",
        ),
        ("version: 1\nversion: 1\ntarget: {home: /a}\n", "tether.yaml:2:1: error: duplicate key"),
        ("version: 1\ntarget: {home: /a}\nfilez: {}\n", "did you mean 'files'?"),
    ],
)
def test_bad_manifests_fail_with_file_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, manifest: str, expected: str
) -> None:
    repo = make_config_repo(tmp_path, {"a.yml": "x\n"}, manifest=manifest)
    code, text = validate(capsys, repo)
    assert code == ExitCode.ERROR
    assert expected in text


def test_unsafe_inventory_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path, {"a.yml": "x\n"}, inventory="a.yml\n../../etc/shadow\n")
    code, text = validate(capsys, repo)
    assert code == ExitCode.ERROR
    assert "inventory/include-paths.txt:2: error: '..' segment" in text


def test_missing_inventory_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path, {"a.yml": "x\n"})
    (repo / "inventory" / "include-paths.txt").unlink()
    code, text = validate(capsys, repo)
    assert code == ExitCode.ERROR and "include-paths.txt: error: no such file" in text


def test_unreadable_manifest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path, {"a.yml": "x\n"})
    (repo / "tether.yaml").write_bytes(b"version: 1\n\xff\n")
    code, text = validate(capsys, repo)
    assert code == ExitCode.ERROR and "tether.yaml: error: not UTF-8" in text


def test_missing_manifest_says_how_to_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, text = validate(capsys, tmp_path)
    assert code == ExitCode.ERROR and "no tether.yaml here" in text and "tether init" in text


def findings(repo: Path) -> list[str]:
    return [f"{f.level}: {f.message}" for f in check_config_repo(FolderTree(repo))]


def test_overrides_services_and_missing_files(tmp_path: Path) -> None:
    manifest = MINIMAL_MANIFEST + (
        "files:\n"
        "  a.yml: {mode: '0600'}\n"
        "  tratefik/*.yml: {mode: '0600'}\n"
        "secrets:\n"
        "  map:\n"
        "    nowhere.ini: {key: X}\n"
        "services:\n"
        "  - {name: web, paths: [a.yml], after: [db, dbb]}\n"
        "  - {name: db, paths: [gone/**], after: [cache]}\n"
        "  - {name: cache, after: [web]}\n"
    )
    repo = make_config_repo(
        tmp_path, {"a.yml": "x\n"}, manifest=manifest, inventory="a.yml\nb.yml\nc/*.yml\n"
    )
    got = findings(repo)
    assert "warning: missing: configs/b.yml (restore will skip it)" in got
    assert "warning: 'c/*.yml' matches nothing under configs/" in got
    assert "error: files: 'tratefik/*.yml' matches no tracked path" in got
    assert "warning: secrets.map: 'nowhere.ini' matches no tracked path" in got
    assert "error: service 'web' is after unknown service 'dbb' (did you mean 'db'?)" in got
    assert "warning: service 'db': path 'gone/**' matches no tracked file" in got
    assert "error: services form a cycle: web -> db -> cache -> web" in got


def test_a_clean_repo_has_no_findings(tmp_path: Path) -> None:
    manifest = MINIMAL_MANIFEST + "files:\n  '**/*.yml': {mode: '0640'}\n"
    repo = make_config_repo(tmp_path, {"a/b.yml": "x\n"}, manifest=manifest)
    assert findings(repo) == []


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": ["b"], "b": []}, None),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["a"]}, None),  # self-reference is its own error, not a cycle here
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
        ({"a": ["zzz"]}, None),
    ],
)
def test_service_cycle(graph: dict[str, list[str]], cycle: list[str] | None) -> None:
    services = tuple(Service(name=n, after=tuple(a)) for n, a in graph.items())
    assert service_cycle(services) == cycle


def test_manifest_findings_name_their_line(tmp_path: Path) -> None:
    manifest = MINIMAL_MANIFEST + (  # lines 1-3
        "files:\n"  # 4
        "  tratefik/*.yml: {mode: '0600'}\n"  # 5
        "services:\n"  # 6
        "  - name: web\n"  # 7
        "    after: [db, dbb]\n"  # 8
        "  - name: db\n"  # 9
        "    after: [web]\n"  # 10
    )
    repo = make_config_repo(tmp_path, {"a.yml": "x\n"}, manifest=manifest)
    where = {f.message.split(":")[0]: f.where for f in check_config_repo(FolderTree(repo))}
    assert where["files"] == "tether.yaml:5:3"
    assert where["service 'web' is after unknown service 'dbb' (did you mean 'db'?)"] == (
        "tether.yaml:8:17"
    )
    assert where["services form a cycle"] == "tether.yaml:8:12"


def test_a_manifest_mode_that_exposes_a_secret_holding_file_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_config_repo(
        tmp_path / "repo",
        {"app/.env": "PW=__REDACTED_APP_PW__\n", "app/plain.conf": "x = 1\n"},
        manifest=(
            "version: 1\ntarget:\n  home: /home/u\nfiles:\n"
            "  app/.env:\n    mode: '0644'\n  app/plain.conf:\n    mode: '0644'\n"
        ),
    )
    assert main(["validate", "--source", str(repo)]) == ExitCode.OK  # a warning, not an error
    err = capsys.readouterr().err
    assert "mode 0644 lets others read app/.env, which holds secrets" in err
    assert "plain.conf, which holds" not in err


def test_a_file_no_allowlist_line_covers_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = MINIMAL_MANIFEST + (
        "hosts:\n  pi:\n    inventory: [hosts/pi/include-paths.txt]\n  big: {}\n"
    )
    files = {"a.yml": "x\n", "app/b.yml": "x\n", "stray.yml": "x\n", "pi-only.toml": "x\n"}
    repo = make_config_repo(tmp_path, files, manifest=manifest, inventory="a.yml\napp/*.yml\n")
    (repo / "hosts" / "pi").mkdir(parents=True)
    (repo / "hosts" / "pi" / "include-paths.txt").write_text("pi-only.toml\n")
    (repo / "configs" / "empty").mkdir()
    (repo / "configs" / "empty" / ".gitkeep").write_text("")
    code, text = validate(capsys, repo)
    assert code == ExitCode.OK  # a warning, not an error
    assert (
        "configs/stray.yml: warning: no line of inventory/include-paths.txt covers it: reconcile "
        "never writes it (add it there, or delete the file)\n" in text
    )
    assert text.count("covers it") == 1  # not pi-only.toml (pi's own list), not .gitkeep
    assert "(0 errors, 1 warning)" in text


def test_many_uncovered_files_end_in_a_count(tmp_path: Path) -> None:
    files = {f"junk/{n:02}.txt": "x\n" for n in range(25)}
    repo = make_config_repo(tmp_path, {"a.yml": "x\n", **files}, inventory="a.yml\n")
    got = findings(repo)
    assert sum("covers it" in line for line in got) == 20
    assert got[-1] == "warning: and 5 more files like these"
