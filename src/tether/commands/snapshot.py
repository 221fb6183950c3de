"""`tether snapshot` tags the remote's current head; `tether snapshots` lists the tags.

Restoring one is `tether reconcile --repo URL --ref snapshot/...`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from pathlib import Path

import click

from tether.config.manifest import MANIFEST_NAME, Manifest, parse_manifest
from tether.config.options import SourceOptions, default_state_dir
from tether.errors import GitError, TetherError, UsageError
from tether.exitcodes import ExitCode
from tether.git import objects as gitobjects
from tether.git import publish as gitpublish
from tether.git import remote as gitremote
from tether.git.tree import RemoteTree, open_remote_tree
from tether.jsondoc import json_document

MAX_PER_NAME = 99  # snapshot/{date}, then -2 ... -99 the same day


def _remote_only(source: SourceOptions, command: str) -> str:
    if source.repo is None:
        raise UsageError(f"{command} needs --repo URL", hint="snapshots are tags on a git remote")
    return source.repo


def _manifest(tree: RemoteTree) -> Manifest:
    text = tree.read_bytes(MANIFEST_NAME).decode("utf-8", "replace")
    return parse_manifest(text, f"{tree.label}:{MANIFEST_NAME}")


def tag_name(pattern: str, now: dt.datetime) -> str:
    """`snapshots.tag` with {date} (UTC YYYY-MM-DD) and {time} (UTC HHMMSS) filled in."""
    utc = now.astimezone(dt.UTC)
    return pattern.replace("{date}", utc.strftime("%Y-%m-%d")).replace(
        "{time}", utc.strftime("%H%M%S")
    )


def _prefix(pattern: str) -> str:
    return pattern.split("{", 1)[0]


def _short(ref: str | None) -> str | None:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/") if ref else None


def _echo_notices(tree: RemoteTree) -> None:
    for line in tree.notices():
        click.echo(f"tether: {line}", err=True)


def snapshot(
    source: SourceOptions,
    state_dir: Path | None,
    *,
    name: str | None,
    message: str | None,
    push: bool,
    as_json: bool = False,
    now: dt.datetime | None = None,
) -> int:
    repo = _remote_only(source, "snapshot")
    remote = gitremote.parse_remote(repo)
    moment = now or dt.datetime.now(dt.UTC)
    # A snapshot names the remote's head now: a stale mirror would tag the wrong commit.
    with open_remote_tree(
        repo, source.ref, state_dir or default_state_dir(), require_fresh=True
    ) as tree:
        _echo_notices(tree)
        manifest = _manifest(tree)
        existing = {t.name: t for t in gitobjects.list_tags(tree.mirror)}
        names = _candidates(name, manifest.snapshot_tag, moment)
        unpushed = _unpushed(existing, names, tree.commit, remote) if push else None
        if unpushed is not None:  # made earlier without --push: share that one
            gitpublish.push_tag(remote, tree.mirror, unpushed.name)
            info, created = unpushed, False
        else:
            tag = next((n for n in names if n not in existing), names[0])
            tagger = manifest.capture.author or f"tether <tether@{socket.gethostname()}>"
            text = message or f"tether snapshot of {_short(tree.ref) or tree.commit[:12]}"
            info = gitobjects.create_tag(
                tree.mirror, tag, tree.commit, text, tagger=tagger, when=int(moment.timestamp())
            )
            created = True
            if push:
                try:
                    gitpublish.push_tag(remote, tree.mirror, tag)
                except TetherError as exc:
                    gitpublish.delete_local_tag(tree.mirror, tag)  # a retry can create it again
                    raise GitError(
                        exc.message, hint="the tag was not kept; nothing changed"
                    ) from None
    if as_json:
        click.echo(json_document({**dataclasses.asdict(info), "pushed": push}))
    else:
        where = "pushed to the remote" if push else "in the local mirror only; --push to share it"
        verb = "created tag" if created else "pushed the existing tag"
        click.echo(f"{verb} {info.name} on {info.commit[:12]} ({where})")
    return int(ExitCode.OK)


def _candidates(name: str | None, pattern: str, moment: dt.datetime) -> list[str]:
    """--name alone; else the pattern's name, then -2, -3, ... for more snapshots that day."""
    if name is not None:
        return [name]
    base = tag_name(pattern, moment)
    return [base, *(f"{base}-{n}" for n in range(2, MAX_PER_NAME + 1))]


def _unpushed(
    existing: dict[str, gitobjects.TagInfo],
    names: list[str],
    commit: str,
    remote: gitremote.Remote,
) -> gitobjects.TagInfo | None:
    """A tag of these names on this commit that the remote does not have yet."""
    mine = [existing[n] for n in names if n in existing and existing[n].commit == commit]
    if not mine:
        return None
    on_remote = gitremote.ls_remote(remote)
    return next((t for t in mine if f"refs/tags/{t.name}" not in on_remote), None)


def _local_only(remote: gitremote.Remote, tags: list[gitobjects.TagInfo]) -> set[str] | None:
    """The tags the remote does not have (None: the remote cannot be asked now)."""
    try:
        on_remote = gitremote.ls_remote(remote)
    except gitremote.FetchFailed:
        return None
    return {t.name for t in tags if f"refs/tags/{t.name}" not in on_remote}


def snapshots(
    source: SourceOptions, state_dir: Path | None, *, as_json: bool, all_tags: bool = False
) -> int:
    repo = _remote_only(source, "snapshots")
    with open_remote_tree(repo, source.ref, state_dir or default_state_dir()) as tree:
        _echo_notices(tree)
        prefix = "" if all_tags else _prefix(_manifest(tree).snapshot_tag)
        tags = gitobjects.list_tags(tree.mirror, prefix)
    local = _local_only(gitremote.parse_remote(repo), tags)
    if as_json:
        rows = [
            {**dataclasses.asdict(t), "local_only": None if local is None else t.name in local}
            for t in tags
        ]
        click.echo(json_document({"snapshots": rows}))
    elif not tags:
        click.echo(f"no tags starting with {prefix!r}" if prefix else "no tags", err=True)
    else:
        width = max(len(t.name) for t in tags)
        for t in tags:
            first = t.message.splitlines()[0] if t.message else ""
            mark = (
                "  (local only: snapshot --push to share it)" if local and t.name in local else ""
            )
            click.echo(f"{t.name:<{width}}  {t.date}  {t.commit[:12]}  {first}".rstrip() + mark)
    return int(ExitCode.OK)
