"""kill -9 an apply of 2,000 files, at random moments and targeted at its rename phase: every
destination holds exactly its old or its new bytes, the next run removes the temp files and
plans correctly, and a run after converges (a plan after it exits 0 with everything in sync)."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.reconcile import Site, make_site
from tether.exitcodes import ExitCode
from tether.hostfs.host import TEMP_PREFIX

FILES = 2000
KILLS = 22
TARGETED = 20
SRC = Path(__file__).resolve().parents[2] / "src"

# Runs `tether reconcile --apply` and kills itself with SIGKILL right after it renamed its temp
# file number KILL_AT into place (KILL_AT 0: as it is about to rename the first).
KILL_AT_RENAME = """
import os, signal, sys
from tether.hostfs import host
limit, done, real = int(os.environ["KILL_AT"]), [0], os.rename
def rename(src, dst, **kwargs):
    if not str(src).startswith(host.TEMP_PREFIX):
        return real(src, dst, **kwargs)
    if limit == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst, **kwargs)
    done[0] += 1
    if done[0] == limit:
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename
from tether.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def content(version: int, index: int) -> str:
    return f"# version {version} of file {index}\n" + f"key{index} = {version}\n" * (index % 7 + 1)


def paths() -> list[str]:
    return [f"svc{i % 40}/conf.d/part{i // 40}/file{i}.conf" for i in range(FILES)]


def write_version(site: Site, version: int) -> None:
    for index, path in enumerate(paths()):
        site.set_source(path, content(version, index))


def snapshot(site: Site) -> dict[str, bytes]:
    return {p: site.dest(p).read_bytes() for p in paths()}


def apply_process(site: Site, kill_at: int | None = None) -> subprocess.Popen[bytes]:
    if kill_at is None:
        argv, env = [sys.executable, "-m", "tether"], {}
    else:
        argv, env = [sys.executable, "-c", KILL_AT_RENAME], {"KILL_AT": str(kill_at)}
    return subprocess.Popen(
        [*argv, "reconcile", "--apply", *site.host_args()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
    )


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until `path` appears (the apply starts writing) or the process ends."""
    start = time.monotonic()
    while not path.exists() and proc.poll() is None:
        time.sleep(0.001)
    return time.monotonic() - start


def renamed(site: Site, version: int) -> int:
    """How many destinations hold the bytes of `version`."""
    return sum(
        site.dest(p).read_bytes() == content(version, i).encode() for i, p in enumerate(paths())
    )


def phase(site: Site, renamed: int, finished: bool) -> str:
    """Where the kill landed, from what it left."""
    journal = (site.state / "applying.json").exists()
    if finished:
        return "after the run ended"
    if not journal:
        return "after the journal ended" if renamed == FILES else "before the journal"
    if renamed == 0:
        return "writing temp files"
    return "renaming" if renamed < FILES else "after the last rename"


def check_after_kill(site: Site, version: int, before: dict[str, bytes]) -> None:
    """The invariants a kill must keep (the plan is the next run: it recovers the journal)."""
    after = snapshot(site)
    new = {p: content(version, i).encode() for i, p in enumerate(paths())}
    torn = [p for p in paths() if after[p] not in (before[p], new[p])]
    assert torn == [], f"version {version}: {len(torn)} torn files, e.g. {torn[:3]}"
    planned = site.plan()
    assert [p for p in site.root.rglob("*") if p.name.startswith(TEMP_PREFIX)] == []
    for path in paths():
        expected = "in_sync" if after[path] == new[path] else "update"
        assert planned[path] == expected, f"version {version}: {path} planned {planned[path]}"


def converges(site: Site) -> None:
    """A run after the kills applies what is left; a plan after it exits 0, all in sync. A
    state file's temp a kill left goes at that file's next write (a plan writes none)."""
    assert site.reconcile("--apply").code == ExitCode.OK
    assert [p.name for p in site.state.glob(".*.tmp")] == []
    result = site.reconcile("--json", "--detailed-exitcode")
    assert result.code == ExitCode.OK, result.err
    assert {f["action"] for f in result.json()["files"]} == {"in_sync"}


def started(tmp_path: Path) -> Site:
    site = make_site(tmp_path, {}, inventory="**/*.conf\n")
    write_version(site, 0)
    assert site.reconcile("--apply").code == ExitCode.OK
    return site


@pytest.mark.slow
def test_kill_minus_nine_at_random_moments(tmp_path: Path) -> None:
    site = started(tmp_path)
    write_version(site, 1)
    start = time.monotonic()
    assert apply_process(site).wait() == ExitCode.OK
    full = time.monotonic() - start
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    phases: collections.Counter[str] = collections.Counter()
    for version in range(2, 2 + KILLS):
        before = snapshot(site)
        write_version(site, version)
        proc = apply_process(site)
        time.sleep(rng.uniform(0.05, 0.8 * full))  # later runs are often faster
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        phases[phase(site, renamed(site, version), finished)] += 1
        check_after_kill(site, version, before)
    converges(site)
    print(f"\nseed {seed}; full apply {full:.2f} s; {KILLS} random kills: {dict(phases)}")
    assert phases["after the run ended"] < KILLS // 2, "most kills came too late"


@pytest.mark.slow
def test_kill_minus_nine_in_the_rename_phase(tmp_path: Path) -> None:
    site = started(tmp_path)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    targets = [0, FILES - 1, FILES, *(rng.randrange(1, FILES - 1) for _ in range(TARGETED - 3))]
    phases: collections.Counter[str] = collections.Counter()
    for version, kill_at in enumerate(targets, start=1):
        before = snapshot(site)
        write_version(site, version)
        proc = apply_process(site, kill_at)
        assert proc.wait() == -signal.SIGKILL, f"kill_at {kill_at}: the apply was not killed"
        done = renamed(site, version)
        assert done == kill_at, f"seed {seed}: killed after rename {kill_at}, {done} renamed"
        phases[phase(site, done, False)] += 1
        check_after_kill(site, version, before)
    converges(site)
    print(f"\nseed {seed}; {TARGETED} kills in the rename phase: {dict(phases)}")
