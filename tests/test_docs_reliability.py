"""The commands docs/reliability.md and docs/git.md show are run here: the fault suite's command
collects every trial the figures name, and the dulwich bitmap reproduction still reproduces."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def sh_blocks(doc: str, after: str = "") -> list[str]:
    """The ```sh blocks of docs/`doc`, from the heading line `after` on."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    text = text[text.index(after) :] if after else text
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def test_the_fault_suite_command_collects_every_trial_the_figures_name() -> None:
    text = (DOCS / "reliability.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_\w+\.py)`", text))
    assert named, "reliability.md names no trial file"
    commands = [line for block in sh_blocks("reliability.md") for line in block.splitlines()]
    assert commands
    for line in commands:
        argv = shlex.split(line.split("#", 1)[0])
        assert argv[:3] == [".venv/bin/python", "-m", "pytest"], line
        argv = [a for a in argv[3:] if a != "-s" and not a.startswith("FUZZ_CASES=")]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *argv, "--collect-only", "-q", "-p", "no:randomly"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:]
        collected = {Path(t.split("::", 1)[0]).name for t in done.stdout.splitlines() if "::" in t}
        assert named <= collected, f"{line}: does not run {sorted(named - collected)}"


def test_the_dulwich_bitmap_reproduction_in_git_md_still_reproduces(tmp_path: Path) -> None:
    """If dulwich fixes its bitmap reachability, this fails: drop the bitmap part of LocalRemoteClient then."""
    (block,) = sh_blocks("git.md", "### Local remotes with a bitmap")
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    *setup, fetch = lines
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )

    built = bash("set -eu\n" + "\n".join(setup), tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    done = bash(fetch, tmp_path / "work")  # the block's `cd work` holds for its last line
    assert done.returncode != 0, "dulwich fetched: the workaround may no longer be needed"
    assert "FileNotFoundError" in done.stderr and ".bitmap" in done.stderr, done.stderr[-2000:]
