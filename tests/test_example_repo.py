"""The project root is itself a tether config repo (the demo homelab); keep it honest.

It must open and validate cleanly, every tracked file must parse in its own format both as
committed (placeholders) and once filled from examples/secrets.env, and every value must land
byte for byte, including the ones that break sed-based rehydration.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.config.checks import check_config_repo, service_cycle
from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.inventory import matches
from tether.config.sourcetree import FolderTree
from tether.secrets.render import BARE, PLACEHOLDER, render
from tether.secrets.store import load_store, parse_dotenv

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "examples" / "secrets.env"
PLEX_PREFS = "plex/config/Library/Application Support/Plex Media Server/Preferences.xml"
PEM = re.compile(
    r"-----BEGIN (?P<label>[A-Z ]+)-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END (?P=label)-----\n\Z"
)


def _repo() -> ConfigRepo:
    return open_config_repo(FolderTree(ROOT), host="homelab")  # the host with every file


REPO = _repo()
TRACKED = REPO.tracked_paths
VALUES = parse_dotenv(STORE.read_text(encoding="utf-8"), str(STORE))


def _raw(path: str) -> bytes:
    return REPO.tree.read_bytes(REPO.source_path(path))


def _rendered(path: str) -> bytes:
    result = render(_raw(path), VALUES.get, REPO.manifest.secret_names_for(path))
    assert result.data is not None, f"{path}: missing {result.missing}"
    assert result.data is not None
    return result.data


class _HomeAssistantLoader(yaml.SafeLoader):
    """Safe YAML plus Home Assistant's `!secret name` references."""


def _secret_reference(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, str]:
    assert isinstance(node, yaml.ScalarNode)
    return ("!secret", loader.construct_scalar(node))


_HomeAssistantLoader.add_constructor("!secret", _secret_reference)


def parse(path: str, data: bytes, *, filled: bool) -> Any:
    """Parse `data` as the format its name says; fail on anything unknown."""
    text = data.decode("utf-8")
    suffix = Path(path).suffix or Path(path).name
    if suffix in (".yml", ".yaml"):
        return yaml.load(text, Loader=_HomeAssistantLoader)  # a SafeLoader subclass
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix == ".ini":
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.read_string(text, source=path)
        return parser
    if suffix == ".xml":
        return ET.fromstring(data)
    if suffix == ".json":
        return json.loads(text)
    if suffix == ".env":
        return parse_dotenv(text, path)
    if suffix in (".crt", ".key"):
        if filled:
            match = PEM.match(text)
            assert match, f"{path}: not a PEM block once filled"
            return match["label"]
        assert PLACEHOLDER.fullmatch(data.rstrip(b"\n")), f"{path}: should be one placeholder"
        return None
    raise AssertionError(f"{path}: no parser for this format; add one to this test")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


# -- the repo as a whole ------------------------------------------------------------------


def test_root_opens_as_a_config_repo() -> None:
    manifest = REPO.manifest
    assert manifest.target_home == "/home/demo"
    assert manifest.source == "configs"
    assert manifest.inventory == "inventory/include-paths.txt"
    assert manifest.secrets_file == "~/.config/tether/secrets.env"
    assert manifest.capture.branch == "main"
    assert manifest.snapshot_tag == "snapshot/{date}"
    # The glob picked up every dynamic route file; the path with spaces is one entry.
    assert {"traefik/dynamic/tls.yaml", "traefik/dynamic/authentik.yaml"} <= set(TRACKED)
    assert PLEX_PREFS in TRACKED


def test_validate_reports_nothing() -> None:
    findings = check_config_repo(FolderTree(ROOT))
    assert [f for f in findings if f.level in ("error", "warning")] == []


def test_every_file_under_configs_is_tracked_and_present() -> None:
    assert sorted(REPO.source_files) == TRACKED


def test_inventory_uses_comments_blanks_globs_and_spaces() -> None:
    lines = (ROOT / REPO.manifest.inventory).read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("#") for line in lines)
    assert "" in lines
    assert "traefik/dynamic/*.yaml" in lines
    assert PLEX_PREFS in lines
    assert REPO.inventory.warnings == ()


def test_overrides_and_secret_names_apply_where_meant() -> None:
    manifest = REPO.manifest
    env = manifest.override_for("authentik/.env")
    assert (env.mode, env.dir_mode) == (0o600, 0o750)
    key = manifest.override_for("traefik/dynamic/certs/homelab.key")
    assert (key.mode, key.capture) == (0o600, False)
    assert manifest.override_for("traefik/dynamic/certs/homelab.crt").mode is None
    assert manifest.override_for("arrstack/docker-compose.yml").mode is None
    assert manifest.override_for(PLEX_PREFS).max_size == 262144
    # No override in the demo needs root or points outside the target home.
    assert all(o.dest is None and o.owner is None and o.group is None for o in manifest.files)
    assert all(not o.hosts for o in manifest.files)
    assert manifest.secret_names_for("tautulli/config/config.ini") == {
        "jwt_secret": "TAUTULLI_JWT_SECRET"
    }
    assert manifest.secret_names_for("homepage/config/services.yaml") == {}


def test_services_cover_every_file_in_a_valid_order() -> None:
    services = REPO.manifest.services
    assert service_cycle(services) is None
    position = {s.name: i for i, s in enumerate(services)}
    for service in services:
        assert all(position[dep] < position[service.name] for dep in service.after)
        assert service.on_change, f"{service.name}: no on_change command"
    assert services[0].name == "traefik"
    assert set(next(s for s in services if s.name == "homepage").after) == {"traefik", "arrstack"}
    for path in TRACKED:
        owners = [s.name for s in services if any(matches(g, path) for g in s.paths)]
        assert len(owners) == 1, f"{path}: owned by {owners}"


# -- every tracked file, as committed and as filled ---------------------------------------


@pytest.mark.parametrize("path", TRACKED)
def test_tracked_file_parses_as_committed(path: str) -> None:
    parse(path, _raw(path), filled=False)


@pytest.mark.parametrize("path", TRACKED)
def test_tracked_file_fills_completely_and_still_parses(path: str) -> None:
    data = _rendered(path)
    assert b"REDACTED" not in data
    parse(path, data, filled=True)


def test_exactly_one_bare_redacted_and_it_is_mapped() -> None:
    hits = [(p, m.start()) for p in TRACKED for m in BARE.finditer(_raw(p))]
    assert len(hits) == 1
    path, _ = hits[0]
    assert path == "tautulli/config/config.ini"
    rendered = parse(path, _rendered(path), filled=True)
    assert rendered["General"]["jwt_secret"] == VALUES["TAUTULLI_JWT_SECRET"]


def test_store_names_every_placeholder_and_nothing_else() -> None:
    used: set[str] = set()
    for path in TRACKED:
        used.update(m["name"].decode() for m in PLACEHOLDER.finditer(_raw(path)))
        used.update(REPO.manifest.secret_names_for(path).values())
    assert used == set(VALUES)


def test_store_holds_values_that_break_sed() -> None:
    everything = "".join(VALUES.values())
    for char in "&/|\\$'\"":
        assert char in everything, f"no demo value holds {char!r}"
    assert any("\n" in v for v in VALUES.values())
    for name, value in VALUES.items():  # obviously fake, PEM bodies included
        text = value.lower() if "\n" not in value else _pem_text(value)
        assert "demo" in text, f"{name}: not obviously a demo value"


def _pem_text(value: str) -> str:
    body = "".join(value.splitlines()[1:-1])
    return base64.b64decode(body).decode("utf-8").lower()


def test_store_loads_through_the_real_reader_from_a_private_copy(tmp_path: Path) -> None:
    private = tmp_path / "secrets.env"
    shutil.copyfile(STORE, private)
    private.chmod(0o600)
    store = load_store(private, environ={})
    assert {name: store.get(name) for name in store} == VALUES


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_shell_reads_the_store_as_tether_does() -> None:
    script = 'set -a; . "$1"; for n in "${@:2}"; do printf "%s\\0" "${!n}"; done'
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(STORE), *VALUES],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        check=True,
    ).stdout
    assert out.decode("utf-8").split("\0")[:-1] == list(VALUES.values())


# -- each value lands byte for byte, where the format would notice a slip ----------------


def test_values_land_exactly_in_every_format() -> None:
    ini = parse("x.ini", _rendered("tautulli/config/config.ini"), filled=True)
    assert ini["General"]["http_password"] == VALUES["TAUTULLI_HTTP_PASSWORD"]
    assert ini["PMS"]["pms_token"] == VALUES["TAUTULLI_PMS_TOKEN"]

    toml = tomllib.loads(_rendered("pihole/etc-pihole/pihole.toml").decode())
    api = toml["webserver"]["api"]
    assert api["pwhash"] == VALUES["PIHOLE_PWHASH"]
    assert api["totp_secret"] == VALUES["PIHOLE_TOTP_SECRET"]

    prefs = ET.fromstring(_rendered(PLEX_PREFS)).attrib
    assert prefs["PlexOnlineToken"] == VALUES["PLEX_ONLINE_TOKEN"]
    assert prefs["PlexOnlineMail"] == VALUES["PLEX_ONLINE_MAIL"]

    env = parse_dotenv(_rendered("authentik/.env").decode(), "authentik/.env")
    assert env["AUTHENTIK_BOOTSTRAP_PASSWORD"] == VALUES["AUTHENTIK_BOOTSTRAP_PASSWORD"]
    assert env["PG_PASS"] == VALUES["AUTHENTIK_PG_PASS"]

    arr = yaml.safe_load(_rendered("arrstack/docker-compose.yml"))
    gluetun = arr["services"]["gluetun"]["environment"]
    assert gluetun["WIREGUARD_PRIVATE_KEY"] == VALUES["ARRSTACK_WIREGUARD_PRIVATE_KEY"]
    radarr = arr["services"]["radarr"]["environment"]
    assert f"RADARR__AUTH__APIKEY={VALUES['ARRSTACK_RADARR_API_KEY']}" in radarr

    key = _rendered("traefik/dynamic/certs/homelab.key").decode()
    assert key == VALUES["TRAEFIK_TLS_KEY"] + "\n"


def test_ordinary_values_are_not_placeholders() -> None:
    ini = parse("x.ini", _raw("tautulli/config/config.ini"), filled=False)
    for flag in ("http_hash_password", "http_hashed_password", "jwt_update_secret"):
        assert ini["General"][flag] == "0"
    toml = tomllib.loads(_raw("pihole/etc-pihole/pihole.toml").decode())
    assert toml["webserver"]["api"]["max_sessions"] == 16
    prefs = ET.fromstring(_raw(PLEX_PREFS)).attrib
    assert prefs["FriendlyName"] == "homelab"
    assert prefs["ManualPortMappingPort"] == "32400"


def test_plex_preferences_is_one_element_on_one_line() -> None:
    lines = _raw(PLEX_PREFS).decode().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("<?xml ")
    assert lines[1].startswith("<Preferences ") and lines[1].endswith("/>")
    attributes = ET.fromstring(_raw(PLEX_PREFS)).attrib
    assert {"PlexOnlineToken", "PlexOnlineUsername", "PlexOnlineMail"} <= set(attributes)


def test_compose_interpolations_and_home_assistant_references_stay() -> None:
    compose = _rendered("authentik/docker-compose.yml").decode()
    assert compose == _raw("authentik/docker-compose.yml").decode()
    for reference in ("${PG_PASS:?", "${PG_PASS}", "${AUTHENTIK_SECRET_KEY:?", "$${POSTGRES_DB}"):
        assert reference in compose
    config = parse(
        "configuration.yaml", _rendered("homeassistant/config/configuration.yaml"), filled=True
    )
    assert config["recorder"]["db_url"] == ("!secret", "recorder_db_url")


def test_homepage_widgets_never_share_a_secret() -> None:
    groups = yaml.safe_load(_raw("homepage/config/services.yaml"))
    owner: dict[str, str] = {}
    with_credentials = 0
    for group in groups:
        for entries in group.values():
            for entry in entries:
                for service, spec in entry.items():
                    names = {
                        m["name"].decode()
                        for text in _strings(spec.get("widget", {}))
                        for m in PLACEHOLDER.finditer(text.encode())
                    }
                    with_credentials += bool(names)
                    for name in names:
                        assert name not in owner, f"{service} and {owner[name]} share {name}"
                        owner[name] = service
    assert with_credentials >= 8
    assert {"HOMEPAGE_QBITTORRENT_USERNAME", "HOMEPAGE_QBITTORRENT_PASSWORD"} <= set(owner)
    # ...and the values differ too, so a cross-wired widget would show in the demo.
    widget_values = [VALUES[name] for name in owner]
    assert len(set(widget_values)) == len(widget_values)
