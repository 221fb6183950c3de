from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing.gitrepos import serve_repo
from testing.reconcile import Site, make_site
from tether.cli import main
from tether.exitcodes import ExitCode

SECRET = "s3cret-value-xyz"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(
        tmp_path,
        {"a": "a\n", "b": "b\n", "c.env": "K=__REDACTED_K__\n"},
        secrets=f"K={SECRET}\n",
    )


def save(site: Site, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "plan.json"
    result = site.reconcile("--out", str(out), *args)
    assert result.code in (ExitCode.OK, ExitCode.ATTENTION), result.err
    return out


def test_saved_plan_applies_exactly(site: Site, tmp_path: Path) -> None:
    out = save(site, tmp_path)
    assert SECRET not in out.read_text()
    result = site.tether("apply", str(out))
    assert result.code == ExitCode.OK, result.err
    assert site.dest("c.env").read_text() == f"K={SECRET}\n"
    assert set(site.plan().values()) == {"in_sync"}


def test_saved_plan_is_refused_whole_when_a_destination_moved(site: Site, tmp_path: Path) -> None:
    out = save(site, tmp_path)
    site.dest("b").parent.mkdir(parents=True)
    site.dest("b").write_text("appeared meanwhile\n")
    result = site.tether("apply", str(out))
    assert result.code == ExitCode.ATTENTION
    assert f"{site.dest('b')}: changed since the plan was made" in result.err
    assert "refused, 1 destinations are stale; nothing was written" in result.err
    assert not site.dest("a").exists()
    assert site.dest("b").read_text() == "appeared meanwhile\n"


def test_saved_plan_is_refused_when_the_source_moved(site: Site, tmp_path: Path) -> None:
    out = save(site, tmp_path)
    site.set_source("a", "changed in the repo\n")
    result = site.tether("apply", str(out))
    assert result.code == ExitCode.ATTENTION
    assert str(site.dest("a")) in result.err
    assert not site.dest("b").exists()


def test_saved_overwrite_plan_backs_up(site: Site, tmp_path: Path) -> None:
    site.reconcile("--apply")
    site.dest("a").write_text("host\n")
    out = save(site, tmp_path, "--overwrite")
    result = site.tether("apply", str(out), "--json")
    assert result.code == ExitCode.OK, result.err
    assert result.json()["backups"][0]["dest"] == str(site.dest("a"))
    assert site.dest("a").read_text() == "a\n"


def test_not_a_plan(tmp_path: Path, site: Site) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    result = site.tether("apply", str(bad))
    assert result.code == ExitCode.ERROR and "not a tether plan" in result.err
    result = site.tether("apply", str(tmp_path / "none.json"))
    assert result.code == ExitCode.ERROR and "no such plan file" in result.err


def test_plan_with_bad_context_types_is_one_line(tmp_path: Path, site: Site) -> None:
    out = save(site, tmp_path)
    doc = json.loads(out.read_text())
    doc["context"]["target_root"] = 5
    out.write_text(json.dumps(doc))
    result = site.tether("apply", str(out))
    assert result.code == ExitCode.ERROR and "not a tether plan" in result.err, result.err


def test_plan_from_another_version_says_so(tmp_path: Path, site: Site) -> None:
    out = save(site, tmp_path)
    doc = json.loads(out.read_text())
    doc["format"] = "tether-plan/2"
    out.write_text(json.dumps(doc))
    result = site.tether("apply", str(out))
    assert result.code == ExitCode.ERROR
    assert "tether-plan/2" in result.err and "another tether version" in result.err


def test_out_to_a_missing_folder_is_one_line(tmp_path: Path, site: Site) -> None:
    result = site.reconcile("--out", str(tmp_path / "no" / "such" / "plan.json"))
    assert result.code == ExitCode.ERROR, result.err
    assert "cannot save the plan" in result.err and "Traceback" not in result.err


def test_saved_plan_is_private_and_names_absolute_paths(
    tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = site.state.relative_to(tmp_path)
    secrets = site.secrets.relative_to(tmp_path)
    result = site.tether(
        "reconcile", "--source", str(site.repo), "--target-root", str(site.root),
        "--state-dir", str(relative), "--secrets-file", str(secrets), "--out", "plan.json",
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.err
    ctx = json.loads((tmp_path / "plan.json").read_text())["context"]
    assert ctx["state_dir"] == str(site.state) and ctx["secrets_file"] == str(site.secrets)
    assert (tmp_path / "plan.json").stat().st_mode & 0o077 == 0


def test_a_password_in_the_repo_url_never_reaches_the_saved_plan(
    tmp_path: Path, upstream: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_GIT_TOKEN", raising=False)
    token = "tok-9f8e7d6c5b"
    root, state, out = tmp_path / "host", tmp_path / "state", tmp_path / "plan.json"
    root.mkdir()
    with serve_repo(upstream, auth=("tether", token)) as url:
        secret_url = url.replace("http://", f"http://tether:{token}@")
        argv = ["reconcile", "--repo", secret_url, "--target-root", str(root),
                "--state-dir", str(state), "--secrets-file", str(tmp_path / "none.env")]  # fmt: skip
        assert main([*argv, "--out", str(out)]) == ExitCode.OK
        assert token not in out.read_text()
        monkeypatch.setenv("TETHER_GIT_TOKEN", token)  # how a saved plan authenticates
        assert main(["apply", str(out)]) == ExitCode.OK
    assert (root / "home/u/.bashrc").read_bytes() == b"alias ll='ls -l'\n"


def test_saved_plan_applies_are_recorded_in_history_and_metrics(site: Site, tmp_path: Path) -> None:
    out = save(site, tmp_path)
    metrics = tmp_path / "tether.prom"
    result = site.tether("apply", str(out), "--metrics-file", str(metrics))
    assert result.code == ExitCode.OK, result.err
    status = site.tether("status", "--json", "--state-dir", str(site.state))
    report = status.json()
    last = report["runs"][-1]
    assert last["command"] == "apply plan.json" and last["exit_code"] == ExitCode.OK
    assert last["counts"]["create"] == 3
    ready = next(c for c in report["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready  # a saved-plan apply counts as a reconcile
    assert report["last_applied_revision"] == "folder"
    assert 'tether_last_run_exit_code{command="apply"} 0' in metrics.read_text()


def test_a_refused_saved_plan_is_recorded_as_attention(site: Site, tmp_path: Path) -> None:
    out = save(site, tmp_path)
    site.set_source("a", "changed in the repo\n")
    assert site.tether("apply", str(out)).code == ExitCode.ATTENTION
    last = site.tether("status", "--json", "--state-dir", str(site.state)).json()["runs"][-1]
    assert last["exit_code"] == ExitCode.ATTENTION
    assert "destinations changed since" in last["message"]
