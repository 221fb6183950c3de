"""`tether secrets list|check`: the placeholders of the config repo against the secret store.

Names and places only: no value is ever printed, in text or JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.sourcetree import FolderTree
from tether.errors import SourceError
from tether.exitcodes import ExitCode
from tether.secrets.render import BARE, PLACEHOLDER, bare_name
from tether.secrets.store import SecretStore, load_store, store_path


@dataclass(frozen=True)
class Use:
    name: str | None  # None: a bare REDACTED nothing names
    path: str  # inventory path
    line: int


def uses(repo: ConfigRepo, store: SecretStore) -> list[Use]:
    """Every placeholder in the repo's tracked files, in path and line order."""
    found: list[Use] = []
    for path in repo.tracked_paths:
        try:
            data = repo.tree.read_bytes(repo.source_path(path))
        except SourceError:
            continue
        if b"REDACTED" not in data:
            continue
        names = repo.manifest.secret_names_for(path)
        for match in PLACEHOLDER.finditer(data):
            found.append(Use(match["name"].decode(), path, data.count(b"\n", 0, match.start()) + 1))
        for match in BARE.finditer(data):
            line = data.count(b"\n", 0, match.start()) + 1
            found.append(Use(bare_name(data, match.start(), names, store.get), path, line))
    return sorted(found, key=lambda u: (u.path, u.line, u.name or ""))


def _context(
    source: Path | None,
    secrets_file: Path | None,
    environ: Mapping[str, str] | None,
    host: str | None = None,
) -> tuple[ConfigRepo, SecretStore]:
    repo = open_config_repo(FolderTree(source or Path.cwd()), host=host)
    return repo, load_store(store_path(secrets_file, repo.manifest.secrets_file), environ)


def list_secrets(
    source: Path | None,
    secrets_file: Path | None,
    *,
    as_json: bool,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
) -> int:
    repo, store = _context(source, secrets_file, environ, host)
    by_name: dict[str, list[Use]] = {}
    for use in uses(repo, store):
        by_name.setdefault(use.name or "REDACTED", []).append(use)
    stored = set(store.names()) | {n for n in by_name if store.get(n) is not None}
    unused = sorted(set(store.names()) - set(by_name))
    if as_json:
        payload = {
            "store": str(store.path) if store.path else None,
            "secrets": [
                {
                    "name": name,
                    "stored": name in stored,
                    "used": [{"path": u.path, "line": u.line} for u in where],
                }
                for name, where in sorted(by_name.items())
            ],
            "unused": unused,
        }
        click.echo(json.dumps(payload, indent=2))
        return int(ExitCode.OK)
    for name, where in sorted(by_name.items()):
        state = "stored" if name in stored else "MISSING"
        places = ", ".join(f"{u.path}:{u.line}" for u in where)
        click.echo(f"{name}  {state}  {places}")
    for name in unused:
        click.echo(f"{name}  stored  (not used in the repo)")
    click.echo(f"{len(by_name)} name(s) used, {len(unused)} stored but unused", err=True)
    return int(ExitCode.OK)


def check_secrets(
    source: Path | None,
    secrets_file: Path | None,
    *,
    as_json: bool,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
) -> int:
    repo, store = _context(source, secrets_file, environ, host)
    missing = [u for u in uses(repo, store) if u.name is None or store.get(u.name) is None]
    if as_json:
        payload = {
            "ok": not missing,
            "missing": [{"name": u.name, "path": u.path, "line": u.line} for u in missing],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for use in missing:
            if use.name is None:
                click.echo(
                    f"{use.path}:{use.line}: bare REDACTED with no name "
                    "(map it under secrets.map in tether.yaml, or redact it again)"
                )
            else:
                click.echo(f"{use.path}:{use.line}: {use.name} has no value in the store")
        where = store.path or "the environment"
        if missing:
            click.echo(f"{len(missing)} placeholder(s) cannot be filled from {where}", err=True)
        else:
            click.echo(f"every placeholder has a value in {where}", err=True)
    return int(ExitCode.ATTENTION if missing else ExitCode.OK)
