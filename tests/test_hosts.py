"""Host profiles (`hosts:`), choosing the host, and per-host overlays (issue 17)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from dulwich.objects import Commit
from dulwich.repo import Repo

from testing.gitrepos import commit, init_bare
from testing.reconcile import Site, make_site
from tether.cli import main
from tether.config.configrepo import open_config_repo
from tether.config.sourcetree import FolderTree
from tether.exitcodes import ExitCode

FLEET = """\
version: 1
target:
  home: /home/demo
services:
  - name: traefik
    paths: ["traefik/**"]
  - name: pihole
    paths: ["pihole/**"]
hosts:
  nas:
    exclude: ["pihole/**"]
    services: [traefik]
  pi:
    home: /home/pi
    include: ["pihole/**", ".bashrc"]
    inventory: [hosts/pi/include-paths.txt]
    services: [pihole]
"""
FILES = {
    ".bashrc": "alias ll='ls -l'\n",
    "traefik/traefik.yml": "entryPoints: {}\n",
    "pihole/pihole.toml": "[dns]\nupstreams = ['9.9.9.9']\n",
}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    made = make_site(tmp_path, FILES, manifest=FLEET)
    (made.repo / "hosts" / "pi").mkdir(parents=True)
    (made.repo / "hosts" / "pi" / "include-paths.txt").write_text("pi-only.conf\n")
    made.set_source("pi-only.conf", "only on the pi\n")
    overlay = made.repo / "hosts" / "pi" / "configs" / ".bashrc"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("alias ll='ls -la'  # the pi's own\n")
    return made


def _files(site: Site, *args: str) -> dict[str, tuple[str, str]]:
    result = site.reconcile("--json", *args)
    assert result.code == ExitCode.OK, result.err
    return {f["path"]: (f["layer"], f["dest"]) for f in result.json()["files"]}


def test_each_host_plans_only_its_profile_and_overlay(site: Site) -> None:
    nas = _files(site, "--host", "nas")
    assert sorted(nas) == [".bashrc", "traefik/traefik.yml"]
    assert {layer for layer, _ in nas.values()} == {"shared"}
    pi = _files(site, "--host", "pi")
    assert sorted(pi) == [".bashrc", "pi-only.conf", "pihole/pihole.toml"]
    assert pi[".bashrc"][0] == "host" and pi["pihole/pihole.toml"][0] == "shared"
    assert pi[".bashrc"][1] == str(site.root / "home/pi/.bashrc")  # the profile's home


def test_apply_writes_the_hosts_overlay(site: Site) -> None:
    result = site.reconcile("--apply", "--host", "pi")
    assert result.code == ExitCode.OK, result.err
    assert "host pi" in result.out
    assert (site.root / "home/pi/.bashrc").read_text().endswith("# the pi's own\n")
    assert not (site.root / "home/pi/traefik").exists()


def test_tether_host_env_and_short_hostname_choose_the_host(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_HOST", "nas")
    assert sorted(_files(site)) == [".bashrc", "traefik/traefik.yml"]
    monkeypatch.delenv("TETHER_HOST")
    monkeypatch.setattr(socket, "gethostname", lambda: "pi.lan")
    assert "pi-only.conf" in _files(site)


def test_unknown_host_is_a_usage_error_listing_the_known_ones(site: Site) -> None:
    result = site.reconcile("--host", "vps")
    assert result.code == ExitCode.USAGE
    assert "host 'vps' is not in hosts:" in result.err and "known: nas, pi" in result.err
    assert "Traceback" not in result.err


def test_a_repo_without_hosts_ignores_the_host(tmp_path: Path) -> None:
    plain = make_site(tmp_path, FILES)
    result = plain.reconcile("--json", "--host", "anything")
    assert result.code == ExitCode.OK, result.err
    assert len(result.json()["files"]) == 3
    assert result.json()["source"]["host"] is None


def test_validate_checks_every_host(site: Site) -> None:
    result = site.tether("validate", str(site.repo))
    assert result.code == ExitCode.OK, result.out + result.err
    text = (site.repo / "tether.yaml").read_text()
    text = text.replace("services: [pihole]", "services: [pihole, dns]")
    text = text.replace('include: ["pihole/**", ".bashrc"]', 'include: ["nothing/**"]')
    text = text.replace("inventory: [hosts/pi/include-paths.txt]", "inventory: []")
    (site.repo / "tether.yaml").write_text(text + "files:\n  .bashrc:\n    hosts: [vps]\n")
    (site.repo / "hosts" / "old" / "configs").mkdir(parents=True)
    (site.repo / "hosts" / "old" / "configs" / "x").write_text("x\n")
    result = site.tether("validate", str(site.repo))
    assert result.code == ExitCode.ERROR
    out = result.err
    assert "error: host 'pi': unknown service 'dns'" in out
    assert "error: host 'pi' selects no tracked path" in out
    assert "error: files: '.bashrc' names unknown host 'vps'" in out
    assert "warning: overlay of host 'old', not in hosts:" in out
    assert "host 'pi' does not track '.bashrc': this overlay is never used" in out
    only_nas = site.tether("validate", str(site.repo), "--host", "nas")
    assert "selects no tracked path" not in only_nas.err


def test_secrets_list_reads_the_hosts_view(site: Site) -> None:
    site.set_source("pihole/pihole.toml", "password = __REDACTED_PIHOLE_PW__\n")
    pi = site.tether("secrets", "list", "--source", str(site.repo), "--host", "pi")
    nas = site.tether("secrets", "list", "--source", str(site.repo), "--host", "nas")
    assert "PIHOLE_PW" in pi.out and "PIHOLE_PW" not in nas.out


class Fleet:
    """A bare remote with two host profiles; each host has its own root and state dir."""

    MANIFEST = (
        "version: 1\ntarget:\n  home: /home/u\nhosts:\n  nas: {}\n  pi:\n    home: /home/pi\n"
    )

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.remote = init_bare(tmp / "remote.git")
        commit(
            self.remote,
            {
                "tether.yaml": self.MANIFEST.encode(),
                "inventory/include-paths.txt": b"app.conf\nshared.conf\n",
                "configs/app.conf": b"port = 80\n",
                "configs/shared.conf": b"shared = 1\n",
                "hosts/pi/configs/app.conf": b"port = 8080\n",
            },
            "init",
        )

    def args(self, host: str) -> list[str]:
        return [
            "--repo", str(self.remote), "--host", host,
            "--target-root", str(self.tmp / host), "--state-dir", str(self.tmp / f"{host}.state"),
            "--secrets-file", str(self.tmp / f"{host}.env"),
        ]  # fmt: skip

    def run(self, command: str, host: str, *extra: str) -> int:
        (self.tmp / host).mkdir(exist_ok=True)
        return main([command, *extra, *self.args(host)])

    def home(self, host: str) -> Path:
        return self.tmp / host / "home" / ("pi" if host == "pi" else "u")

    def tip(self) -> dict[str, bytes]:
        with Repo(str(self.remote)) as repo:
            head = repo[repo.refs[b"refs/heads/main"]]
            assert isinstance(head, Commit)
            return {
                e.path.decode(): repo[e.sha].as_raw_string()
                for e in repo.object_store.iter_tree_contents(head.tree)
                if e.path is not None and e.sha is not None
            }


def test_capture_writes_each_change_back_to_its_layer(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    for host in ("nas", "pi"):
        assert fleet.run("reconcile", host, "--apply") == ExitCode.OK
    assert (fleet.home("pi") / "app.conf").read_bytes() == b"port = 8080\n"
    assert (fleet.home("nas") / "app.conf").read_bytes() == b"port = 80\n"
    (fleet.home("pi") / "app.conf").write_text("port = 9090\n")
    (fleet.home("pi") / "shared.conf").write_text("shared = 2\n")
    assert fleet.run("capture", "pi") == ExitCode.OK
    tip = fleet.tip()
    assert tip["hosts/pi/configs/app.conf"] == b"port = 9090\n"  # the pi's own layer
    assert tip["configs/app.conf"] == b"port = 80\n"  # the nas's copy untouched
    assert tip["configs/shared.conf"] == b"shared = 2\n"  # shared: everyone's


def test_capture_to_host_moves_a_shared_file_into_the_overlay(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    assert fleet.run("reconcile", "nas", "--apply") == ExitCode.OK
    (fleet.home("nas") / "shared.conf").write_text("shared = nas only\n")
    assert fleet.run("capture", "nas", "--to-host", "shared.conf") == ExitCode.OK
    tip = fleet.tip()
    assert tip["hosts/nas/configs/shared.conf"] == b"shared = nas only\n"
    assert tip["configs/shared.conf"] == b"shared = 1\n"
    assert fleet.run("reconcile", "nas", "--detailed-exitcode") == ExitCode.OK  # in sync
    # unchanged on the host: still moved (the stat cache does not hide it)
    assert fleet.run("reconcile", "pi", "--apply") == ExitCode.OK
    assert fleet.run("capture", "pi", "--to-host", "shared.conf") == ExitCode.OK
    assert fleet.tip()["hosts/pi/configs/shared.conf"] == b"shared = 1\n"


def test_capture_to_host_refuses_an_untracked_path_and_a_repo_without_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = Fleet(tmp_path)
    assert fleet.run("capture", "nas", "--to-host", "nope.conf") == ExitCode.USAGE
    assert "--to-host nope.conf: not a file host 'nas' captures" in capsys.readouterr().err


def test_a_profile_sets_the_store_and_the_services_its_host_sees(tmp_path: Path) -> None:
    manifest = FLEET.replace(
        "    services: [pihole]\n",
        "    services: [pihole]\n    secrets:\n      file: /etc/pi.env\n",
    )
    made = make_site(tmp_path, FILES, manifest=manifest)
    (made.repo / "hosts" / "pi").mkdir(parents=True)
    (made.repo / "hosts" / "pi" / "include-paths.txt").write_text("")
    shared = open_config_repo(FolderTree(made.repo), shared=True)
    pi, nas = shared.for_host("pi"), shared.for_host("nas")
    assert pi.manifest.secrets_file == "/etc/pi.env" and pi.manifest.target_home == "/home/pi"
    assert nas.manifest.secrets_file == shared.manifest.secrets_file
    assert [s.name for s in pi.manifest.services] == ["pihole"]
    assert [s.name for s in nas.manifest.services] == ["traefik"]
    assert [s.name for s in shared.manifest.services] == ["traefik", "pihole"]
