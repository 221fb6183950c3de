from __future__ import annotations

from pathlib import Path

from testing.reconcile import make_site
from tether.config.configrepo import open_config_repo
from tether.config.sourcetree import FolderTree
from tether.reconcile.desired import DesiredState, build_desired, destination, names_host
from tether.secrets.store import load_store
from tether.state.keyring import Keyring


def test_destination() -> None:
    assert destination("/", "/home/a", "x/y", None) == "/home/a/x/y"
    assert destination("/host", "/home/a", "x/y", None) == "/host/home/a/x/y"
    assert destination("/host/", "/", "x", None) == "/host/x"
    assert destination("/host", "/home/a", "x", "/etc/../etc/x.conf") == "/host/etc/x.conf"


def test_hosts_filter_full_or_short_name() -> None:
    assert names_host(("nas",), "nas.lan")
    assert names_host(("nas.lan",), "nas.lan")
    assert not names_host(("pi",), "nas.lan")


def _desired(tmp_path: Path, manifest: str, *, is_root: bool) -> DesiredState:
    site = make_site(tmp_path, {"a": "1", "b": "2"}, manifest=manifest)
    repo = open_config_repo(FolderTree(site.repo))
    return build_desired(
        repo,
        target_root=str(site.root),
        target_home="/home/demo",
        store=load_store(None, {}),
        keyring=Keyring(b"k" * 32),
        ledger={},
        hostname="h",
        is_root=is_root,
    )


OWNED = 'version: 1\ntarget:\n  home: /home/demo\nfiles:\n  a:\n    owner: root\n    group: "0"\n  b:\n    owner: no-such-user-xyz\n'


def test_owners_only_as_root(tmp_path: Path) -> None:
    state = _desired(tmp_path, OWNED, is_root=False)
    a, b = state.files
    assert (a.uid, a.gid) == (None, None)
    assert any("only when running as root" in w for w in state.warnings)
    assert b.blocked and "no-such-user-xyz" in b.blocked  # a user unknown here: wrong host?


def test_owner_names_resolved_as_root(tmp_path: Path) -> None:
    a, b = _desired(tmp_path, OWNED, is_root=True).files
    assert (a.uid, a.gid) == (0, 0)
    assert b.blocked and "no-such-user-xyz" in b.blocked
