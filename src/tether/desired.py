"""The desired state: which tree it is read from (a folder or a commit)."""

from __future__ import annotations

from tether.errors import UsageError
from tether.options import SourceOptions
from tether.sourcetree import SourceTree


def open_tree(source: SourceOptions) -> SourceTree:
    if source.folder is not None:
        return source.folder_tree()
    raise UsageError("--repo is accepted but reading from a remote is not built yet")
