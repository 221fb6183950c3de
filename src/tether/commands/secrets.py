"""`tether secrets list|check|export|import`: the secret store against the config repo's
placeholders, and the store sealed with a passphrase to move it to another host.

Names and places only: no value is ever printed, in text, JSON or errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.manifest import DEFAULT_SECRETS_FILE, MANIFEST_NAME
from tether.config.sourcetree import FolderTree
from tether.errors import SecretError, SourceError, UsageError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import write_atomic
from tether.jsondoc import json_document
from tether.secrets.render import BARE, BARE_HINT, PLACEHOLDER, bare_name
from tether.secrets.sealed import home_relative, seal, unseal
from tether.secrets.store import (
    SecretStore,
    StoreConflict,
    check_private,
    load_store,
    save_values,
    store_path,
)
from tether.textsafe import counted


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
        click.echo(json_document(payload))
        return int(ExitCode.OK)
    for name, where in sorted(by_name.items()):
        state = "stored" if name in stored else "MISSING"
        places = ", ".join(f"{u.path}:{u.line}" for u in where)
        click.echo(f"{name}  {state}  {places}")
    for name in unused:
        click.echo(f"{name}  stored  (not used in the repo)")
    click.echo(f"{counted(len(by_name), 'name')} used, {len(unused)} stored but unused", err=True)
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
        click.echo(json_document(payload))
    else:
        for use in missing:
            if use.name is None:
                click.echo(f"{use.path}:{use.line}: bare REDACTED with no name ({BARE_HINT})")
            else:
                click.echo(f"{use.path}:{use.line}: {use.name} has no value in the store")
        where = store.path or "the environment"
        if missing:
            click.echo(
                f"{counted(len(missing), 'placeholder')} cannot be filled from {where}", err=True
            )
        else:
            click.echo(f"every placeholder has a value in {where}", err=True)
    return int(ExitCode.ATTENTION if missing else ExitCode.OK)


MAX_EXPORT = 64 << 20  # a store of whole-file secrets is kilobytes; never read a disk image
_MAX_PASSPHRASE_FILE = 64 << 10
PASSPHRASE_ENV = "TETHER_PASSPHRASE"  # noqa: S105 (the variable's name, not a value)


def _store_file(
    source: Path | None, secrets_file: Path | None, host: str | None, recorded: str | None = None
) -> Path:
    """--secrets-file (or TETHER_SECRETS_FILE); else the config repo's (--source, or the current
    folder when it holds tether.yaml); else where the exported store was; else the default."""
    if secrets_file is not None:
        return secrets_file.expanduser()
    folder = source or Path.cwd()
    if source is not None or (folder / MANIFEST_NAME).is_file():
        return store_path(
            None, open_config_repo(FolderTree(folder), host=host).manifest.secrets_file
        )
    return store_path(None, recorded or DEFAULT_SECRETS_FILE)


def _passphrase(file: Path | None, environ: Mapping[str, str], *, confirm: bool) -> str:
    """From --passphrase-file, else TETHER_PASSPHRASE, else asked on the terminal (no echo)."""
    if file is not None:
        try:
            fd = os.open(file, os.O_RDONLY)  # links followed: `<(pass show x)` is /dev/fd/N
            with os.fdopen(fd, "rb") as handle:
                check_private(file, os.fstat(handle.fileno()))
                raw = handle.read(_MAX_PASSPHRASE_FILE)  # the first line is all it takes
        except OSError as exc:
            raise SecretError(f"{file}: cannot read the passphrase ({exc.strerror})") from None
        text = raw.decode("utf-8", "replace").split("\n", 1)[0].removesuffix("\r")
        where = f"--passphrase-file {file}"
    elif environ.get(PASSPHRASE_ENV) is not None:
        text, where = environ[PASSPHRASE_ENV], PASSPHRASE_ENV
    elif sys.stdin.isatty():
        text = click.prompt("Passphrase", hide_input=True, err=True)
        if confirm and click.prompt("Passphrase again", hide_input=True, err=True) != text:
            raise UsageError("the two passphrases differ", hint="run it again")
        where = "the prompt"
    else:
        raise UsageError(
            "no passphrase: no terminal to ask on",
            hint=f"set {PASSPHRASE_ENV} or pass --passphrase-file FILE",
        )
    if not text:
        raise UsageError(f"the passphrase from {where} is empty", hint="give one")
    return text


def export_secrets(
    to: Path,
    *,
    source: Path | None,
    secrets_file: Path | None,
    passphrase_file: Path | None,
    force: bool,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
) -> int:
    """Seal the store's values (not environment overrides) into `to`, 0600."""
    env = os.environ if environ is None else environ
    path = _store_file(source, secrets_file, host)
    values = dict(load_store(path, {}).file_values)
    if not values:
        raise SecretError(f"{path}: the secret store is empty or missing: nothing to export")
    if not force and os.path.lexists(to):
        raise UsageError(f"{to}: exists", hint="choose another name, or pass --force to replace it")
    if not to.parent.is_dir():
        raise UsageError(f"{to.parent}: no such folder", hint="create it first")
    data = seal(values, _passphrase(passphrase_file, env, confirm=True), store=home_relative(path))
    try:
        write_atomic(to, data, 0o600)
    except OSError as exc:
        raise SecretError(f"{to}: cannot write ({exc.strerror})") from None
    click.echo(f"exported {counted(len(values), 'secret')} from {path} to {to}", err=True)
    return int(ExitCode.OK)


def import_secrets(
    from_file: Path,
    *,
    source: Path | None,
    secrets_file: Path | None,
    passphrase_file: Path | None,
    overwrite: bool,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
) -> int:
    """Merge an export into the store: new names added, equal ones kept; a name whose value
    differs stops the import (nothing written) unless `overwrite`. Nothing is removed."""
    env = os.environ if environ is None else environ
    try:
        with from_file.open("rb") as handle:
            data = handle.read(MAX_EXPORT + 1)
    except OSError as exc:
        raise SecretError(f"{from_file}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_EXPORT:
        raise SecretError(
            f"{from_file}: larger than {MAX_EXPORT >> 20} MiB, so not an export",
            hint="give the file `tether secrets export` wrote",
        )
    sealed = unseal(data, _passphrase(passphrase_file, env, confirm=False), str(from_file))
    path = _store_file(source, secrets_file, host, sealed.store)
    current: dict[str, str] = {}

    def refuse_differing(stored: Mapping[str, str]) -> None:  # run under the store's lock
        current.update(stored)
        differ = sorted(n for n, v in sealed.values.items() if stored.get(n, v) != v)
        if differ and not overwrite:
            raise StoreConflict(
                f"the export holds another value for {counted(len(differ), 'secret')}: "
                f"{', '.join(differ)}",
                where=str(path),
                hint="nothing imported; pass --overwrite to replace them",
            )

    changed = set(save_values(path, sealed.values, guard=refuse_differing))
    for name in sorted(changed):
        click.echo(f"{name}  {'replaced' if name in current else 'added'}")
    added = len(changed - set(current))
    click.echo(
        f"imported {counted(len(sealed.values), 'secret')} into {path}: {added} added, "
        f"{len(changed) - added} replaced, {len(sealed.values) - len(changed)} unchanged",
        err=True,
    )
    return int(ExitCode.OK)
