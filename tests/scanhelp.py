"""Helpers for the scan, gitread, hooks and pre-commit tests: fake secrets built at run time
(so tether's own scan of this repo stays clean) and git repos driven by the real git CLI."""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ALNUM = string.ascii_letters + string.digits


def token(prefix: str = "ghp_", size: int = 36, seed: int = 1) -> str:
    rng = random.Random(seed)
    body = "".join(rng.choice(ALNUM) for _ in range(size))
    return prefix + body


def git_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp / "home"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        PRE_COMMIT_HOME=str(tmp / "pre-commit-home"),
    )
    for name in list(env):
        if name.startswith(("PRE_COMMIT_FROM", "PRE_COMMIT_TO", "PRE_COMMIT_REMOTE")):
            del env[name]
    (tmp / "home").mkdir(exist_ok=True)
    return env


def git(
    repo: Path, *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=check
    )


def init_repo(path: Path, env: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main", env=env)
    return path


def commit_file(repo: Path, name: str, text: str, env: dict[str, str], message: str = "c") -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name, env=env)
    git(repo, "commit", "-q", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD", env=env).stdout.strip()
