from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.hostfs.host import TEMP_PREFIX, Confinement, DryRunHost, RealHost, WriteOp, _normal
from tether.hostfs.probe import stat_sig


def test_probe_kinds(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "f").write_text("x")
    os.mkfifo(root / "etc" / "fifo")
    (root / "etc" / "dir").mkdir()
    (root / "etc" / "link").symlink_to(root / "etc" / "f")
    conf = Confinement(str(root))
    assert conf.probe(f"{root}/etc/f").kind == "file"
    assert conf.probe(f"{root}/etc/none").kind == "missing"
    assert conf.probe(f"{root}/new/dir/f").kind == "missing"
    for name, why in (("fifo", "FIFO"), ("dir", "folder"), ("link", "symlink")):
        probe = conf.probe(f"{root}/etc/{name}")
        assert probe.kind == "blocked" and why in (probe.reason or "")
    probe = conf.probe(f"{root}/etc/f/under")
    assert probe.kind == "blocked" and "file where a folder is needed" in (probe.reason or "")
    assert conf.probe("/elsewhere/x").kind == "blocked"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_is_blocked(tmp_path: Path) -> None:
    os.mknod(tmp_path / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    probe = Confinement(str(tmp_path)).probe(f"{tmp_path}/null")
    assert probe.kind == "blocked" and "device" in (probe.reason or "")


def test_parent_symlink_outside_is_blocked_inside_is_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "rel").symlink_to("../outside")
    (root / "in").symlink_to("real")
    conf = Confinement(str(root))
    for name in ("out", "rel"):
        probe = conf.probe(f"{root}/{name}/f")
        assert probe.kind == "blocked" and "outside the target root" in (probe.reason or "")
    inside = conf.probe(f"{root}/in/f")
    assert inside.kind == "missing"
    host = RealHost(conf)
    results = host.write_files(
        [WriteOp(f"{root}/out/f", b"x", 0o644), WriteOp(f"{root}/in/f", b"y", 0o644)]
    )
    assert not results[0].ok and results[1].ok
    assert list(outside.iterdir()) == []
    assert (root / "real" / "f").read_bytes() == b"y"


def test_atomic_write_modes_parents_and_no_temps(tmp_path: Path) -> None:
    conf = Confinement(str(tmp_path))
    host = RealHost(conf)
    ops = [WriteOp(f"{tmp_path}/a/b/{i}", b"%d" % i, 0o600, dir_mode=0o750) for i in range(40)]
    results = host.write_files(ops)
    assert all(r.ok for r in results)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "a/b/7").stat().st_mode) == 0o600
    assert results[7].sig == stat_sig((tmp_path / "a/b/7").stat())
    assert not [p for p in (tmp_path / "a/b").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_compare_and_swap_refuses_a_moved_destination(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    dest.write_text("old")
    seen = stat_sig(dest.stat())
    dest.write_text("edited meanwhile")
    (result,) = RealHost(Confinement(str(tmp_path))).write_files(
        [WriteOp(str(dest), b"new", 0o644, expect=seen)]
    )
    assert not result.ok and "changed on the host" in (result.error or "")
    assert dest.read_text() == "edited meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_dry_run_host_touches_nothing(tmp_path: Path) -> None:
    host = DryRunHost(Confinement(str(tmp_path)))
    (result,) = host.write_files([WriteOp(f"{tmp_path}/a/f", b"x", 0o644)])
    assert result.ok and list(tmp_path.iterdir()) == []


def test_clean_temps_removes_only_the_runs_own_temp_files(tmp_path: Path) -> None:
    (tmp_path / f"{TEMP_PREFIX}abc123-0-f").write_text("half")  # the killed run's
    (tmp_path / f"{TEMP_PREFIX}notes").write_text("a user's file that looks like ours")
    (tmp_path / f"{TEMP_PREFIX}ffffff-0-g").write_text("another run's")
    (tmp_path / "keep").write_text("k")
    removed = RealHost(Confinement(str(tmp_path))).clean_temps([str(tmp_path)], "abc123")
    assert removed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["keep", f"{TEMP_PREFIX}notes", f"{TEMP_PREFIX}ffffff-0-g"]
    )


def test_clean_temps_of_a_journal_from_before_tokens_removes_every_temp_name(
    tmp_path: Path,
) -> None:
    (tmp_path / f"{TEMP_PREFIX}abc-f").write_text("half")
    (tmp_path / "keep").write_text("k")
    removed = RealHost(Confinement(str(tmp_path))).clean_temps([str(tmp_path)], None)
    assert removed == 1 and [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_temp_names_carry_the_hosts_token(tmp_path: Path) -> None:
    host = RealHost(Confinement(str(tmp_path)))
    assert len(host.temp_token) == 12 and host.temp_token != RealHost(host.confinement).temp_token


def test_a_folder_that_left_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    host = RealHost(Confinement(str(root)))
    fd = os.open(outside, os.O_RDONLY | os.O_DIRECTORY)
    inside = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert not host._fd_inside(fd)
        assert host._fd_inside(inside)
    finally:
        os.close(fd)
        os.close(inside)


def test_remove_refuses_a_changed_file(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    dest.write_text("x")
    seen = stat_sig(dest.stat())
    dest.write_text("yy")
    host = RealHost(Confinement(str(tmp_path)))
    assert "changed on the host" in (host.remove(str(dest), seen) or "")
    assert host.remove(str(dest), stat_sig(dest.stat())) is None
    assert not dest.exists()


def test_normal_paths() -> None:
    for path in [
        "/a/b",
        "/",
        "/a",
        "/a/.b",
        "/a/..b",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/a/",
        "/a/.",
        "/a/..",
        "a/b",
        "//a",
    ]:
        assert _normal(path) == (
            posixpath.normpath(path) == path and path.startswith("/") and not path.startswith("//")
        ), path


def test_a_path_of_thousands_of_components_is_checked_without_recursion(tmp_path: Path) -> None:
    deep = "/".join(["a"] * 3000)
    confinement = Confinement(str(tmp_path))
    found = confinement.folder(f"{tmp_path}/{deep}")  # was a RecursionError
    assert not found.exists and found.reason is None
    (tmp_path / "a").write_text("a file where a folder is needed")
    confinement.forget()
    blocked = confinement.folder(f"{tmp_path}/{deep}")
    assert blocked.reason is not None and "is a file where a folder is needed" in blocked.reason


def test_a_deep_destination_is_written(tmp_path: Path) -> None:
    dest = Path(f"{tmp_path}/" + "/".join(["d"] * 1000) + "/x.conf")
    host = RealHost(Confinement(str(tmp_path)))
    try:
        (result,) = host.write_files([WriteOp(str(dest), b"deep\n", 0o644, -1, -1, 0o755, None)])
        assert result.ok, result.error
        assert dest.read_bytes() == b"deep\n"
    finally:  # shutil.rmtree (pytest's clean-up) recurses per level: remove it bottom-up here
        dest.unlink(missing_ok=True)
        for folder in dest.parents:
            if folder == tmp_path:
                break
            with contextlib.suppress(FileNotFoundError):
                folder.rmdir()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "link", "file", "c d"]), max_size=5))
def test_the_per_folder_check_answers_as_a_fresh_check(parts: list[str]) -> None:
    """Confinement.real_dest remembers a parent's answer for its files: a destination asked
    after its siblings gets the answer a fresh Confinement gives it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "a" / "b").mkdir(parents=True)
        (root / "file").write_text("x")
        (root / "link").symlink_to(Path(tmp))  # a folder outside the root
        dest = str(root) + "/" + "/".join(parts)
        warm = Confinement(str(root))
        for sibling in ("x", "y"):
            warm.real_dest(posixpath.join(posixpath.dirname(dest), sibling))
        assert warm.real_dest(dest) == Confinement(str(root)).real_dest(dest)
