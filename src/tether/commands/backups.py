"""`tether backups` (list) and `tether backups restore ID`."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import click

from tether.errors import HostError
from tether.exitcodes import ExitCode
from tether.hostfs.host import Confinement, RealHost, WriteOp, describe_os_error, read_regular
from tether.jsondoc import json_document
from tether.state.backups import BackupStore
from tether.state.keyring import load_key
from tether.state.lock import state_lock
from tether.state.statedir import ensure_state_dir


def list_backups(state_dir: Path, *, as_json: bool) -> int:
    store = BackupStore(ensure_state_dir(state_dir), load_key(state_dir))
    rows = store.list()
    if as_json:
        click.echo(json_document({"backups": [asdict(b) for b in rows]}))
        return int(ExitCode.OK)
    if not rows:
        click.echo("no backups yet", err=True)
    for b in rows:
        click.echo(f"{b.id}  {b.time}  {b.size:>8}  {b.reason:<11}  {b.dest}")
    return int(ExitCode.OK)


def restore_backup(state_dir: Path, backup_id: str, *, wait: float = 0.0) -> int:
    """Put a backup's bytes back at its destination (atomically, backing up what is there)."""
    ensure_state_dir(state_dir)
    with state_lock(state_dir, f"backups restore {backup_id}", wait):
        store = BackupStore(state_dir, load_key(state_dir))
        backup, data = store.get(backup_id)
        confinement = Confinement(backup.root)  # the target root it was taken under
        probe = confinement.probe(backup.dest)
        if probe.kind == "blocked":
            raise HostError(f"cannot restore {backup.id}: {probe.reason}")
        if probe.kind == "file" and probe.real is not None:
            try:
                current = read_regular(probe.real)  # never through a link swapped in since
            except OSError as exc:
                raise HostError(
                    f"{backup.dest}: cannot read it to back it up ({describe_os_error(exc)})",
                    hint="nothing was restored; fix its permissions and retry",
                ) from None
            if current == data:
                click.echo(f"{backup.dest} already holds backup {backup.id}")
                return int(ExitCode.OK)
            saved = store.save(backup.dest, current, probe, reason="restore", root=backup.root)
            click.echo(f"backed up the current {backup.dest} as {saved.id}", err=True)
        root = os.geteuid() == 0
        op = WriteOp(
            backup.dest,
            data,
            backup.mode,
            backup.uid if root else -1,
            backup.gid if root else -1,
            expect=probe.sig,
        )
        (result,) = RealHost(confinement).write_files([op])
    if not result.ok:
        raise HostError(f"{backup.dest}: not restored ({result.error})")
    click.echo(f"restored {backup.dest} from backup {backup.id}")
    return int(ExitCode.OK)
