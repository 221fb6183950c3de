"""`tether init DIR`: scaffold a config repo without touching existing files."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click
import yaml

from tether.errors import TetherError, UsageError
from tether.exitcodes import ExitCode

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


def init(directory: Path, *, target_home: str | None) -> int:
    home = target_home or str(Path.home())
    if not home.startswith("/"):
        raise UsageError(f"--home {home}: not absolute", hint="write it as /home/NAME")
    written, kept = [], []
    for relpath, template in SCAFFOLD:
        target = directory / relpath
        if target.exists() or target.is_symlink():
            kept.append(relpath)
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8") as out:
                out.write(_template(template).replace("{home}", yaml_scalar(home)))
        except OSError as exc:
            raise TetherError(
                f"{target}: cannot write ({exc.strerror})", hint="check the folder's permissions"
            ) from None
        written.append(relpath)
    for relpath in written:
        click.echo(f"created {directory / relpath}", err=True)
    for relpath in kept:
        click.echo(f"left alone (exists): {directory / relpath}", err=True)
    click.echo(
        f"next: list files in {directory / 'inventory/include-paths.txt'}, "
        f"then `tether capture` or copy them under {directory / 'configs'}/",
        err=True,
    )
    return int(ExitCode.OK)
