"""Where a config repo's bytes come from: a folder now, a git commit through the git layer.

Everything above this seam (validate, the desired state, reconcile) reads a `SourceTree`, so
`--source DIR` and `--repo URL` share one engine and differ only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from tether.config.inventory import walk_files
from tether.errors import SourceError


class SourceTree(Protocol):
    @property
    def label(self) -> str:
        """How the tree is named in messages: a folder path or `URL@revision`."""

    @property
    def revision(self) -> str | None:
        """The commit id the tree was read from, or None for a plain folder."""

    @property
    def stale(self) -> str | None:
        """Why the tree is not the latest (a failed fetch, the last fetched revision used)."""

    @property
    def forced(self) -> bool:
        """The ref's history was rewritten since the previous fetch."""

    def read_bytes(self, relpath: str) -> bytes:
        """The bytes at `relpath` ('/'-separated); SourceError when missing."""

    def blob_id(self, relpath: str) -> str | None:
        """The git blob id of `relpath` when known without reading it (a commit's tree)."""

    def is_file(self, relpath: str) -> bool: ...

    def files_under(self, folder: str) -> list[str]:
        """Every file below `folder`, as paths relative to it."""


class FolderTree:
    """A config repo checked out (or just kept) in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def label(self) -> str:
        return str(self.root)

    @property
    def revision(self) -> str | None:
        return None

    @property
    def stale(self) -> str | None:
        return None  # a folder is read as it is now

    @property
    def forced(self) -> bool:
        return False

    def blob_id(self, relpath: str) -> str | None:
        return None  # a folder's files are hashed by reading them (the stat cache saves that)

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def read_bytes(self, relpath: str) -> bytes:
        target = self.path(relpath)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{target}: no such file in the config repo") from None
        except IsADirectoryError:
            raise SourceError(f"{target}: is a folder, expected a file") from None
        except PermissionError:
            raise SourceError(
                f"{target}: permission denied", hint="make it readable by this user"
            ) from None

    def is_file(self, relpath: str) -> bool:
        return self.path(relpath).is_file()

    def files_under(self, folder: str) -> list[str]:
        top = self.path(folder)
        if not top.is_dir():
            return []
        return walk_files(top)

    def stat(self, relpath: str) -> os.stat_result:
        return self.path(relpath).stat()
