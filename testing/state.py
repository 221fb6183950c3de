"""Where a test finds tether's per-repo state files (state_dir/repos/<repo>/)."""

from __future__ import annotations

from pathlib import Path

from tether.state.ledger import REPOS_DIR


def repo_state(state_dir: Path) -> Path:
    """The one config repo's folder under `state_dir` (a test with one repo has one)."""
    found = sorted((state_dir / REPOS_DIR).glob("*/"))
    assert len(found) == 1, f"expected one repo under {state_dir / REPOS_DIR}: {found}"
    return found[0]


def ledger_file(state_dir: Path) -> Path:
    return repo_state(state_dir) / "ledger.json"
