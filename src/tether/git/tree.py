"""A SourceTree over one commit of a remote, read from the mirror's objects (no work tree).

`open_remote_tree` fetches (or carries on from the last fetch when the remote is down), resolves
the ref and lists the commit's tree once; blobs are read on demand, and `blob_id` lets a caller
compare a destination with the desired file without reading the blob at all.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from pathlib import Path

from tether.config.manifest import MANIFEST_NAME, parse_manifest
from tether.config.sourcetree import link_refused
from tether.errors import GitError, SourceError, TetherError
from tether.git import mirror as gitmirror
from tether.git import objects as gitobjects
from tether.git import publish as gitpublish
from tether.git import remote as gitremote

_BLOB_MODES = (gitpublish.REGULAR, gitpublish.EXECUTABLE)


class RemoteTree:
    """The files of one commit. Close it (or use `with`) to release the mirror's pack files."""

    def __init__(
        self,
        mirror: Path,
        commit: str,
        entries: Mapping[str, tuple[int, str]],
        *,
        display: str,
        ref: str | None = None,
        stale: str | None = None,
        forced: bool = False,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.mirror = mirror
        self.commit = commit
        self.entries = (
            entries if isinstance(entries, gitobjects.Listing) else gitobjects.Listing.of(entries)
        )
        self.display = display
        self.ref = ref
        self.stale = stale  # why the fetch failed, when this is the last fetched revision
        self.forced = forced  # the ref's history was rewritten since the previous fetch
        self.warnings = warnings
        self._reader: gitobjects.ObjectReader | None = None
        self._finalizer: weakref.finalize[[], None] | None = None

    @property
    def label(self) -> str:
        return f"{self.display}@{self.commit[:12]}"

    @property
    def revision(self) -> str | None:
        return self.commit

    def _where(self, relpath: str) -> str:
        return f"{self.label}:{relpath}"

    def mode(self, relpath: str) -> int | None:
        entry = self.entries.get(relpath)
        return entry[0] if entry else None

    def blob_id(self, relpath: str) -> str | None:
        """The git blob id recorded for `relpath`, or None when the commit has no such file."""
        entry = self.entries.get(relpath)
        return entry[1] if entry else None

    def is_file(self, relpath: str) -> bool:
        entry = self.entries.get(relpath)
        return entry is not None and entry[0] in _BLOB_MODES

    def read_bytes(self, relpath: str) -> bytes:
        entry = self.entries.get(relpath)
        if entry is not None and entry[0] == gitobjects.SYMLINK_MODE:
            raise SourceError(link_refused(relpath))  # its blob is the link's target text
        if entry is None:
            if any(p.startswith(relpath.rstrip("/") + "/") for p in self.entries):
                raise SourceError(f"{self._where(relpath)}: is a folder, expected a file")
            raise SourceError(f"{self._where(relpath)}: no such file in the config repo")
        if self._reader is None:
            self._reader = gitobjects.ObjectReader(self.mirror)
            self._finalizer = weakref.finalize(self, self._reader.close)  # type: ignore[arg-type]
        return self._reader.read_blob(entry[1])

    def release(self) -> None:
        if self._reader is not None:
            self._reader.release()

    def files_under(self, folder: str) -> list[str]:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        return sorted(p[len(prefix) :] for p in self.entries if p.startswith(prefix))

    def notices(self) -> list[str]:
        """What a person should hear about this tree: stale, rewritten history, repairs."""
        lines = list(self.warnings)
        if self.forced:
            lines.append(
                f"{self.display}: {self.ref or 'the ref'} was force-pushed (history rewritten); "
                f"following it to {self.commit[:12]}"
            )
        if self.stale:
            lines.append(
                f"{self.display}: fetch failed ({self.stale}); "
                f"using the last fetched revision {self.commit[:12]} (stale)"
            )
        return lines

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._reader = None
        self._finalizer = None

    def __enter__(self) -> RemoteTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_remote_tree(
    repo: str,
    ref: str | None,
    state_dir: Path,
    *,
    require_fresh: bool = False,
    offline: bool = False,
) -> RemoteTree:
    """Fetch `repo` into its mirror and open the commit `ref` names (default: the default branch).

    A failed fetch carries on from the last fetched revision with `stale` set, unless
    `require_fresh` or nothing was ever fetched (GitError). `offline` skips the fetch.
    """
    remote = gitremote.parse_remote(repo)
    path = gitmirror.mirror_path(state_dir, remote)
    stale: str | None = None
    forced_refs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    if offline:
        stale = "not fetched (offline)"
    else:
        try:
            result = gitmirror.fetch(remote, state_dir)
            forced_refs, warnings = result.forced, result.warnings
        except gitremote.FetchFailed as exc:
            if require_fresh:
                raise GitError(
                    exc.message,
                    hint="check the URL, the network and the credentials (a fresh fetch is "
                    "required here: --require-fresh, or a snapshot; the mirror is not used)",
                ) from None
            stale = exc.reason
    if stale is not None:
        if not gitmirror.has_mirror(state_dir, remote):
            raise GitError(
                f"{remote.display}: nothing fetched yet and the fetch failed ({stale})",
                hint="check the URL, the network and the credentials",
            )
        problem = gitmirror.mirror_problem(path)
        if problem is not None:
            raise GitError(
                f"mirror {path} is damaged ({problem}) and the fetch failed ({stale})",
                hint="restore access to the remote, or delete the mirror folder",
            )
        state = gitmirror.read_fetch_state(path)
        if state is not None and state.fetched_at:
            stale = f"{stale}; last fetched {state.fetched_at}"
    try:
        try:
            resolved = gitobjects.resolve(path, ref, display=remote.display)
        except gitobjects.NoDefaultBranch:
            named = _self_named(path)
            if named is None:
                raise
            resolved = gitobjects.resolve(path, named, display=remote.display)
    except GitError as exc:
        if stale is not None:
            exc.hint = f"{exc.hint}; the fetch failed, so this is the last fetched state"
        raise
    entries = gitobjects.list_tree(path, resolved.commit)
    if ref is None:  # the manifest's capture.branch wins over the remote's HEAD
        branch = _manifest_branch(path, entries)
        moved = branch and f"refs/heads/{branch}" != resolved.ref
        if branch and moved and branch in gitobjects.branches(path):
            resolved = gitobjects.resolve(path, branch, display=remote.display)
            entries = gitobjects.list_tree(path, resolved.commit)
    tree = RemoteTree(
        path,
        resolved.commit,
        entries,
        display=remote.display,
        ref=resolved.ref,
        stale=stale,
        forced=resolved.ref in forced_refs,
        warnings=warnings,
    )
    if not tree.is_file(MANIFEST_NAME):
        raise SourceError(
            f"{tree.label}: no {MANIFEST_NAME} at the root of this commit",
            hint="check --ref, or add tether.yaml to the config repo (tether init)",
        )
    return tree


def _self_named(path: Path) -> str | None:
    """With no usable HEAD and several branches: the one branch whose tether.yaml names it as
    capture.branch, if exactly one does."""
    chosen = []
    for branch in gitobjects.branches(path):
        tip = gitobjects.resolve(path, branch)
        if _manifest_branch(path, gitobjects.list_tree(path, tip.commit)) == branch:
            chosen.append(branch)
    return chosen[0] if len(chosen) == 1 else None


def _manifest_branch(path: Path, entries: Mapping[str, tuple[int, str]]) -> str | None:
    """capture.branch of the tether.yaml in a listed commit (None: none, or unreadable: the
    manifest's own checks report it)."""
    found = entries.get(MANIFEST_NAME)
    if found is None:
        return None
    try:
        text = gitobjects.read_blob(path, found[1]).decode("utf-8")
        return parse_manifest(text, MANIFEST_NAME).capture.branch
    except (TetherError, UnicodeDecodeError):
        return None
