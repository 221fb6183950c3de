"""A full disk and a folder tether may not write leave the destination untouched, and say so."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.reconcile import make_site
from tether.exitcodes import ExitCode
from tether.hostfs.host import TEMP_PREFIX


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[None]:
    where.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_disk_full_leaves_the_destination_untouched(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"big": "old\n", "small": "s\n"})
    with tiny_tmpfs(site.root, "64k"):
        assert site.reconcile("--apply").code == ExitCode.OK
        site.set_source("big", "x" * 200_000)
        result = site.reconcile("--apply")
        assert result.code == ExitCode.ERROR
        lines = [line for line in result.err.splitlines() if "big" in line]
        assert lines == [
            f"tether: {site.dest('big')}: no space left on the device; the destination is untouched"
        ]
        assert site.dest("big").read_text() == "old\n"
        assert temps(site.root) == []
        assert site.plan()["big"] == "update"  # still planned, nothing half-done


def test_permission_denied_leaves_the_destination_untouched(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"app/f": "old\n"})
    assert site.reconcile("--apply").code == ExitCode.OK
    site.set_source("app/f", "new\n")
    folder = site.dest("app")
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        result = site.reconcile("--apply")
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert result.code == ExitCode.ERROR
    assert (
        f"tether: {site.dest('app/f')}: permission denied; the destination is untouched"
        in result.err
    )
    assert site.dest("app/f").read_text() == "old\n"
    assert temps(site.root) == []


def test_read_only_mount(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"f": "old\n"})
    with tiny_tmpfs(site.root, "1m"):
        assert site.reconcile("--apply").code == ExitCode.OK
        site.set_source("f", "new\n")
        subprocess.run(["mount", "-o", "remount,ro", str(site.root)], check=True)
        result = site.reconcile("--apply")
        assert result.code == ExitCode.ERROR
        assert "read-only file system; the destination is untouched" in result.err
        assert site.dest("f").read_text() == "old\n"
