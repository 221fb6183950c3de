"""A simulated fleet over one real `git daemon` (issue 17): 30 hosts, each its own host name,
target root and state dir, ticking 8 at a time; then 20 hosts capturing at the same moment.
Each tick and capture is a real `tether` process. Slow tier (tens of seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.gitrepos import commit, init_bare, ref_of, refs_of
from tether.exitcodes import ExitCode

pytestmark = pytest.mark.slow

HOSTS = [f"h{i:02d}" for i in range(30)]
OVERLAID = {"h03", "h10", "h21"}  # hosts with their own app.conf
SECRET = "Fleet-Pihole-S3cret-0042"


def _manifest(flag: Path) -> bytes:
    lines = ["version: 1", "target:", "  home: /home/u"]
    # one service, run on h07 only; it fails once the flag file exists
    lines += ["services:", "  - name: app", '    paths: ["own.conf"]']
    lines += ["    on_change:", f'      - "test ! -e {flag}"', "hosts:"]
    for i, name in enumerate(HOSTS):
        lines.append(f"  {name}:")
        lines.append(f"    inventory: [hosts/{name}/include-paths.txt]")
        lines.append(f"    services: [{'app' if name == 'h07' else ''}]")
        if i % 2:  # odd hosts are Pis: pi-hole and the shared app only
            lines.append('    include: ["pihole/**", "app.conf"]')
        else:
            lines.append('    exclude: ["pihole/**"]')
    return ("\n".join(lines) + "\n").encode()


def _repo_files(flag: Path) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {
        "tether.yaml": _manifest(flag),
        "inventory/include-paths.txt": b"app.conf\ntraefik.yml\npihole/pihole.toml\n",
        "configs/app.conf": b"version = 1\n",
        "configs/traefik.yml": b"entryPoints: {}\n",
        "configs/pihole/pihole.toml": b"password = __REDACTED_PIHOLE_PW__\n",
    }
    for name in HOSTS:
        files[f"hosts/{name}/include-paths.txt"] = b"own.conf\n"
        files[f"hosts/{name}/configs/own.conf"] = f"host = {name}\n".encode()
    for name in OVERLAID:
        files[f"hosts/{name}/configs/app.conf"] = f"version = 1 ({name}'s own)\n".encode()
    return files


@dataclass
class World:
    tmp: Path
    bare: Path
    url: str

    def args(self, host: str) -> list[str]:
        return [
            "--repo", self.url, "--host", host,
            "--target-root", str(self.tmp / "roots" / host),
            "--state-dir", str(self.tmp / "states" / host),
            "--secrets-file", str(self.tmp / "stores" / f"{host}.env"),
        ]  # fmt: skip

    def home(self, host: str) -> Path:
        return self.tmp / "roots" / host / "home" / "u"

    def tether(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "TETHER_LOG_DIR": str(self.tmp / "logs")}
        return subprocess.run(
            [sys.executable, "-m", "tether", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def each(
        self,
        hosts: Sequence[str],
        step: Callable[[str], subprocess.CompletedProcess[str]],
        width: int,
    ) -> dict[str, subprocess.CompletedProcess[str]]:
        with ThreadPoolExecutor(width) as pool:
            return dict(zip(hosts, pool.map(step, hosts), strict=True))

    def tick(self, host: str) -> subprocess.CompletedProcess[str]:
        return self.tether("agent", "run", "--once", *self.args(host))

    def capture(self, host: str) -> subprocess.CompletedProcess[str]:
        return self.tether("capture", *self.args(host))

    def fleet(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.tether(
            "fleet", "--repo", self.url, "--state-dir", str(self.tmp / "fleet"), *extra
        )


@pytest.fixture
def world(tmp_path: Path, git_daemon: str) -> World:
    bare = init_bare(tmp_path / "srv" / "config.git")
    commit(bare, _repo_files(tmp_path / "h07-broken"), "the fleet")
    for folder in ("roots", "states", "stores", "logs"):
        (tmp_path / folder).mkdir()
    for name in HOSTS:
        (tmp_path / "roots" / name).mkdir()
        store = tmp_path / "stores" / f"{name}.env"
        store.write_text(f"PIHOLE_PW={SECRET}\n")
        store.chmod(0o600)
    return World(tmp_path, bare, f"{git_daemon}/config.git")


def _expected(host: str, version: int) -> dict[str, str]:
    app = f"version = {version}\n"
    if host in OVERLAID:
        app = f"version = 1 ({host}'s own)\n"
    files = {"app.conf": app, "own.conf": f"host = {host}\n"}
    if int(host[1:]) % 2:
        files["pihole/pihole.toml"] = f"password = {SECRET}\n"
    else:
        files["traefik.yml"] = "entryPoints: {}\n"
    return files


def _on_host(world: World, host: str) -> dict[str, str]:
    home = world.home(host)
    return {str(p.relative_to(home)): p.read_text() for p in sorted(home.rglob("*")) if p.is_file()}


def test_thirty_hosts_converge_and_report_through_one_git_daemon(world: World) -> None:
    first = world.each(HOSTS, world.tick, 8)
    assert {h: r.returncode for h, r in first.items()} == dict.fromkeys(HOSTS, ExitCode.OK)
    new = commit(
        world.bare,
        {"configs/app.conf": b"version = 2\n", "configs/traefik.yml": b"entryPoints: {}\n"},
        "version 2",
    )
    second = world.each(HOSTS, world.tick, 8)
    assert {h: r.returncode for h, r in second.items()} == dict.fromkeys(HOSTS, ExitCode.OK)
    for host in HOSTS:  # only its profile's files, its overlays, the new revision
        assert _on_host(world, host) == _expected(host, 2), host
    assert len(refs_of(world.bare, "refs/tether/status/")) == 30

    listed = world.fleet("--json")
    assert listed.returncode == ExitCode.OK, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["branch_revision"] == new
    assert sorted(h["host"] for h in doc["hosts"]) == HOSTS
    for row in doc["hosts"]:
        assert row["ready"] and row["applied_revision"] == new and row["behind"] == 0, row
    assert SECRET not in listed.stdout

    (world.tmp / "h07-broken").touch()  # h07's service breaks; its next change fails it
    commit(world.bare, {"hosts/h07/configs/own.conf": b"host = h07\nv = 2\n"}, "h07 change")
    failed = world.tick("h07")
    assert failed.returncode == ExitCode.ATTENTION, failed.stderr
    assert "service app failed" in failed.stderr
    broken = world.fleet("--json")
    assert broken.returncode == ExitCode.ATTENTION
    rows = {h["host"]: h for h in json.loads(broken.stdout)["hosts"]}
    assert rows["h07"]["ready"] is False and rows["h07"]["pending_services"] == ["app"]
    assert all(rows[h]["ready"] for h in HOSTS if h != "h07")
    assert all(rows[h]["behind"] == 1 for h in HOSTS if h != "h07")  # behind is still Ready
    text = world.fleet()
    assert text.returncode == ExitCode.ATTENTION
    assert any(x.startswith("h07 ") and "NotReady" in x for x in text.stdout.splitlines())


def test_twenty_concurrent_captures_all_land(world: World) -> None:
    hosts = HOSTS[:20]
    ticks = world.each(hosts, world.tick, 8)
    assert {h: r.returncode for h, r in ticks.items()} == dict.fromkeys(hosts, ExitCode.OK)
    for host in hosts:
        (world.home(host) / "own.conf").write_text(f"host = {host}\nedited = yes\n")
    before = refs_of(world.bare, "refs/tether/status/")
    done = world.each(hosts, world.capture, 20)  # all at once: they race for the branch
    codes = {h: r.returncode for h, r in done.items()}
    assert codes == dict.fromkeys(hosts, ExitCode.OK), {h: done[h].stderr for h in hosts}
    raced = sum(r.stderr.count("moved on during the push") for r in done.values())
    head = ref_of(world.bare, "refs/heads/main")
    assert head is not None
    shown = subprocess.run(
        ["git", "--git-dir", str(world.bare), "log", "--format=%H", "main"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(shown) == 1 + 20  # the first commit and one capture per host: none lost
    for host in hosts:
        blob = subprocess.run(
            ["git", "--git-dir", str(world.bare), "show", f"main:hosts/{host}/configs/own.conf"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert blob == f"host = {host}\nedited = yes\n"
    after = refs_of(world.bare, "refs/tether/status/")
    assert sorted(after) == sorted(f"refs/tether/status/{h}" for h in hosts)
    assert all(after[r] != before[r] for r in after)  # every capture reported
    print(f"20 concurrent captures: {raced} lost races retried")
