"""The desired state: which tree it is read from (a folder or a commit)."""

from __future__ import annotations

from pathlib import Path

import click

from tether.options import SourceOptions, default_state_dir
from tether.sourcetree import SourceTree


def open_tree(
    source: SourceOptions, state_dir: Path | None = None, *, require_fresh: bool = False
) -> SourceTree:
    if source.folder is not None:
        return source.folder_tree()
    from tether.gittree import open_remote_tree  # noqa: PLC0415 (dulwich loads only for --repo)

    assert source.repo is not None
    tree = open_remote_tree(
        source.repo, source.ref, state_dir or default_state_dir(), require_fresh=require_fresh
    )
    for line in tree.notices():  # stale source, rewritten history, a re-cloned mirror
        click.echo(f"tether: {line}", err=True)
    return tree
