"""The apply journal: recover finishes a killed apply and removes only that apply's temps."""

from __future__ import annotations

from pathlib import Path

from tether.capture import journal as capture_journal
from tether.hostfs.host import TEMP_PREFIX
from tether.reconcile import journal


def test_recover_removes_the_killed_applys_temps_and_nothing_else(tmp_path: Path) -> None:
    state, root = tmp_path / "state", tmp_path / "root"
    folder = root / "etc"
    folder.mkdir(parents=True)
    state.mkdir()
    (folder / f"{TEMP_PREFIX}cafe01-3-app.conf").write_bytes(b"half written")
    (folder / f"{TEMP_PREFIX}keep-me").write_text("a user's file")
    journal.begin(state, journal.Journal(str(root), (f"{root}/etc",), {}, temp_token="cafe01"))
    assert journal.recover(state, have_lock=False) == 1
    assert [p.name for p in folder.iterdir()] == [f"{TEMP_PREFIX}keep-me"]
    assert not journal.journal_path(state).exists()


def test_an_unreadable_journal_is_dropped(tmp_path: Path) -> None:
    journal.journal_path(tmp_path).write_text("{not json")
    assert journal.recover(tmp_path, have_lock=False) == 0
    assert not journal.journal_path(tmp_path).exists()


def test_a_journal_temp_a_killed_write_left_goes_under_the_lock_only(tmp_path: Path) -> None:
    left = [tmp_path / ".applying.json.k1ll3d00.tmp", tmp_path / ".capturing.json.k1ll3d00.tmp"]
    for path in left:
        path.write_text('{"half')
    assert journal.recover(tmp_path, have_lock=False) == 0  # a plan: a live apply may own it
    assert left[0].exists()
    assert journal.recover(tmp_path, have_lock=True) == 0
    assert capture_journal.pending(tmp_path) is None
    assert not any(path.exists() for path in left)
