from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testing.repos import MINIMAL_MANIFEST, make_config_repo

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_demo_on_a_small_config_repo(tmp_path: Path) -> None:
    repo = make_config_repo(
        tmp_path / "repo",
        {"app/app.env": "TOKEN=__REDACTED_APP_TOKEN__\n", "app/config.yaml": "port: 8080\n"},
        manifest=MINIMAL_MANIFEST
        + "services:\n"
        + "  - name: app\n    paths: [app/**]\n    after: [db]\n"
        + "    on_change: ['touch /must-not-run-$TETHER_SERVICE']\n"
        + '  - name: db\n    paths: [app/app.env]\n    on_change: ["docker compose up -d"]\n',
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
    # the handlers ran in `after` order, as harmless echoes into the temp folder
    assert "  db: docker compose up -d\n  app: touch /must-not-run-$TETHER_SERVICE\n" in out
    assert not Path("/must-not-run-app").exists()


def test_demo_of_the_project_shows_both_hosts_and_the_fleet() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "--host homelab" in out and "4. Plan host pi from the same repo" in out
    pi_plan = out.split("4. Plan host pi", 1)[1].split("===", 1)[0]
    assert "pihole/etc-pihole/pihole.toml  [host layer]" in pi_plan
    assert "traefik" not in pi_plan.split("Services", 1)[0]  # the pi runs pi-hole only
    fleet = out.split("$ tether fleet", 1)[1]
    assert "2 hosts reported" in fleet
    assert [line.split()[0] for line in fleet.splitlines()[2:4]] == ["homelab", "pi"]
    assert fleet.count(" Ready ") == 2
