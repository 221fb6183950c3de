"""-q, -v and --color: on the group or after any command, one place deciding what is printed."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from testing.gitrepos import commit, init_bare
from testing.reconcile import Site, make_site
from tether.cli import main
from tether.exitcodes import ExitCode

GREEN = "\x1b[32m"
RED = "\x1b[31m"
FILES = {"app/a.conf": "a = 1\n", "app/b.conf": "b = 2\n"}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path, FILES)


def _drifted(site: Site) -> None:
    """a.conf as tether wrote it, b.conf changed on the host since: one drift, one in sync."""
    assert site.reconcile("--apply").code == ExitCode.OK
    site.dest("app/b.conf").write_text("b = 3\n")


def test_quiet_plan_keeps_only_what_needs_a_person_and_the_summary(site: Site) -> None:
    result = site.reconcile("-q")
    assert result.code == ExitCode.OK
    assert result.out.strip().splitlines() == [
        "Plan: 2 to create, 0 to update, 0 to prune, 0 in sync."
    ]
    _drifted(site)
    quiet = site.reconcile("--plan", "--quiet")
    assert "tether reconcile plan:" not in quiet.out  # the header is narration
    assert "drift" in quiet.out and "app/b.conf" in quiet.out  # needs a person: always shown
    assert "app/a.conf" not in quiet.out
    assert quiet.out.strip().splitlines()[-1].startswith("Plan: ")
    assert quiet.code == site.reconcile().code == ExitCode.ATTENTION  # same exit code


def test_quiet_and_verbose_also_before_the_command(site: Site) -> None:
    args = ["reconcile", *site.host_args()]
    assert "tether reconcile plan:" not in site.tether("-q", *args).out
    _drifted(site)
    verbose = site.tether("-v", *args)
    assert "In sync (1):" in verbose.out
    assert "app/a.conf" in verbose.out


def test_verbose_plan_lists_files_in_sync_and_the_time(site: Site) -> None:
    _drifted(site)
    normal, verbose = site.reconcile(), site.reconcile("-v")
    assert "In sync" not in normal.out
    assert "In sync (1):" in verbose.out
    assert "  = in_sync" in verbose.out
    assert "reconcile --plan: " in verbose.err and verbose.err.rstrip().endswith(" s")
    assert "reconcile --plan: " not in normal.err


def test_quiet_with_verbose_is_a_usage_error(site: Site) -> None:
    for args in (("-q", "-v"), ("--quiet", "--verbose")):
        result = site.reconcile(*args)
        assert result.code == ExitCode.USAGE
        assert "-q/--quiet and -v/--verbose together" in result.err
    split = site.tether("-q", "reconcile", "-v", *site.host_args())
    assert split.code == ExitCode.USAGE
    assert not site.dest("app/a.conf").exists()


def test_color_always_paints_the_action_and_beats_no_color(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert GREEN not in site.reconcile().out  # auto on a pipe: none
    painted = site.reconcile("--color=always")
    assert f"{GREEN}  + create" in painted.out
    assert painted.out.count(GREEN) == 2  # the two lines, nothing else
    assert "\x1b" not in site.reconcile("--color=never").out
    monkeypatch.setenv("NO_COLOR", "1")
    assert f"{GREEN}  + create" in site.reconcile("--color", "always").out
    _drifted(site)
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[33m  ! drift" in site.reconcile("--color=always").out


def test_json_is_never_coloured_nor_trimmed(site: Site) -> None:
    plain = site.reconcile("--json").json()
    for args in (("-q",), ("-v",), ("--color=always",)):
        result = site.reconcile("--json", *args)
        assert "\x1b" not in result.out
        doc = result.json()
        assert [f["path"] for f in doc["files"]] == [f["path"] for f in plain["files"]]


def _on_a_terminal(site: Site, *args: str, env: dict[str, str]) -> str:
    """stdout of `tether reconcile` run on a pseudo-terminal."""
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "tether", "reconcile", *site.host_args(), *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        check=False,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: all read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert done.returncode == ExitCode.OK, done.stderr
    return b"".join(chunks).decode()


def test_auto_colours_a_terminal_unless_no_color_or_a_dumb_one(site: Site) -> None:
    base = {"TERM": "xterm", "NO_COLOR": ""}
    assert GREEN in _on_a_terminal(site, env=base)
    assert GREEN not in _on_a_terminal(site, env={**base, "NO_COLOR": "1"})
    assert GREEN not in _on_a_terminal(site, env={**base, "TERM": "dumb"})
    assert GREEN not in _on_a_terminal(site, "--color=never", env=base)


def test_quiet_capture_names_held_files_but_not_the_committed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = init_bare(tmp_path / "remote.git")
    manifest = b"version: 1\ntarget:\n  home: /home/u\n"
    inventory = b"app/a.conf\nnotes/*.txt\n"
    commit(remote, {"tether.yaml": manifest, "inventory/include-paths.txt": inventory}, "init")
    home = tmp_path / "host" / "home" / "u"
    (home / "app").mkdir(parents=True)
    (home / "notes").mkdir()
    (home / "app" / "a.conf").write_text("a = 1\n")
    # A token no rule can name: held back (the finding needs a person), the rest pushed.
    (home / "notes" / "leak.txt").write_text("hello\nx: aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC2dF4gH6jK8\n")
    args = ["capture", "--repo", str(remote), "--target-root", str(tmp_path / "host"),
            "--state-dir", str(tmp_path / "state"), "--secrets-file", str(tmp_path / "s.env")]  # fmt: skip
    assert main([*args, "-q"]) == ExitCode.ATTENTION
    out = capsys.readouterr()
    assert "app/a.conf" not in out.out  # committed: the summary line says how many
    assert "tether capture:" not in out.out
    assert "held      notes/leak.txt" in out.out
    assert "held back notes/leak.txt" in out.err
    (home / "app" / "a.conf").write_text("a = 2\n")
    assert main([*args, "-v"]) in (ExitCode.OK, ExitCode.ATTENTION)
    assert "modify    app/a.conf" in capsys.readouterr().out


def test_quiet_status_and_doctor_leave_out_what_is_fine(site: Site) -> None:
    assert site.reconcile("--apply").code == ExitCode.OK
    state = ["--state-dir", str(site.state)]
    normal, quiet = site.tether("status", *state), site.tether("status", *state, "-q")
    assert "started " in normal.out and "started " not in quiet.out
    assert quiet.out.splitlines()[0] == normal.out.splitlines()[0]  # Ready: the result
    doctor_args = ["doctor", *site.host_args()]
    doctor, doctor_quiet = site.tether(*doctor_args), site.tether(*doctor_args, "-q")
    assert doctor.code == doctor_quiet.code
    assert any(line.startswith("ok ") for line in doctor.out.splitlines())
    assert not any(line.startswith("ok ") for line in doctor_quiet.out.splitlines())
    assert [x for x in doctor.out.splitlines() if not x.startswith("ok ")] == (
        doctor_quiet.out.splitlines()
    )
    assert json.loads(site.tether(*doctor_args, "--json", "-q").out)["checks"]
