from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.reconcile.planner import (
    Action,
    Actual,
    Desired,
    Recorded,
    classify,
    plan,
    prune_item,
)

d1, d2, d3 = "hD1", "hD2", "hD3"
MISSING = Actual("missing")


def observed(actual: dict[str, Actual]) -> Callable[[str, object], Actual]:
    """`plan`'s observer over actual states given up front (a destination not there is
    missing)."""
    return lambda dest, _recorded: actual.get(dest, MISSING)


def file(h: str, mode: int = 0o644) -> Actual:
    return Actual("file", h, mode=mode, uid=1000, gid=1000)


# (name, Desired hash, Recorded hash or None, Actual, overwrite, action, write, backup)
TABLE = [
    ("in_sync", d1, d1, file(d1), False, Action.IN_SYNC, False, False),
    ("in_sync without ledger", d1, None, file(d1), False, Action.IN_SYNC, False, False),
    ("create", d1, None, MISSING, False, Action.CREATE, True, False),
    ("create after host delete", d1, d1, MISSING, False, Action.CREATE, True, False),
    ("update", d2, d1, file(d1), False, Action.UPDATE, True, False),
    ("drift", d1, d1, file(d2), False, Action.DRIFT, False, False),
    ("drift overwritten", d1, d1, file(d2), True, Action.DRIFT, True, True),
    ("conflict", d2, d1, file(d3), False, Action.CONFLICT, False, False),
    ("conflict overwritten", d2, d1, file(d3), True, Action.CONFLICT, True, True),
    ("preexisting", d1, None, file(d2), False, Action.PREEXISTING, False, False),
    ("preexisting overwritten", d1, None, file(d2), True, Action.PREEXISTING, True, True),
    (
        "unsafe destination",
        d1,
        d1,
        Actual("blocked", reason="symlink"),
        True,
        Action.BLOCKED,
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("d", "last", "a", "overwrite", "action", "write", "backup"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_classify(
    d: str, last: str | None, a: Actual, overwrite: bool, action: Action, write: bool, backup: bool
) -> None:
    item = classify(
        "/x", Desired("p", d), Recorded("p", last) if last else None, a, overwrite=overwrite
    )
    assert (item.action, item.write, item.backup) == (action, write, backup)
    if action in (Action.DRIFT, Action.CONFLICT, Action.PREEXISTING, Action.BLOCKED):
        assert item.reason


def test_blocked_desired_is_never_written_even_with_overwrite() -> None:
    item = classify(
        "/x", Desired("p", None, blocked="missing secrets: A"), None, MISSING, overwrite=True
    )
    assert item.action == Action.BLOCKED and not item.write
    assert item.reason == "missing secrets: A"


def test_in_sync_records_missing_or_stale_ledger_only() -> None:
    assert classify("/x", Desired("p", d1), None, file(d1)).record
    assert not classify("/x", Desired("p", d1), Recorded("p", d1), file(d1)).record


def test_modes_new_secret_existing_and_manifest() -> None:
    assert classify("/x", Desired("p", d1), None, MISSING).mode == 0o644
    assert classify("/x", Desired("p", d1, has_secret=True), None, MISSING).mode == 0o600
    assert (
        classify("/x", Desired("p", d2), Recorded("p", d1), file(d1, 0o640)).mode == 0o640
    )  # kept
    item = classify("/x", Desired("p", d1, mode=0o600), Recorded("p", d1), file(d1, 0o644))
    assert (item.action, item.write, item.mode) == (Action.UPDATE, True, 0o600)
    assert "mode 0644 -> 0600" in (item.reason or "")


def test_a_file_that_holds_a_secret_is_no_longer_readable_by_others() -> None:
    secret = Desired("p", d2, has_secret=True)
    updated = classify("/x", secret, Recorded("p", d1), file(d1, 0o644))  # gains a secret
    assert (updated.action, updated.mode) == (Action.UPDATE, 0o600)
    assert "mode 0644 -> 0600 (it holds a secret)" in (updated.reason or "")
    same = classify("/x", Desired("p", d1, has_secret=True), Recorded("p", d1), file(d1, 0o640))
    assert (same.action, same.write, same.mode) == (Action.IN_SYNC, False, 0o640)  # not rewritten
    private = classify("/x", Desired("p", d1, has_secret=True), Recorded("p", d1), file(d1, 0o400))
    assert (private.action, private.mode) == (Action.IN_SYNC, 0o400)  # already private: kept
    chosen = Desired("p", d1, has_secret=True, mode=0o640)
    assert classify("/x", chosen, Recorded("p", d1), file(d1, 0o640)).action == Action.IN_SYNC
    overwritten = classify(
        "/x", secret, Recorded("p", d1), file(d3, 0o644), overwrite=True
    )  # drift overwritten
    assert overwritten.write and overwritten.mode == 0o600


# (name, Actual, prune, overwrite, empty, remove, forget)
PRUNE = [
    ("off", file(d1), False, False, False, False, False),
    ("on, unchanged", file(d1), True, False, False, True, False),
    ("on, changed on host", file(d2), True, False, False, False, False),
    ("on, changed, overwrite", file(d2), True, True, False, True, False),
    ("on, already gone", MISSING, True, False, False, False, True),
    ("on, empty desired set", file(d1), True, True, True, False, False),
    ("on, unsafe", Actual("blocked", reason="symlink"), True, True, False, False, False),
]


@pytest.mark.parametrize(
    ("a", "prune", "overwrite", "empty", "remove", "forget"),
    [row[1:] for row in PRUNE],
    ids=[row[0] for row in PRUNE],
)
def test_prune_rules(
    a: Actual, prune: bool, overwrite: bool, empty: bool, remove: bool, forget: bool
) -> None:
    item = prune_item("/x", Recorded("p", d1), a, prune=prune, overwrite=overwrite, empty=empty)
    assert item.action == Action.PRUNE
    assert (item.remove, item.backup, item.forget) == (remove, remove, forget)
    assert item.reason


def test_plan_orders_and_counts() -> None:
    result = plan(
        [Desired("b", d1, dest="/b"), Desired("a", d2, dest="/a")],
        {"/a": Recorded("a", d1), "/gone": Recorded("gone", d1)},
        observed({"/a": file(d1), "/gone": file(d1)}),
        prune=True,
    )
    assert [i.dest for i in result.items] == ["/a", "/b", "/gone"]
    assert [i.action for i in result.items] == [Action.UPDATE, Action.CREATE, Action.PRUNE]
    assert result.count()["prune"] == 1 and result.changes and not result.attention


def test_empty_desired_set_never_prunes() -> None:
    result = plan(
        [], {"/a": Recorded("a", d1)}, observed({"/a": file(d1)}), prune=True, overwrite=True
    )
    assert not result.items[0].remove


@given(
    st.sets(st.sampled_from(["/a", "/a/b", "/a-b", "/b", "/c/d", "/c", "/z"])),
    st.sets(st.sampled_from(["/a", "/a/b", "/a-b", "/b", "/c/d", "/c", "/z"])),
)
def test_plan_lists_desired_then_the_recorded_no_longer_desired(
    desired: set[str], recorded: set[str]
) -> None:
    """The merge of the two sorted lists finds exactly the recorded destinations not desired."""
    seen: list[str] = []

    def observe(dest: str, _recorded: object) -> Actual:
        seen.append(dest)
        return MISSING

    result = plan(
        [Desired(d[1:], d1, dest=d) for d in desired],
        {d: Recorded(d[1:], d1) for d in recorded},
        observe,
        prune=True,
    )
    expected = sorted(desired) + sorted(recorded - desired)
    assert [i.dest for i in result.items] == expected
    assert seen == expected  # each destination observed once, as the plan reaches it
