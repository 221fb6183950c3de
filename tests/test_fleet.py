"""Fleet status in git (issue 17): refs/tether/status/<host> and `tether fleet`, over a real
`git daemon`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dulwich.objects import Commit, Tree
from dulwich.repo import Repo

from testing.gitrepos import commit, decline_pushes, init_bare, refs_of
from tether.cli import main
from tether.exitcodes import ExitCode

SECRET = "pihole-Adm1n-Passw0rd-77"
MANIFEST = b"""\
version: 1
target:
  home: /home/u
hosts:
  nas:
    exclude: ["pihole/**"]
  pi:
    include: ["pihole/**"]
"""


class Fleet:
    def __init__(self, tmp: Path, url: str, bare: Path) -> None:
        self.tmp, self.url, self.bare = tmp, url, bare

    def args(self, host: str) -> list[str]:
        root = self.tmp / host
        root.mkdir(exist_ok=True)
        store = self.tmp / f"{host}.env"
        if not store.exists():
            store.write_text(f"PIHOLE_PW={SECRET}\n")
            store.chmod(0o600)
        return [
            "--repo", self.url, "--host", host, "--target-root", str(root),
            "--state-dir", str(self.tmp / f"{host}.state"), "--secrets-file", str(store),
        ]  # fmt: skip

    def reconcile(self, host: str, *extra: str) -> int:
        return main(["reconcile", "--apply", *extra, *self.args(host)])

    def fleet(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["fleet", "--repo", self.url, "--state-dir", str(self.tmp / "fleet"), *extra])
        return code, capsys.readouterr().out

    def report(self, host: str) -> dict[str, object]:
        with Repo(str(self.bare)) as repo:
            head = repo[repo.refs[f"refs/tether/status/{host}".encode()]]
            assert isinstance(head, Commit) and head.parents == []
            tree = repo[head.tree]
            assert isinstance(tree, Tree) and [e.path for e in tree.items()] == [b"status.json"]
            data = repo[tree[b"status.json"][1]].as_raw_string()
        assert SECRET.encode() not in data and b"PIHOLE_PW=" not in data
        doc = json.loads(data)
        assert isinstance(doc, dict)
        return doc


@pytest.fixture
def fleet(tmp_path: Path, git_daemon: str) -> Fleet:
    bare = init_bare(tmp_path / "srv" / "config.git")
    commit(
        bare,
        {
            "tether.yaml": MANIFEST,
            "inventory/include-paths.txt": b"app.conf\npihole/pihole.toml\n",
            "configs/app.conf": b"port = 80\n",
            "configs/pihole/pihole.toml": b"password = __REDACTED_PIHOLE_PW__\n",
        },
        "init",
    )
    return Fleet(tmp_path, f"{git_daemon}/config.git", bare)


def test_each_run_replaces_the_hosts_status_ref_and_fleet_lists_them(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fleet.reconcile("nas") == ExitCode.OK
    assert fleet.reconcile("pi") == ExitCode.OK
    first = refs_of(fleet.bare, "refs/tether/status/")
    assert sorted(first) == ["refs/tether/status/nas", "refs/tether/status/pi"]
    pi = fleet.report("pi")
    assert pi["host"] == "pi" and pi["ready"] is True
    assert pi["counts"] == {**dict.fromkeys(pi["counts"], 0), "create": 1}  # type: ignore[arg-type]
    assert fleet.reconcile("pi") == ExitCode.OK  # a second run: the ref is replaced, not grown
    again = refs_of(fleet.bare, "refs/tether/status/")
    assert again["refs/tether/status/pi"] != first["refs/tether/status/pi"]
    fleet.report("pi")  # still one parentless commit

    code, out = fleet.fleet(capsys, "--json")
    assert code == ExitCode.OK
    doc = json.loads(out)
    head = refs_of(fleet.bare, "refs/heads/")["refs/heads/main"]
    assert doc["branch"] == "main" and doc["branch_revision"] == head
    rows = {h["host"]: h for h in doc["hosts"]}
    assert sorted(rows) == ["nas", "pi"]
    for row in rows.values():
        assert {"host", "applied_revision", "behind", "ready", "last_run", "counts",
                "pending_services"} <= set(row)  # fmt: skip
        assert row["applied_revision"] == head and row["behind"] == 0 and row["ready"] is True

    commit(fleet.bare, {"configs/app.conf": b"port = 81\n"}, "bump")
    code, out = fleet.fleet(capsys)
    assert code == ExitCode.OK  # behind is not unready: the next tick brings it
    assert "(1 behind)" in out and out.count("Ready ") == 2


def test_a_host_not_ready_or_silent_makes_fleet_exit_attention(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fleet.reconcile("nas") == ExitCode.OK
    (fleet.tmp / "pi.env").write_text("")  # the pi lost its secret: blocked, needs a person
    (fleet.tmp / "pi.env").chmod(0o600)
    assert fleet.reconcile("pi") == ExitCode.ATTENTION
    assert fleet.report("pi")["ready"] is False
    code, out = fleet.fleet(capsys)
    assert code == ExitCode.ATTENTION
    line = next(x for x in out.splitlines() if x.startswith("pi "))
    assert "NotReady" in line and "blocked=1" in line
    code, out = fleet.fleet(capsys, "--prometheus")
    assert code == ExitCode.ATTENTION
    assert 'tether_fleet_host_ready{host="nas"} 1' in out
    assert 'tether_fleet_host_ready{host="pi"} 0' in out
    assert "tether_fleet_hosts 2" in out
    (fleet.tmp / "pi.env").write_text(f"PIHOLE_PW={SECRET}\n")
    assert fleet.reconcile("pi") == ExitCode.OK
    assert fleet.fleet(capsys)[0] == ExitCode.OK
    code, out = fleet.fleet(capsys, "--stale-after", "0s", "--json")
    assert code == ExitCode.ATTENTION  # nobody reported within no time at all


def test_no_report_pushes_nothing(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet.reconcile("nas", "--no-report") == ExitCode.OK
    assert refs_of(fleet.bare, "refs/tether/status/") == {}
    capsys.readouterr()
    code = main(["fleet", "--repo", fleet.url, "--state-dir", str(fleet.tmp / "fleet")])
    assert code == ExitCode.ATTENTION
    assert "no host has reported to this repo yet" in capsys.readouterr().err


def test_a_refused_report_is_a_warning_never_a_failed_run(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    decline_pushes(fleet.bare, "policy: read-only")
    assert fleet.reconcile("nas") == ExitCode.OK
    err = capsys.readouterr().err
    assert "warning: fleet status not reported" in err and "Traceback" not in err
    assert refs_of(fleet.bare, "refs/tether/status/") == {}
