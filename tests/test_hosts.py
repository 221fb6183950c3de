"""Host profiles (`hosts:`), choosing the host, and per-host overlays (issue 17)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from testing.reconcile import Site, make_site
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
