"""One reconcile run's inputs, gathered once: config repo, state, desired, actual, plan.

Shared by `tether reconcile` and `tether apply PLAN.json` so both see the host the same way.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.manifest import Manifest
from tether.config.options import HostOptions, SourceOptions
from tether.errors import warn
from tether.hostfs.fsutil import git_work_tree
from tether.hostfs.host import TEMP_PREFIX, Confinement, read_regular, require_root
from tether.reconcile.desired import CACHE_BUDGET, DesiredState, build_desired, open_tree
from tether.reconcile.planner import Actual, Plan, plan
from tether.secrets.store import SecretStore, load_store, store_path
from tether.state.keyring import Keyring, load_key
from tether.state.ledger import LedgerEntry, load_repo_ledger, repo_ledger_dir
from tether.state.statedir import ensure_state_dir


@dataclass
class Run:
    source: SourceOptions
    repo: ConfigRepo
    root: str
    home: str
    state_dir: Path
    keyring: Keyring
    store: SecretStore
    ledger: dict[str, LedgerEntry]
    desired: DesiredState
    confinement: Confinement
    ledger_dir: Path  # this config repo's ledger (state_dir/repos/...)

    def make_plan(self, *, overwrite: bool, prune: bool) -> Plan:
        """The plan, observing each destination as it is planned (the host as it is now)."""
        return plan(self.desired.files, self.ledger, self.observe, overwrite=overwrite, prune=prune)

    def observe(self, dest: str, known: LedgerEntry | None) -> Actual:
        """`dest` as found; hashed only when the stat cache (`known`'s signature) cannot vouch
        for it."""
        probe = self.confinement.probe(dest, known.sig if known is not None else None)
        if probe.kind != "file":
            return Actual(probe.kind, reason=probe.reason)
        if known is not None and known.vouches_for(probe):
            digest = known.hash
        else:
            assert probe.real is not None
            try:
                digest = self.keyring.hash(read_regular(probe.real))
            except OSError as exc:
                return Actual("blocked", reason=f"{dest}: cannot read ({exc.strerror})")
        return Actual("file", digest, None, probe.mode, probe.uid, probe.gid, probe.sig)

    def secrets_to_mask(self) -> dict[str, str]:
        """Every secret value this run knows, by name: masked in diffs and handler output."""
        known = self.store.known()
        for desired in self.desired.files:
            for name in desired.secrets:
                value = self.store.get(name)
                if value:
                    known[name] = value
        return known

    def read_actual(self, dest: str) -> bytes | None:
        """The destination's bytes now (for a diff), or None."""
        probe = self.confinement.probe(dest)
        if probe.kind != "file" or probe.real is None:
            return None
        try:
            return read_regular(probe.real)
        except OSError:
            return None


def rekey(
    ledger: Mapping[str, LedgerEntry], confinement: Confinement, keyring: Keyring
) -> dict[str, LedgerEntry]:
    """The hash key was replaced (deleted, or damaged): the recorded hashes mean nothing now.
    A destination still exactly as tether wrote it (same stat signature) is hashed again with
    the new key, so it is not rewritten with identical bytes; one changed since keeps its old
    entry and is planned as drift or conflict, as it should be. Said once, on stderr."""
    rekeyed: dict[str, LedgerEntry] = {}
    kept = 0
    for dest, entry in ledger.items():
        probe = confinement.probe(dest)
        if probe.kind == "file" and probe.real is not None and entry.vouches_for(probe):
            with contextlib.suppress(OSError):
                digest = keyring.hash(read_regular(probe.real))
                rekeyed[dest] = entry._replace(hash=digest, secret_digest=None)
                continue
        rekeyed[dest] = entry
        kept += 1
    warn(
        f"the hash key changed (deleted or replaced): re-keyed {len(ledger) - kept} ledger "
        f"entries from files unchanged since tether wrote them; {kept} changed since are "
        "planned as drift or conflict"
    )
    return rekeyed


def resolve_paths(
    manifest: Manifest, target_root: Path | None, target_home: str | None
) -> tuple[str, str]:
    """The target root (given, else the manifest's, else /; symlinks resolved, must exist) and
    home (given, else the manifest's): the same for reconcile and capture."""
    root = os.path.realpath(target_root if target_root is not None else root_input(manifest))
    require_root(root)
    return root, target_home or manifest.target_home


def root_input(manifest: Manifest) -> str:
    """The target root the manifest names, before its symlinks are resolved (default /)."""
    return manifest.target_root or "/"


def prepare(
    source: SourceOptions,
    host: HostOptions,
    *,
    explicit_root: bool,
    rebuild_ledger: bool = False,
    require_fresh: bool = False,
    keep_content: bool = True,
) -> Run:
    """`keep_content`: keep rendered bytes (up to CACHE_BUDGET) for the apply or a diff to
    write without reading them again; a plan that does neither holds none."""
    # Tens of thousands of small immutable values and no cycles: collecting is wasted time.
    gc.set_threshold(200_000, 50, 100)
    state_dir = ensure_state_dir(host.state_dir)
    tree = open_tree(source, state_dir, require_fresh=require_fresh)
    repo = open_config_repo(tree, cache_dir=state_dir, host=host.host_name)
    root, home = resolve_paths(
        repo.manifest, host.target_root if explicit_root else None, host.target_home
    )
    keyring = load_key(state_dir)
    ledger_dir = repo_ledger_dir(state_dir, source_identity(source, repo))
    store = load_store(store_path(host.secrets_file, repo.manifest.secrets_file))
    confinement = Confinement(root)
    ledger: dict[str, LedgerEntry] = {}
    if not rebuild_ledger:
        loaded = load_repo_ledger(state_dir, ledger_dir, repo.tracked_paths)
        ledger = loaded
        if loaded.key_id not in (None, keyring.key_id):
            ledger = rekey(loaded, confinement, keyring)
    desired = build_desired(
        repo,
        target_root=root,
        target_home=home,
        store=store,
        keyring=keyring,
        ledger=ledger,
        hostname=repo.host or host.host_name or socket.gethostname(),
        cache_budget=CACHE_BUDGET if keep_content else 0,
    )
    if source.folder is not None and git_work_tree(source.folder) is not None:
        from tether.git.clone import clone_state  # noqa: PLC0415 (dulwich: only for a clone)

        clone = clone_state(source.folder, state_dir)
        desired.warnings.extend(clone.lines() if clone else ())
    return Run(
        source,
        repo,
        root,
        home,
        state_dir,
        keyring,
        store,
        ledger,
        desired,
        confinement,
        ledger_dir,
    )


def source_identity(source: SourceOptions, repo: ConfigRepo) -> str:
    """The config repo's identity: --repo's URL; for a folder, the remote capture pushes it to
    (so reconcile and capture share one ledger), else the folder's real path."""
    url = source.repo or repo.manifest.capture.remote
    if url:
        from tether.git.remote import repo_identity  # noqa: PLC0415 (dulwich: only for a URL)

        return repo_identity(url)
    assert source.folder is not None
    return str(source.folder.resolve())


__all__ = ["TEMP_PREFIX", "Run", "prepare"]
