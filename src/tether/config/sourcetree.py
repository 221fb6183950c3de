"""Where a config repo's bytes come from: a folder now, a git commit through the git layer.

Everything above this seam (validate, the desired state, reconcile) reads a `SourceTree`, so
`--source DIR` and `--repo URL` share one engine and differ only here.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Protocol

from tether.config.inventory import walk_files
from tether.errors import SourceError


def link_refused(relpath: str) -> str:
    return (
        f"{relpath} is a symlink in the config repo; tether never follows links there "
        "(put the file itself in the repo)"
    )


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

    def release(self) -> None:
        """Let go of what many reads kept resident (a mirror's mapped pack pages); reading
        again still works."""


class FolderTree:
    """A config repo checked out (or just kept) in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._links: dict[str, bool] = {}
        self._parents: dict[str, str | None] = {}

    def release(self) -> None:
        """Nothing to let go: a folder's reads keep nothing."""

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

    def linked_folder(self, relpath: str) -> str | None:
        """The first folder on the way to `relpath` that is a symlink, or None. Links are never
        followed: a link to a private file elsewhere must not become a host file."""
        parent = relpath.rpartition("/")[0]
        if not parent:
            return None
        if parent in self._parents:  # one answer per folder: its files share it
            return self._parents[parent]
        self._parents[parent] = found = self._linked_folder(parent)
        return found

    def _linked_folder(self, parent: str) -> str | None:
        parts = parent.split("/")
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            known = self._links.get(folder)
            if known is None:
                try:
                    known = stat.S_ISLNK(os.lstat(self.root / folder).st_mode)
                except OSError:
                    known = False
                self._links[folder] = known
            if known:
                return folder
        return None

    def read_bytes(self, relpath: str) -> bytes:
        target = self.path(relpath)
        linked = self.linked_folder(relpath)
        if linked is not None:
            raise SourceError(link_refused(linked))
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise SourceError(f"{target}: no such file in the config repo") from None
        except IsADirectoryError:
            raise SourceError(f"{target}: is a folder, expected a file") from None
        except PermissionError:
            raise SourceError(
                f"{target}: permission denied", hint="make it readable by this user"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the file itself is a link
                raise SourceError(link_refused(relpath)) from None
            raise SourceError(f"{target}: cannot read ({exc.strerror})") from None

    def is_file(self, relpath: str) -> bool:
        return self.path(relpath).is_file()

    def files_under(self, folder: str) -> list[str]:
        top = self.path(folder)
        if not top.is_dir():
            return []
        return walk_files(top)

    def stat(self, relpath: str) -> os.stat_result:
        return self.path(relpath).stat()
