"""kill -9 an apply of 2,000 files at random moments: every destination holds exactly its old
or its new bytes, and the next run removes the temp files and plans correctly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.reconcile import Site, make_site
from tether.hostfs.host import TEMP_PREFIX

FILES = 2000
KILLS = 22


def content(version: int, index: int) -> str:
    return f"# version {version} of file {index}\n" + f"key{index} = {version}\n" * (index % 7 + 1)


def paths() -> list[str]:
    return [f"svc{i % 40}/conf.d/part{i // 40}/file{i}.conf" for i in range(FILES)]


def write_version(site: Site, version: int) -> None:
    for index, path in enumerate(paths()):
        site.set_source(path, content(version, index))


def snapshot(site: Site) -> dict[str, bytes]:
    return {p: site.dest(p).read_bytes() for p in paths()}


def apply_process(site: Site) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether", "reconcile", "--apply", *site.host_args()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until `path` appears (the apply starts writing) or the process ends."""
    start = time.monotonic()
    while not path.exists() and proc.poll() is None:
        time.sleep(0.001)
    return time.monotonic() - start


@pytest.mark.slow
def test_kill_minus_nine_at_random_moments(tmp_path: Path) -> None:
    site = make_site(tmp_path, {}, inventory="**/*.conf\n")
    write_version(site, 0)
    assert site.reconcile("--apply").code == 0
    write_version(site, 1)
    journal = site.state / "applying.json"
    start = time.monotonic()
    proc = apply_process(site)
    writing_from = wait_for(journal, proc)
    assert proc.wait() == 0
    full = time.monotonic() - start
    writing = max(time.monotonic() - start - writing_from, 0.05)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    killed_mid_write = killed_while_writing = 0
    for version in range(2, 2 + KILLS):
        before = snapshot(site)
        write_version(site, version)
        proc = apply_process(site)
        if version % 2:  # anywhere in the run
            time.sleep(rng.uniform(0.05, full))
        else:  # while temp files are written and renamed
            wait_for(journal, proc)
            time.sleep(rng.uniform(0, writing))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = snapshot(site)
        new = {p: content(version, i).encode() for i, p in enumerate(paths())}
        torn = [p for p in paths() if after[p] not in (before[p], new[p])]
        assert torn == [], f"seed {seed}: {len(torn)} torn files, e.g. {torn[:3]}"
        changed = sum(after[p] == new[p] for p in paths())
        killed_mid_write += 0 < changed < FILES
        killed_while_writing += journal.exists()  # died between its journal and its end
        planned = site.plan()
        assert [p for p in site.root.rglob("*") if p.name.startswith(TEMP_PREFIX)] == []
        for path in paths():
            expected = "in_sync" if after[path] == new[path] else "update"
            assert planned[path] == expected, f"seed {seed}: {path} planned {planned[path]}"
    print(
        f"seed {seed}; full apply {full:.2f} s; {killed_while_writing} kills while writing, "
        f"{killed_mid_write} of them between renames"
    )
    assert killed_while_writing >= KILLS // 4, "the kills missed the write phase"
