"""`tether diff`, `tether ls` and `--only`: views of the plan, and a run limited to some paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.reconcile import Site, make_site
from tether.exitcodes import ExitCode

SECRET = "s3cretValue42"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(
        tmp_path,
        {"app/a.conf": "a=1\n", "app/.env": "PASSWORD=__REDACTED_APP_PASSWORD__\n", "web/w": "w\n"},
        secrets=f"APP_PASSWORD={SECRET}\n",
    )


def test_ls_lists_action_layer_and_destination(site: Site) -> None:
    site.reconcile("--apply", "--only", "app/a.conf")
    result = site.tether("ls", *site.host_args(), "--json")
    assert result.code == ExitCode.OK, result.err
    rows = {r["path"]: r for r in result.json()["files"]}
    assert rows["app/a.conf"]["action"] == "in_sync"
    assert rows["web/w"]["action"] == "create"
    assert rows["web/w"]["layer"] == "shared"
    assert rows["web/w"]["destination"] == str(site.dest("web/w"))
    text = site.tether("ls", *site.host_args(), "--only", "web").out
    assert text.splitlines() == [f"create  web/w -> {site.dest('web/w')}"]


def test_only_limits_an_apply(site: Site) -> None:
    assert site.reconcile("--apply", "--only", "app/*").code == ExitCode.OK
    assert site.dest("app/a.conf").is_file() and site.dest("app/.env").is_file()
    assert not site.dest("web/w").exists()


def test_diff_shows_only_diffs_with_secrets_masked(site: Site) -> None:
    site.reconcile("--apply")
    site.dest("app/.env").write_text("PASSWORD=other\n")
    site.set_source("web/w", "w2\n")
    result = site.tether("diff", *site.host_args())
    assert result.code == ExitCode.OK, result.err
    assert "-w\n+w2" in result.out and "+PASSWORD=(secret APP_PASSWORD)" in result.out
    assert SECRET not in result.out and "Plan:" not in result.out
    only = site.tether("diff", *site.host_args(), "web/w").out
    assert "+w2" in only and "PASSWORD" not in only
