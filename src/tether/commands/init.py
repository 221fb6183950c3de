"""`tether init DIR`: scaffold a config repo without touching existing files."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click
import yaml

from tether.config.manifest import DEFAULT_BRANCH, MANIFEST_NAME
from tether.config.options import check_remote
from tether.errors import TetherError, UsageError
from tether.exitcodes import ExitCode
from tether.git.worktree import init_with_files, set_origin, sync_work_tree
from tether.hostfs.discover import MAX_ENTRIES, propose, render_proposal

INVENTORY = "inventory/include-paths.txt"
# (path in the new repo, template file in tether/templates)
SCAFFOLD = (
    ("tether.yaml", "tether.yaml"),
    ("inventory/include-paths.txt", "include-paths.txt"),
    ("configs/.gitkeep", "gitkeep"),
    (".pre-commit-config.yaml", "pre-commit-config.yaml"),
    (".gitignore", "gitignore"),
)


def _template(name: str) -> str:
    return resources.files("tether").joinpath("templates", name).read_text(encoding="utf-8")


def yaml_scalar(text: str) -> str:
    """`text` as written after `key: `: plain when YAML reads it back unchanged, else quoted."""
    try:
        if yaml.safe_load(f"k: {text}") == {"k": text}:
            return text
    except yaml.YAMLError:
        pass
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _home(target_home: str | None) -> str:
    home = target_home or str(Path.home())
    if not home.startswith("/"):
        raise UsageError(f"--home {home}: not absolute", hint="write it as /home/NAME")
    return home


def init(directory: Path, *, target_home: str | None) -> int:
    _scaffold(directory, _home(target_home), {})
    click.echo(
        f"next: list files in {directory / 'inventory/include-paths.txt'}, "
        f"then `tether capture` or copy them under {directory / 'configs'}/",
        err=True,
    )
    return int(ExitCode.OK)


def _scaffold(directory: Path, home: str, texts: dict[str, str]) -> list[str]:
    """Write the scaffold (`texts` replaces a template's text by path); the paths written."""
    written, kept = [], []
    for relpath, template in SCAFFOLD:
        target = directory / relpath
        if target.exists() or target.is_symlink():
            kept.append(relpath)
            continue
        text = texts.get(relpath, _template(template)).replace("{home}", yaml_scalar(home))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise TetherError(
                f"{target}: cannot write ({exc.strerror})", hint="check the folder's permissions"
            ) from None
        written.append(relpath)
    for relpath in written:
        click.echo(f"created {directory / relpath}", err=True)
    for relpath in kept:
        click.echo(f"left alone (exists): {directory / relpath}", err=True)
    return written


def start_from_host(directory: Path, *, target_home: str | None, remote: str | None) -> str:
    """`init --from-host`, before its first capture: check everything, propose the allowlist
    from the home, scaffold, `git init` and commit; returns the home. Nothing is written when
    an argument is wrong."""
    home = _home(target_home)
    if not Path(home).is_dir():
        raise UsageError(f"--home {home}: no such folder", hint="give the home to capture")
    if remote is not None:
        check_remote(remote)
    if (directory / MANIFEST_NAME).exists() or (directory / ".git").exists():
        raise UsageError(
            f"{directory}: already holds a config repo or a git repo",
            hint="give a new folder; to track more files of an existing repo use `tether add`",
        )
    found = propose(Path(home))
    if not found.paths:
        stopped = f", within the first {MAX_ENTRIES} names" if found.truncated else ""
        raise TetherError(
            f"{home}: no service config found (compose files, .env, known services' folders)"
            f"{stopped}",
            hint="`tether init DIR` scaffolds an empty repo; list the files by hand",
        )
    manifest = _template("tether.yaml")
    if remote is not None:
        manifest = manifest.replace("capture:\n", f"capture:\n  remote: {yaml_scalar(remote)}\n")
    texts = {"tether.yaml": manifest, INVENTORY: render_proposal(found, home)}
    written = _scaffold(directory, home, texts)
    init_with_files(directory, DEFAULT_BRANCH, written, "tether init --from-host: scaffold")
    click.echo(f"proposed {len(found.paths)} file(s) of {len(found.services)} service(s)", err=True)
    return home


def finish_from_host(directory: Path, remote: str | None, code: int) -> int:
    """After the first capture into `directory`: its work tree, origin, and the next command."""
    sync_work_tree(directory)
    if code != ExitCode.OK:
        click.echo(
            f"the first capture needs attention (above); fix it, then `tether capture "
            f"--repo {directory}`",
            err=True,
        )
        return code
    inventory = directory / INVENTORY
    if remote is None:
        click.echo(
            f"next: review {inventory}, set capture.remote in {directory / MANIFEST_NAME} "
            "and push the repo there",
            err=True,
        )
        return code
    set_origin(directory, remote, DEFAULT_BRANCH)
    click.echo(
        f"next: review {inventory}, then `git -C {directory} push -u origin {DEFAULT_BRANCH}`",
        err=True,
    )
    return code
