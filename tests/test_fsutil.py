"""tether.hostfs.fsutil: FolderStat answers as os.lstat does, through one open folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.hostfs.fsutil import FolderStat


def _answer(stat: object, path: str) -> tuple[str, int, int] | str:
    try:
        st = stat(path)  # type: ignore[operator]
    except OSError as exc:
        return type(exc).__name__
    return ("st", st.st_ino, st.st_mode)


def test_folder_stat_answers_as_lstat_for_files_links_and_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "f").write_text("1")
    (tmp_path / "a" / "b" / "g").write_text("2")
    (tmp_path / "a" / "link").symlink_to("f")  # lstat: the link itself
    (tmp_path / "a" / "dirlink").symlink_to("b")  # a folder through a link: followed, as lstat does
    (tmp_path / "file").write_text("3")
    names = [
        "a/b/g", "a/b/missing", "a/dirlink/g", "a/f", "a/link", "a/missing",
        "file", "file/under-a-file", "gone/x", "gone/y", "a/f",
    ]  # fmt: skip
    paths = [str(tmp_path / n) for n in names] + ["/", "/proc/self/missing"]
    stat = FolderStat()
    assert [_answer(stat.lstat, p) for p in paths] == [_answer(os.lstat, p) for p in paths]
    stat.close()
    assert _answer(stat.lstat, paths[0]) == _answer(os.lstat, paths[0])  # reopens after close


def test_folder_stat_keeps_one_folder_open(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_text("x")
    before = len(os.listdir("/proc/self/fd"))
    stat = FolderStat()
    for i in range(50):
        stat.lstat(str(tmp_path / f"d{i}" / "f"))
    assert len(os.listdir("/proc/self/fd")) == before + 1
    stat.close()
    assert len(os.listdir("/proc/self/fd")) == before
    del stat


@pytest.mark.parametrize("close", [True, False])
def test_a_dropped_folder_stat_closes_its_folder(tmp_path: Path, close: bool) -> None:
    (tmp_path / "f").write_text("x")
    before = len(os.listdir("/proc/self/fd"))
    stat = FolderStat()
    stat.lstat(str(tmp_path / "f"))
    if close:
        stat.close()
    del stat  # the garbage collector closes what is open
    assert len(os.listdir("/proc/self/fd")) == before
