"""The plan cache end to end: a plan that found nothing to do is printed again from the cache
while nothing it depended on moved, and any change anywhere it looked makes the full plan
run, with the same answer a plan without any cache gives."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tether.commands.reconcilerun
from testing.reconcile import Result, Site, make_site
from tether.exitcodes import ExitCode
from tether.hostfs.probe import RACY_NS
from tether.reconcile.dependencies import folders_between
from tether.state.plancache import cache_path

FILES = {
    "app/a.conf": "a=1\n",
    "app/b.conf": "b=1\n",
    "app/.env": "PASSWORD=__REDACTED_APP_PASSWORD__\n",
    "web/deep/site.conf": "listen 80;\n",
}
MANIFEST = """\
version: 1
target:
  home: /home/demo
hosts:
  nas: {}
  pi:
    home: /home/pi
"""


def settle() -> None:
    """Let what just changed age past a clock tick, so a plan may be cached."""
    time.sleep(1.5 * RACY_NS / 1e9)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    made = make_site(tmp_path, FILES, secrets="APP_PASSWORD='s3cret-value'\n")
    assert made.reconcile("--apply").code == ExitCode.OK
    settle()
    return made


def full_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the full plans made from now on."""
    calls: list[int] = []
    real = tether.commands.reconcilerun.run_reconcile

    def counted(*args: object, **kwargs: object) -> int:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tether.commands.reconcilerun, "run_reconcile", counted)
    return calls


def test_a_quiet_plan_is_cached_and_printed_again(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = full_runs(monkeypatch)
    first = site.reconcile()
    assert first.code == ExitCode.OK and "Nothing to do" in first.out
    assert cache_path(site.state).is_file()
    second = site.reconcile()
    assert (second.code, second.out, second.err) == (first.code, first.out, first.err)
    assert len(calls) == 1  # the second came from the cache
    runs = [json.loads(line) for line in (site.state / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["command"] == "reconcile --plan" and runs[-1]["counts"]["in_sync"] == 4
    assert runs[-1]["exit_code"] == 0  # a cached plan is recorded like any other
    assert "s3cret-value" not in cache_path(site.state).read_text(errors="replace")


def test_verbose_and_quiet_plans_are_cached_apart(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = full_runs(monkeypatch)
    normal = site.reconcile()
    verbose = site.tether("-v", "reconcile", *site.host_args())
    assert "In sync (4)" in verbose.out and "In sync" not in normal.out
    assert len(calls) == 2
    assert site.tether("-v", "reconcile", *site.host_args()).out == verbose.out
    assert len(calls) == 2


@pytest.mark.parametrize(
    "args",
    [("--json",), ("--diff",), ("--only", "app/a.conf"), ("--out", "PLAN")],
)
def test_other_plans_are_never_served_from_it(
    site: Site, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], tmp_path: Path
) -> None:
    args = tuple(str(tmp_path / "plan.json") if a == "PLAN" else a for a in args)
    site.reconcile()
    calls = full_runs(monkeypatch)
    site.reconcile(*args)
    site.reconcile(*args)
    assert len(calls) == 2


def test_a_plan_with_something_to_do_is_not_cached(site: Site) -> None:
    site.dest("app/a.conf").write_text("edited on the host\n")
    settle()
    result = site.reconcile()
    assert result.code == ExitCode.ATTENTION and "drift" in result.out
    assert not cache_path(site.state).exists()


def test_a_clone_or_a_glob_or_an_override_is_not_cached(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_PASSWORD", "from-the-environment")  # overrides the store
    site.dest("app/.env").write_text("PASSWORD=from-the-environment\n")
    settle()
    assert site.reconcile().code == ExitCode.OK
    assert not cache_path(site.state).exists()
    monkeypatch.delenv("APP_PASSWORD")
    assert site.reconcile("--apply", "--overwrite").code == ExitCode.OK
    (site.repo / "inventory" / "include-paths.txt").write_text("app/*\nweb/deep/site.conf\n")
    settle()
    assert site.reconcile().code == ExitCode.OK
    assert not cache_path(site.state).exists()  # a glob depends on every folder it walks
    (site.repo / "inventory" / "include-paths.txt").write_text("".join(f"{p}\n" for p in FILES))
    subprocess.run(["git", "init", "-q", str(site.repo)], check=True)
    settle()
    assert site.reconcile().code == ExitCode.OK
    assert not cache_path(site.state).exists()  # a clone's state depends on its mirror


def test_folders_come_once_each_down_from_the_base() -> None:
    files = ["/r/a/b/1", "/r/a/b/2", "/r/a/c/3", "/r/a/d", "/r/e/f/4"]
    assert list(folders_between("/r", files)) == [
        "/r",
        "/r/a",
        "/r/a/b",
        "/r/a/c",
        "/r/e",
        "/r/e/f",
    ]
    assert list(folders_between("/", ["/etc/x/y", "/etc/z"])) == ["/", "/etc", "/etc/x"]
    # out of order: a folder may come twice, never be missed
    assert set(folders_between("/r", ["/r/a/b/1", "/r/c/2", "/r/a/b/3"])) == {
        "/r",
        "/r/a",
        "/r/a/b",
        "/r/c",
    }


def test_a_destination_through_a_linked_folder_is_not_cached(site: Site) -> None:
    """tether allows a folder linked inside the target root; what such a plan depended on is
    not on the destinations' paths, so it is made in full every time."""
    real = site.root / "data" / "web"
    real.parent.mkdir()
    site.dest("web").rename(real)
    site.dest("web").symlink_to(real)
    settle()
    assert "Nothing to do" in site.reconcile().out
    assert not cache_path(site.state).exists()


def _uncached(site: Site, *args: str) -> Result:
    """The plan made in full (the cache set aside and put back)."""
    path = cache_path(site.state)
    kept = path.read_bytes() if path.exists() else None
    path.unlink(missing_ok=True)
    result = site.tether(*args)
    path.unlink(missing_ok=True)
    if kept is not None:
        path.write_bytes(kept)
    return result


def _same_answer(site: Site, *args: str) -> Result:
    """The plan as tether gives it (from the cache or not) equals the plan made in full."""
    given = site.tether(*args)
    full = _uncached(site, *args)
    assert (given.code, given.out) == (full.code, full.out)
    return given


def _move_folder_out_and_link_it(site: Site) -> None:
    """The attack a stat of each file cannot see: the files keep their inodes and times."""
    folder = site.dest("web/deep")
    outside = site.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    folder.rename(outside / "deep")
    folder.symlink_to(outside / "deep")


def _swap_source_folder_for_a_link(site: Site) -> None:
    folder = site.source("web")
    moved = site.repo.parent / "moved-web"
    folder.rename(moved)
    folder.symlink_to(moved)


# Each change, and what the full plan says after it (a change a plan need not act on, such
# as a ledger to record again, still costs a full plan: the cache cannot tell).
CHANGES: dict[str, tuple[Callable[[Site], object], str]] = {
    "source edited": (lambda s: s.source("app/a.conf").write_text("a=2\n"), "update"),
    "source removed": (lambda s: s.source("app/b.conf").unlink(), "missing in the config repo"),
    "destination edited": (lambda s: s.dest("app/b.conf").write_text("b=host\n"), "drift"),
    "destination made public": (lambda s: s.dest("app/.env").chmod(0o644), "Nothing to do"),
    "destination removed": (lambda s: s.dest("web/deep/site.conf").unlink(), "create"),
    "destination folder moved out and linked": (_move_folder_out_and_link_it, "outside"),
    "source folder swapped for a link": (_swap_source_folder_for_a_link, "symlink"),
    "secret changed in the store": (
        lambda s: s.secrets.write_text("APP_PASSWORD='other'\n"),
        "update",
    ),
    "store made readable by others": (lambda s: s.secrets.chmod(0o644), "others may access it"),
    "manifest changed": (
        lambda s: (s.repo / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/o\n"),
        "create",
    ),
    "allowlist shortened": (
        lambda s: (s.repo / "inventory" / "include-paths.txt").write_text("app/a.conf\n"),
        "no longer desired",
    ),
    "ledger removed": (
        lambda s: [p.unlink() for p in s.state.glob("repos/*/ledger.json")],
        "Nothing to do",
    ),
    "hash key removed": (lambda s: (s.state / "key").unlink(), "Nothing to do"),
    "a git clone made around the folder": (  # its state is then reported with the plan
        lambda s: subprocess.run(["git", "init", "-q", str(s.repo.parent)], check=True),
        "Nothing to do",
    ),
    "target root swapped": (
        lambda s: (s.root.rename(s.root.parent / "old-root"), s.root.mkdir()),
        "create",
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_gives_the_full_plans_answer(
    site: Site, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    assert "Nothing to do" in site.reconcile().out  # made in full: cached
    calls = full_runs(monkeypatch)
    assert "Nothing to do" in site.reconcile().out  # from the cache
    assert calls == []
    make, said = CHANGES[change]
    make(site)
    settle()
    answer = site.reconcile()
    assert calls, "the full plan ran, not the cache"
    assert said in answer.out + answer.err, answer.out + answer.err
    full = _uncached(site, "reconcile", *site.host_args())
    assert (answer.code, answer.out) == (full.code, full.out)


def test_an_overlay_added_for_this_host_is_seen(tmp_path: Path) -> None:
    site = make_site(tmp_path, FILES, manifest=MANIFEST, secrets="APP_PASSWORD='x'\n")
    overlay = site.repo / "hosts" / "nas" / "configs" / "web" / "deep"
    overlay.mkdir(parents=True)  # there, empty: only this folder changes when a file comes
    host = ("--host", "nas")
    assert site.reconcile("--apply", *host).code == ExitCode.OK
    settle()
    assert "Nothing to do" in site.reconcile(*host).out
    assert cache_path(site.state).exists()
    (overlay / "site.conf").write_text("listen 8080;\n")
    settle()
    answer = _same_answer(site, "reconcile", *site.host_args(), *host)
    assert "update" in answer.out and "[host layer]" in answer.out
    # another host's plan is another key: the pi's is not the nas's
    assert site.reconcile("--apply", "--host", "pi").code == ExitCode.OK


def test_random_changes_never_make_the_cache_disagree(site: Site) -> None:
    """Random edits on both sides, each followed by a plan: whatever the cache holds, the
    answer is the full plan's."""
    rng = random.Random(5)
    paths = sorted(FILES)
    args = ("reconcile", *site.host_args())
    for step in range(24):
        path = rng.choice(paths)
        side = rng.choice([site.source, site.dest])
        what = rng.randrange(4)
        target = side(path)
        if what == 0 and target.exists():
            target.write_text(f"step {step}\n")
        elif what == 1 and target.exists():
            target.chmod(rng.choice([0o600, 0o640, 0o644]))
        elif what == 2:
            assert site.reconcile("--apply", "--overwrite").code in (ExitCode.OK, ExitCode.ERROR)
        else:
            os.utime(site.repo / "tether.yaml")  # touched, not changed: costs a full plan only
        if rng.random() < 0.7:
            settle()  # old enough to be cached
        _same_answer(site, *args)
        _same_answer(site, *args)  # the second may come from the cache


def test_a_cached_plan_leaks_no_secret_value(site: Site) -> None:
    site.reconcile()
    data = cache_path(site.state).read_bytes()
    assert b"s3cret-value" not in data
    assert oct(cache_path(site.state).stat().st_mode & 0o777) == "0o600"
    shutil.rmtree(site.state / "repos")  # no ledger: in sync, to record again: not cached
    settle()
    assert "Nothing to do" in site.reconcile().out
    assert not cache_path(site.state).exists()
