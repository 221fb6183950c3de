"""DRY_RUN / OVERWRITE (and TETHER_-prefixed names): true/false, 1/0, yes/no in any case;
anything else is a usage error; an apply the environment turned on says so first."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.reconcile import Site, make_site
from tether.config.options import EnvFlag, env_flag
from tether.errors import UsageError
from tether.exitcodes import ExitCode


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    for name in ("DRY_RUN", "OVERWRITE", "TETHER_DRY_RUN", "TETHER_OVERWRITE"):
        monkeypatch.delenv(name, raising=False)
    return make_site(tmp_path, {"app/a.conf": "a=1\n"})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DRY_RUN": "false"}, EnvFlag("DRY_RUN", False)),
        ({"DRY_RUN": " No "}, EnvFlag("DRY_RUN", False)),
        ({"DRY_RUN": "1"}, EnvFlag("DRY_RUN", True)),
        ({"TETHER_DRY_RUN": "YES"}, EnvFlag("TETHER_DRY_RUN", True)),
        ({"TETHER_DRY_RUN": "0", "DRY_RUN": "no"}, EnvFlag("TETHER_DRY_RUN", False)),
        ({"DRY_RUN": ""}, None),
        ({}, None),
    ],
)
def test_words(env: dict[str, str], expected: EnvFlag | None) -> None:
    assert env_flag("DRY_RUN", env) == expected


@pytest.mark.parametrize("env", [{"DRY_RUN": "maybe"}, {"DRY_RUN": "1", "TETHER_DRY_RUN": "no"}])
def test_bad_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        env_flag("DRY_RUN", env)


def test_dry_run_false_applies_and_says_why(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRY_RUN", "No")
    result = site.reconcile()
    assert result.code == ExitCode.OK
    first = result.out.splitlines()[0]
    assert first.startswith("tether reconcile apply (DRY_RUN=false in the environment): ")
    assert site.dest("app/a.conf").read_text() == "a=1\n"


def test_a_bad_value_is_a_usage_error_even_with_plan(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERWRITE", "sure")
    result = site.reconcile("--plan")
    assert result.code == ExitCode.USAGE
    assert "OVERWRITE=sure: not true or false" in result.err and result.err.count("\n") == 1


def test_overwrite_from_the_environment(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.reconcile("--apply")
    site.dest("app/a.conf").write_text("edited\n")
    monkeypatch.setenv("TETHER_OVERWRITE", "1")
    result = site.reconcile("--apply")
    assert "(TETHER_OVERWRITE=true in the environment)" in result.out.splitlines()[0]
    assert site.dest("app/a.conf").read_text() == "a=1\n"
