"""One state dir, several config repos: each keeps its own ledger and prunes only its own."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from testing.reconcile import Site, make_site
from tether.exitcodes import ExitCode
from tether.state.ledger import REPOS_DIR, LedgerEntry, load_ledger, save_ledger


def two_sites(tmp_path: Path) -> tuple[Site, Site]:
    a = make_site(
        tmp_path / "a", {"app/a.conf": "a=1\n", "app/k.conf": "k\n"}, inventory="app/*.conf\n"
    )
    b = make_site(tmp_path / "b", {"web/b.conf": "b=1\n"}, inventory="web/b.conf\n")
    return a, dataclasses.replace(b, root=a.root, state=a.state)


def test_two_repos_sharing_a_state_dir_never_prune_each_other(tmp_path: Path) -> None:
    a, b = two_sites(tmp_path)
    assert a.reconcile("--apply").code == ExitCode.OK
    assert b.plan("--prune") == {"web/b.conf": "create"}  # a's file is not b's to prune
    assert b.reconcile("--apply", "--prune").code == ExitCode.OK
    assert a.dest("app/a.conf").read_text() == "a=1\n"
    assert b.dest("web/b.conf").read_text() == "b=1\n"
    assert len(list((a.state / REPOS_DIR).iterdir())) == 2
    # each repo still prunes what it wrote and no longer tracks
    (a.repo / "inventory/include-paths.txt").write_text("app/k.conf\n")
    assert a.plan("--prune") == {"app/a.conf": "prune", "app/k.conf": "in_sync"}
    assert a.reconcile("--apply", "--prune").code == ExitCode.OK
    assert not a.dest("app/a.conf").exists() and b.dest("web/b.conf").is_file()


def test_a_state_dir_from_before_adopts_per_repo(tmp_path: Path) -> None:
    """A ledger of the whole state dir (older tethers): each repo takes the entries of the
    paths its allowlist covers; the other repo's entries are never its to prune."""
    a, b = two_sites(tmp_path)
    assert a.reconcile("--apply").code == ExitCode.OK
    assert b.reconcile("--apply").code == ExitCode.OK
    merged: dict[str, LedgerEntry] = {}
    key_id = None
    for folder in (a.state / REPOS_DIR).iterdir():
        ledger = load_ledger(folder)
        merged.update(ledger)
        key_id = ledger.key_id
    assert len(merged) == 3 and key_id is not None
    shutil.rmtree(a.state / REPOS_DIR)  # back to one ledger for the whole state dir
    save_ledger(a.state, merged, key_id)
    legacy = (a.state / "ledger.json").read_bytes()

    assert b.plan("--prune") == {"web/b.conf": "in_sync"}  # adopted b's entry, not a's
    assert a.plan("--prune") == {"app/a.conf": "in_sync", "app/k.conf": "in_sync"}
    assert b.reconcile("--apply", "--prune").code == ExitCode.OK
    assert a.dest("app/a.conf").read_text() == "a=1\n"
    assert (a.state / "ledger.json").read_bytes() == legacy  # the old ledger is only read
    assert [e.path for e in load_ledger(ledger_dir_of(b)).values()] == ["web/b.conf"]


def ledger_dir_of(site: Site) -> Path:
    (folder,) = (f for f in (site.state / REPOS_DIR).iterdir() if (f / "ledger.json").is_file())
    return folder
