from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testing.repos import make_config_repo

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_demo_on_a_small_config_repo(tmp_path: Path) -> None:
    repo = make_config_repo(
        tmp_path / "repo",
        {"app/app.env": "TOKEN=__REDACTED_APP_TOKEN__\n", "app/config.yaml": "port: 8080\n"},
    )
    (repo / "examples").mkdir()
    (repo / "examples" / "secrets.env").write_text("APP_TOKEN=demo-token-value\n")
    result = subprocess.run(
        [sys.executable, str(DEMO), str(repo)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.index("1. Plan") < out.index("2. Apply") < out.index("3. Plan again")
    assert "Plan: 2 to create" in out
    assert "Applied: 2 created" in out
    assert "Nothing to do" in out
    assert "second plan found nothing to do" in out
    assert "demo-token-value" not in out + result.stderr
