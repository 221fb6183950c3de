from __future__ import annotations

from pathlib import Path

import pytest

from tether.cli import main
from tether.config.checks import check_config_repo
from tether.config.manifest import parse_manifest
from tether.config.sourcetree import FolderTree
from tether.config.yamlload import load_yaml
from tether.exitcodes import ExitCode


def test_init_scaffolds_a_valid_repo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = tmp_path / "homelab"
    assert main(["init", str(repo), "--home", "/home/anas"]) == ExitCode.OK
    for name in (
        "tether.yaml",
        "inventory/include-paths.txt",
        ".pre-commit-config.yaml",
        ".gitignore",
    ):
        assert (repo / name).is_file()
    assert (repo / "configs").is_dir()
    assert "home: /home/anas" in (repo / "tether.yaml").read_text()
    assert [f for f in check_config_repo(FolderTree(repo)) if f.level == "error"] == []
    hooks = load_yaml((repo / ".pre-commit-config.yaml").read_text()).data
    ids = {h["id"] for r in hooks["repos"] for h in r["hooks"]}
    assert {"tether-scan", "tether-redact", "tether-validate"} <= ids
    assert "secrets.env" in (repo / ".gitignore").read_text()


def test_init_never_overwrites(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("mine\n")
    assert main(["init", str(tmp_path)]) == ExitCode.OK
    err = capsys.readouterr().err
    assert (tmp_path / "tether.yaml").read_text() == "mine\n"
    assert f"left alone (exists): {tmp_path / 'tether.yaml'}" in err
    assert f"created {tmp_path / '.gitignore'}" in err


def test_init_rejects_a_relative_home(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # a wrong option value: a usage error, as --target-home's is everywhere else
    assert main(["init", str(tmp_path), "--home", "home/x"]) == ExitCode.USAGE
    assert "not absolute" in capsys.readouterr().err
    assert not (tmp_path / "tether.yaml").exists()


@pytest.mark.parametrize("home", ["/home/a #b", "/home/a: b", "/home/it's"])
def test_init_quotes_a_home_yaml_would_misread(tmp_path: Path, home: str) -> None:
    assert main(["init", str(tmp_path), "--home", home]) == ExitCode.OK
    manifest = parse_manifest((tmp_path / "tether.yaml").read_text(), "tether.yaml")
    assert manifest.target_home == home


def test_target_home_is_an_alias_of_home(tmp_path: Path) -> None:
    """The same option name as every other command's --target-home."""
    assert main(["init", str(tmp_path), "--target-home", "/home/bob"]) == ExitCode.OK
    assert "home: /home/bob" in (tmp_path / "tether.yaml").read_text()
