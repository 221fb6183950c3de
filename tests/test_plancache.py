"""The plan cache file: saved only from signatures old enough to trust, used only while every
path keeps its signature, and never trusted when damaged."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from tether.hostfs.probe import NO_SIG, RACY_NS
from tether.state.plancache import (
    LEFT_TEMP_AGE,
    CachedPlan,
    cache_path,
    cached_plan,
    save_plan_cache,
    signatures,
)

KEY = {"source": "/repo", "detail": 0}
PLAN = CachedPlan("Nothing to do.\nPlan: 0 to create", {"in_sync": 2}, 0, None)


def aged(*paths: Path) -> None:
    """Files last changed more than a clock tick ago (so their signatures can be trusted)."""
    for path in paths:
        path.write_text("x")
    time.sleep(1.5 * RACY_NS / 1e9)


def save(tmp_path: Path, files: list[Path], watched: list[str], **kwargs: object) -> bool:
    seen = [(str(f), signatures([str(f)])) for f in files]
    options: dict[str, object] = {
        "seen": seen,
        "watched": watched,
        "resolved": {str(tmp_path): os.path.realpath(tmp_path)},
        "plan": PLAN,
        "started_ns": time.time_ns(),
    }
    options.update(kwargs)
    return save_plan_cache(tmp_path / "state", KEY, **options)  # type: ignore[arg-type]


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    (tmp_path / "state").mkdir(exist_ok=True)
    a, b = tmp_path / "a", tmp_path / "b"
    aged(a, b)
    assert save(tmp_path, [a, b], [str(tmp_path / "absent")])
    return tmp_path / "state", a, b


def test_a_saved_plan_is_found_while_nothing_moves(tmp_path: Path) -> None:
    state, _, _ = setup(tmp_path)
    assert cached_plan(state, KEY) == PLAN
    assert cached_plan(state, {**KEY, "detail": 1}) is None  # another key: not this plan
    assert os.stat(cache_path(state)).st_mode & 0o777 == 0o600


def test_any_change_to_a_path_voids_it(tmp_path: Path) -> None:
    state, a, b = setup(tmp_path)
    a.write_text("y")  # bytes
    assert cached_plan(state, KEY) is None
    state, a, b = setup(tmp_path)
    b.chmod(0o600)  # mode: the ctime moves
    assert cached_plan(state, KEY) is None
    state, a, b = setup(tmp_path)
    (tmp_path / "absent").write_text("now here")  # a path looked for appears
    assert cached_plan(state, KEY) is None
    state, a, b = setup(tmp_path)
    b.unlink()
    assert cached_plan(state, KEY) is None


def test_a_moved_symlink_voids_it(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "one")
    real = {str(link): str(tmp_path / "one")}
    aged(tmp_path / "a")
    assert save(tmp_path, [tmp_path / "a"], [], resolved=real)
    assert cached_plan(tmp_path / "state", KEY) == PLAN
    link.unlink()
    link.symlink_to(tmp_path / "two")
    assert cached_plan(tmp_path / "state", KEY) is None


def test_signatures_too_recent_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(exist_ok=True)
    old = tmp_path / "old"
    aged(old)
    assert save(tmp_path, [old], [])
    fresh = tmp_path / "fresh"
    fresh.write_text("x")  # changed now: a later change in the same tick would not show
    assert not save(tmp_path, [fresh], [])
    assert not save(tmp_path, [old, fresh], [])  # one of a batch is enough
    assert not cache_path(tmp_path / "state").exists()  # the older cache is gone too
    assert not save(tmp_path, [old], [str(fresh)])  # a path looked at after the plan: same
    # the plan started before the file last changed: what it read may not be there now
    assert not save(tmp_path, [old], [], started_ns=time.time_ns() - 20 * RACY_NS)


def test_a_file_the_plan_could_not_sign_is_not_cached(tmp_path: Path) -> None:
    state, _, _ = setup(tmp_path)
    assert not save(tmp_path, [], [], seen=[(str(tmp_path / "a"), None)])
    assert not cache_path(state).exists()  # and the older cache is gone too


def test_a_killed_saves_temp_file_is_removed_once_old(tmp_path: Path) -> None:
    state, a, b = setup(tmp_path)
    left, live = state / ".plan-cache.0a1b2c3d4e5f.tmp", state / ".plan-cache.f5e4d3c2b1a0.tmp"
    left.write_bytes(b"half a cache")
    live.write_bytes(b"a plan saving now")
    old = time.time() - LEFT_TEMP_AGE - 5
    os.utime(left, (old, old))
    assert save(tmp_path, [a, b], [])
    assert not left.exists() and live.exists()


def test_absent_paths_are_recorded_as_absent(tmp_path: Path) -> None:
    assert signatures([str(tmp_path / "none"), str(tmp_path / "none" / "deeper")]) == NO_SIG * 2
    assert signatures(["bad\0path"]) is None


def test_a_damaged_cache_is_never_trusted(tmp_path: Path) -> None:
    state, _, _ = setup(tmp_path)
    good = cache_path(state).read_bytes()
    rng = random.Random(17)
    for trial in range(600):
        data = bytearray(good)
        at = rng.randrange(len(data))
        if trial % 3 == 0:
            damaged = bytes(data[:at])  # cut short (a disk full, a crash of another writer)
        elif trial % 3 == 1:
            data[at] ^= rng.randrange(1, 256)  # one byte changed
            damaged = bytes(data)
        else:
            damaged = bytes(data[:at]) + rng.randbytes(rng.randrange(1, 64)) + bytes(data[at:])
        cache_path(state).write_bytes(damaged)
        assert cached_plan(state, KEY) is None, (trial, at)  # the CRC, lengths or parse refuse
    cache_path(state).write_bytes(good)
    assert cached_plan(state, KEY) == PLAN
