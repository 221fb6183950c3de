"""kill -9 of `tether capture`: right after the remote's branch moved (before the ledger is
saved), and at random moments. After each kill the next capture must land every host edit
(none lost, none stuck as a conflict with the host's own commit), leave no temp file in the
state dir and nothing more to capture, and the remote stays sound (`git fsck --strict`)."""

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
from dulwich.objects import Commit
from dulwich.repo import Repo

from testing.gitrepos import commit, init_bare, ref_of
from tether.capture.journal import JOURNAL_NAME
from tether.exitcodes import ExitCode

SRC = Path(__file__).resolve().parents[2] / "src"
HOME = "/home/u"
FILES = 20
TARGETED = 100
RANDOM_KILLS = 20

# Runs `tether capture` and kills itself with SIGKILL as soon as a push has moved the branch.
KILL_AFTER_PUSH = """
import os, signal, sys
from tether.git import publish
real = publish.push_branch
def push(*args, **kwargs):
    result = real(*args, **kwargs)
    if result.ok:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
publish.push_branch = push
from tether.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


class Host:
    def __init__(self, tmp: Path) -> None:
        self.remote = init_bare(tmp / "remote.git")
        manifest = f"version: 1\ntarget:\n  home: {HOME}\n".encode()
        commit(self.remote, {"tether.yaml": manifest, "inventory/include-paths.txt": b"app/*\n"})
        self.home = tmp / "host" / HOME.lstrip("/")
        self.home.mkdir(parents=True)
        self.state = tmp / "state"
        self.args = [
            "capture", "--repo", str(self.remote), "--target-root", str(tmp / "host"),
            "--state-dir", str(self.state), "--secrets-file", str(tmp / "secrets.env"),
        ]  # fmt: skip

    def edit(self, version: int, rng: random.Random) -> dict[str, bytes]:
        """Change a random few files; returns what every file holds now."""
        (self.home / "app").mkdir(exist_ok=True)
        for index in rng.sample(range(FILES), 5) if version else range(FILES):
            (self.home / f"app/f{index}.conf").write_text(f"f{index} = {version}\n")
        return {f"configs/app/{p.name}": p.read_bytes() for p in (self.home / "app").iterdir()}

    def run(self, script: str | None = None, *extra: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", script] if script else [sys.executable, "-m", "tether"]
        return subprocess.Popen(
            [*argv, *self.args, *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(SRC)},
        )

    def capture(self, *extra: str) -> tuple[int, str]:
        proc = self.run(None, *extra)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err.decode()

    def settled(self) -> None:
        """No temp file in the state dir, and nothing left to capture."""
        assert [p.name for p in self.state.rglob(".*.tmp")] == []
        code, err = self.capture("--dry-run", "--detailed-exitcode")
        assert code == ExitCode.OK, f"capture --dry-run after: exit {code}: {err[-300:]}"

    def journal(self) -> bool:
        """The capture journal is there (in the state dir's folder for this repo)."""
        return any(self.state.glob(f"repos/*/{JOURNAL_NAME}"))

    def phase(self, tip: str | None, finished: bool) -> str:
        """Where a kill landed, from what it left: the journal and the remote's branch."""
        journal = self.journal()
        moved = ref_of(self.remote, "refs/heads/main") != tip
        if finished:
            return "after the run ended"
        if moved:
            return "pushed, ledger not saved" if journal else "after the ledger save"
        return "journal written, not pushed" if journal else "before the journal"

    def remote_files(self) -> dict[str, bytes]:
        head = ref_of(self.remote, "refs/heads/main")
        assert head is not None
        with Repo(str(self.remote)) as repo:
            tip = repo[head.encode()]
            assert isinstance(tip, Commit)
            return {
                e.path.decode(): repo[e.sha].as_raw_string()
                for e in repo.object_store.iter_tree_contents(tip.tree)
                if e.path is not None and e.sha is not None and e.path.startswith(b"configs/")
            }


def fsck(remote: Path) -> None:
    done = subprocess.run(
        ["git", "--git-dir", str(remote), "fsck", "--strict"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_kills_right_after_the_ref_moved(tmp_path: Path) -> None:
    host, rng = Host(tmp_path), random.Random(7)
    host.edit(0, rng)
    assert host.capture()[0] == ExitCode.OK
    stuck = lost = 0
    for trial in range(1, TARGETED + 1):
        host.edit(2 * trial - 1, rng)
        killer = host.run(KILL_AFTER_PUSH)
        killer.communicate(timeout=120)
        assert killer.returncode == -signal.SIGKILL, "the push never happened"
        expected = host.edit(2 * trial, rng)  # the same files edited again, as the issue did
        code, err = host.capture()
        stuck += code != ExitCode.OK
        lost += host.remote_files() != expected
        assert code == ExitCode.OK, f"trial {trial}: exit {code}: {err[-500:]}"
        host.settled()
    fsck(host.remote)
    print(f"\n{TARGETED} kills right after the ref moved: {stuck} stuck, {lost} lost")
    assert (stuck, lost) == (0, 0)


@pytest.mark.slow
def test_kills_at_random_moments(tmp_path: Path) -> None:
    host, rng = Host(tmp_path), random.Random(11)
    host.edit(0, rng)
    assert host.capture()[0] == ExitCode.OK  # the first capture clones: slower than the rest
    host.edit(999, rng)
    start = time.monotonic()
    proc = host.run()
    while proc.poll() is None and not host.journal():
        time.sleep(0.001)
    journal_at = time.monotonic() - start  # start-up, fetch, redaction: where no kill is news
    while proc.poll() is None and host.journal():
        time.sleep(0.001)
    journal_gone = time.monotonic() - start  # the commit, the push and the ledger save
    assert proc.wait(timeout=120) == ExitCode.OK
    full = time.monotonic() - start  # what a capture of a few edits takes
    phases: collections.Counter[str] = collections.Counter()
    for trial in range(1, RANDOM_KILLS + 1):
        host.edit(trial, rng)
        tip = ref_of(host.remote, "refs/heads/main")
        proc = host.run()
        if trial % 3 == 0:  # inside the commit, push and ledger save: a few ms
            while proc.poll() is None and not host.journal():
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 1.5 * (journal_gone - journal_at)))
        else:
            time.sleep(rng.uniform(0.8 * journal_at if trial % 3 == 1 else 0, full))
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        phase = host.phase(tip, finished)
        phases[phase] += 1
        if phase == "after the run ended":
            full = max(journal_at, 0.7 * full)  # faster than the first timing: aim earlier
        expected = host.edit(1000 + trial, rng)
        code, err = host.capture()
        assert code == ExitCode.OK, f"trial {trial}: exit {code}: {err[-500:]}"
        assert host.remote_files() == expected, f"trial {trial}: a host edit was lost"
        host.settled()
    fsck(host.remote)
    print(
        f"\n{RANDOM_KILLS} random capture kills: {dict(phases)}; {journal_at=:.3f} {journal_gone=:.3f}"
    )
    assert phases["after the run ended"] < RANDOM_KILLS // 2, "most kills came too late"
    inside = phases["journal written, not pushed"] + phases["pushed, ledger not saved"]
    assert inside >= 1, "no kill landed between the journal and the ledger save"
