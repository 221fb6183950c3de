from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixtures serving real git repos (git daemon, smart HTTP, a closed port).
from testing.gitrepos import closed_port, git_daemon, http_server, upstream  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep tests away from the real home, state dir and the article's environment variables."""
    for name in (
        "TETHER_TARGET_ROOT",
        "TETHER_STATE_DIR",
        "TETHER_SECRETS_FILE",
        "TETHER_HOST",
        "TARGET_HOME",
        "DRY_RUN",
        "OVERWRITE",
    ):
        monkeypatch.delenv(name, raising=False)
    logs = tmp_path_factory.mktemp("logs")
    monkeypatch.setenv("TETHER_LOG_DIR", str(logs))
    os.environ.setdefault("GIT_AUTHOR_NAME", "tether tests")
