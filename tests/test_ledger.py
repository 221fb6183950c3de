from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import StateError
from tether.hostfs.probe import RACY_NS, make_sig, trusted_sig
from tether.stamps import git_blob_id
from tether.state.keyring import load_key
from tether.state.ledger import (
    LedgerEntry,
    OneCopy,
    load_ledger,
    save_ledger,
)
from tether.state.statedir import ensure_state_dir


def entry(**kw: object) -> LedgerEntry:
    base: dict[str, object] = {
        "path": "p", "hash": "h", "mode": 0o644, "uid": 0, "gid": 0, "revision": None,
        "time": "t", "blob": "b", "secrets": ("A",), "secret_digest": "d",
        "sig": make_sig(1, 2, 3, 4), "source_sig": make_sig(5, 6, 7, 8),
    }  # fmt: skip
    base.update(kw)
    return LedgerEntry(**base)  # type: ignore[arg-type]


def test_state_dir_and_key_are_private(tmp_path: Path) -> None:
    state = ensure_state_dir(tmp_path / "s")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    key = load_key(state)
    assert stat.S_IMODE((state / "key").stat().st_mode) == 0o600
    assert load_key(state).hash(b"x") == key.hash(b"x")
    other = load_key(ensure_state_dir(tmp_path / "t"))
    assert other.hash(b"x") != key.hash(b"x")
    assert key.hash(b"x") != hashlib.sha256(b"x").hexdigest()
    assert "***" in repr(key)


def test_round_trip_and_racy_signatures_dropped(tmp_path: Path) -> None:
    now = time.time_ns()
    fresh = make_sig(1, now, 3, now)
    save_ledger(tmp_path, {"/a": entry(), "/b": entry(sig=fresh)}, "k1")
    loaded = load_ledger(tmp_path)
    assert loaded["/a"] == entry()
    assert loaded["/b"].sig is None
    assert trusted_sig(make_sig(1, now - 2 * RACY_NS, 3, now - 2 * RACY_NS), now) is not None
    assert stat.S_IMODE((tmp_path / "ledger.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"version": 1}',
        '{"version": 1, "entries": {"/a": [1]}}',
        '{"version": 9, "entries": {}}',
        '{"version": 2, "blocks": [{"dest": ["/a"]}]}',
        '{"version": 2, "blocks": {}}',
    ],
)
def test_corrupt_ledger(tmp_path: Path, text: str) -> None:
    (tmp_path / "ledger.json").write_text(text)
    with pytest.raises(StateError, match="the ledger is corrupt") as info:
        load_ledger(tmp_path)
    assert "tether reconcile --rebuild-ledger" in info.value.line()


def test_git_blob_id_matches_git() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_runs_starting_together_never_read_a_half_written_key(tmp_path: Path) -> None:
    failures = 0
    for i in range(100):
        state = ensure_state_dir(tmp_path / str(i))
        go_r, go_w = os.pipe()
        pids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the child)
                os.close(go_w)
                os.read(go_r, 1)  # start together
                try:
                    load_key(state)
                except StateError:
                    os._exit(1)
                os._exit(0)
            pids.append(pid)
        os.close(go_r)
        os.close(go_w)
        failures += sum(os.waitpid(pid, 0)[1] != 0 for pid in pids)
    assert failures == 0
    assert not list(tmp_path.rglob(".key.*"))  # no temp left behind


def test_a_temp_file_a_killed_save_left_is_removed_by_the_next_save(tmp_path: Path) -> None:
    state = ensure_state_dir(tmp_path / "state")
    left = state / ".ledger.json.k1ll3d00.tmp"  # as fsutil.write_atomic names its temp files
    left.write_text('{"version": 1, "entr')
    others = [state / ".services.json.k1ll3d00.tmp", state / ".ledger.json.notes"]
    for other in others:
        other.write_text("not the ledger's temp file\n")
    save_ledger(state, {}, "key-id")
    assert not left.exists()
    assert all(other.exists() for other in others)
    assert load_ledger(state) == {}


def _version_1_text(entries: dict[str, LedgerEntry], key_id: str) -> str:
    """A ledger as tethers before 0.3 wrote it: one JSON row an entry, a line each."""
    head = json.dumps({"version": 1, "key": key_id, "entries": {}}, separators=(",", ":"))
    rows = [
        json.dumps(d, separators=(",", ":")) + ":" + json.dumps(e.to_json(), separators=(",", ":"))
        for d, e in sorted(entries.items())
    ]
    return head[:-2] + "\n" + ",\n".join(rows) + "\n}}\n"


def test_a_large_ledger_is_read_a_block_at_a_time_and_equals_the_whole_parse(
    tmp_path: Path,
) -> None:
    entries = {
        f"/d/{i:05d}": entry(path=f"p{i}", hash=f"h{i}", sig=make_sig(i, i, i + 1, i), mode=i % 3)
        for i in range(5001)
    }
    entries["/d/00007"] = entry(sig=None, source_sig=None, revision="r1", secrets=())
    save_ledger(tmp_path, entries, "k1")
    text = (tmp_path / "ledger.json").read_text()
    assert text.count("\n") == 3 + 2  # a block of up to 2,000 entries a line, one JSON document
    loaded = load_ledger(tmp_path)
    assert loaded == entries and loaded.key_id == "k1"
    (tmp_path / "ledger.json").write_text(json.dumps(json.loads(text), indent=1))  # reformatted
    assert load_ledger(tmp_path) == entries


def test_a_version_1_ledger_is_still_read(tmp_path: Path) -> None:
    """As older tethers wrote it, an entry a line (or all on one line, older still)."""
    entries = {f"/d/{i:05d}": entry(path=f"p{i}", hash=f"h{i}") for i in range(4001)}
    entries["/d/00007"] = entry(sig=None, source_sig=None)
    text = _version_1_text(entries, "k1")
    (tmp_path / "ledger.json").write_text(text)
    loaded = load_ledger(tmp_path)
    assert loaded == entries and loaded.key_id == "k1"
    (tmp_path / "ledger.json").write_text(json.dumps(json.loads(text)))
    assert load_ledger(tmp_path) == entries
    save_ledger(tmp_path, loaded, "k1")  # saved again in the current layout
    assert (tmp_path / "ledger.json").read_text().startswith('{"version":2,')
    assert load_ledger(tmp_path) == entries


@pytest.mark.parametrize(
    "cut",
    [
        lambda t: t[: t.index("\n", len(t) // 2) + 1],  # truncated at a line
        lambda t: t[: len(t) // 2],  # truncated mid-line
        lambda t: t.replace("},\n", "}\n", 1),  # a missing comma
        lambda t: t.replace("}\n]}", "},\n]}", 1),  # a comma before the end
        lambda t: t + "{}\n",  # text after the end
    ],
)
def test_a_damaged_line_ledger_is_corrupt(tmp_path: Path, cut: Callable[[str], str]) -> None:
    save_ledger(tmp_path, {f"/d/{i}": entry() for i in range(5000)}, "k1")
    text = (tmp_path / "ledger.json").read_text()
    assert cut(text) != text
    (tmp_path / "ledger.json").write_text(cut(text))
    with pytest.raises(StateError, match="the ledger is corrupt"):
        load_ledger(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.update(sig=b["sig"][:-2]),  # signatures short of the entries
        lambda b: b.update(sig="zz" + b["sig"][2:]),  # not hex
        lambda b: b.update(path=b["path"][:-1]),  # a column short
        lambda b: b.update(hash=[1] * len(b["hash"])),  # not strings
        lambda b: b["mode"].update(index=[-1] * len(b["mode"]["index"])),
        lambda b: b["mode"].update(index=[9] * len(b["mode"]["index"])),
        lambda b: b["uid"].update(values=["0"]),
        lambda b: b["secrets"].update(values=[[1]]),
        lambda b: b.pop("blob"),
        lambda b: b.update(dest=[1, 2, 3]),
    ],
)
def test_a_damaged_block_is_corrupt(
    tmp_path: Path, damage: Callable[[dict[str, Any]], object]
) -> None:
    save_ledger(tmp_path, {f"/d/{i}": entry() for i in range(3)}, "k1")
    doc = json.loads((tmp_path / "ledger.json").read_text())
    damage(doc["blocks"][0])
    (tmp_path / "ledger.json").write_text(json.dumps(doc))
    with pytest.raises(StateError, match="the ledger is corrupt"):
        load_ledger(tmp_path)


WORDS = st.text(alphabet="ab/", max_size=4)


@given(st.lists(WORDS, unique=True).map(sorted), st.lists(WORDS))
def test_one_copy_gives_back_an_equal_string_and_the_listed_one_when_asked_in_order(
    listed: list[str], asked: list[str]
) -> None:
    """Asked in any order the answer equals the question; asked in ascending order, a listed
    string is answered with the list's own object (one copy, not two)."""
    own = [("" + s + ".")[:-1] for s in listed]  # equal strings, other objects
    share = OneCopy(own)
    assert [share(s) for s in asked] == asked
    share = OneCopy(own)
    for s in sorted(asked):
        if s in listed:
            assert share(s) is own[listed.index(s)]
