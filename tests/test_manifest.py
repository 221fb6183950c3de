from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tether.config.manifest import load_manifest, load_schema, parse_manifest, schema_path
from tether.config.yamlload import load_yaml
from tether.errors import ManifestError

ROOT = Path(__file__).resolve().parents[1]

FULL = """\
version: 1
target:
  home: /home/anas
  root: /host
source: configs
inventory: inventory/include-paths.txt
secrets:
  file: ~/.homelab-secrets.env
  map:
    homepage/config/services.yaml:
      key: HOMEPAGE_TAUTULLI_KEY
files:
  authentik/.env:
    mode: "0600"
    owner: "1000"
    group: "1000"
  "**/*.env":
    mode: "0640"
    dir_mode: "0750"
  pihole/etc-pihole/pihole.toml:
    dest: /etc/pihole/pihole.toml
    hosts: [homelab, on]
    capture: false
  plex/big.db:
    allow_binary: true
    max_size: 5000000
services:
  - name: traefik
    paths: ["traefik/**"]
    on_change: ["docker compose -f ~/traefik/docker-compose.yml up -d"]
  - name: authentik
    paths: ["authentik/**"]
    after: [traefik]
capture:
  remote: git@example.com:me/homelab.git
  branch: main
  author: tether <tether@homelab>
  message: "backup: {time}"
  max_file_size: 2048
snapshots:
  tag: snapshot/{date}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "tether.yaml")
    return caught.value.problems


def test_every_field_is_read() -> None:
    m = parse_manifest(FULL)
    assert (m.target_home, m.target_root, m.source) == ("/home/anas", "/host", "configs")
    assert m.secrets_file == "~/.homelab-secrets.env"
    assert m.secret_names_for("homepage/config/services.yaml") == {"key": "HOMEPAGE_TAUTULLI_KEY"}
    env = m.override_for("authentik/.env")
    # the exact path wins over the glob, the glob's dir_mode still applies
    assert (env.mode, env.dir_mode, env.owner, env.group) == (0o600, 0o750, "1000", "1000")
    assert m.override_for("x/y.env").mode == 0o640
    pihole = m.override_for("pihole/etc-pihole/pihole.toml")
    assert pihole.dest == "/etc/pihole/pihole.toml"
    assert pihole.hosts == ("homelab", "on")  # `on` stays a string
    assert pihole.capture is False
    big = m.override_for("plex/big.db")
    assert (big.allow_binary, big.max_size) == (True, 5000000)
    assert [s.name for s in m.services] == ["traefik", "authentik"]
    assert m.services[1].after == ("traefik",)
    assert m.services[0].on_change == ("docker compose -f ~/traefik/docker-compose.yml up -d",)
    assert m.capture.remote == "git@example.com:me/homelab.git"
    assert (m.capture.author, m.capture.message, m.capture.max_file_size) == (
        "tether <tether@homelab>",
        "backup: {time}",
        2048,
    )
    assert m.snapshot_tag == "snapshot/{date}"


def test_defaults() -> None:
    m = parse_manifest("version: 1\ntarget: {home: /home/x/}\n")
    assert (m.target_home, m.target_root, m.source, m.inventory) == (
        "/home/x",
        None,
        "configs",
        "inventory/include-paths.txt",
    )
    assert m.capture.branch == "main" and m.capture.max_file_size == 1024 * 1024
    assert m.override_for("a").mode is None


def test_broken_yaml_names_line_and_column() -> None:
    (line,) = problems("version: 1\ntarget:\n  home: [unclosed\n")
    assert line.startswith("tether.yaml:4:1: ") or line.startswith("tether.yaml:3:")


def test_a_nul_byte_is_one_line_at_its_place() -> None:
    (line,) = problems("version: 1\ntarget:\n  home: /h\x00me\n")
    assert line == "tether.yaml:3:11: character U+0000 is not allowed in YAML; remove it"


@pytest.mark.parametrize(
    ("nested", "place"),
    [
        ("x: " + "[" * 5000, "2:67"),  # the composer's own recursion would overflow
        ("x: " + "[" * 65 + "]" * 65, "2:67"),  # valid YAML, but deeper than any config
        (
            "x:\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(1, 70)) + "  " * 70 + "v: 1\n",
            "66:129",
        ),
    ],
)
def test_deep_nesting_is_one_line_at_its_place(nested: str, place: str) -> None:
    (line,) = problems("version: 1\n" + nested + "\n")
    assert line == f"tether.yaml:{place}: nested deeper than 64 levels"


def test_nesting_up_to_the_bound_is_fine() -> None:
    doc = load_yaml("x: " + "[" * 63 + "]" * 63 + "\n")  # the mapping is level 1
    assert doc.data is not None


def test_duplicate_key_is_an_error() -> None:
    (line,) = problems("version: 1\ntarget:\n  home: /a\n  home: /b\n")
    assert line.startswith("tether.yaml:4:3: ") and "duplicate key 'home'" in line


def test_unknown_key_gets_did_you_mean() -> None:
    (line,) = problems("version: 1\ntarget: {home: /a}\nsoruce: configs\n")
    assert line == "tether.yaml:3:1: $.soruce: unknown key 'soruce' (did you mean 'source'?)"


def test_unknown_nested_key_and_all_errors_at_once() -> None:
    text = (
        "version: 2\n"
        "target:\n"
        "  home: relative/path\n"
        "  hme: /x\n"
        "files:\n"
        "  a.yml:\n"
        "    mode: 0644\n"  # an int, not a string: YAML would read it as 644 octal-less
        "    colour: red\n"
        "services:\n"
        "  - name: a\n"
        "    after: b\n"
    )
    found = problems(text)
    assert any(p.startswith("tether.yaml:1:10: $.version:") for p in found)
    assert any(p.startswith("tether.yaml:3:9: $.target.home:") for p in found)
    assert any(p.startswith("tether.yaml:4:3: $.target.hme: unknown key 'hme'") for p in found)
    assert any(
        p.startswith('tether.yaml:7:11: $.files["a.yml"].mode: 420 is not a quoted mode')
        for p in found
    )
    assert any("unknown key 'colour'" in p for p in found)
    assert any(p.startswith("tether.yaml:11:12: $.services[0].after:") for p in found)
    assert len(found) == 6


def test_dates_and_yes_are_not_converted() -> None:
    m = parse_manifest(
        "version: 1\ntarget: {home: /a}\nsnapshots: {tag: 2026-11-22}\ncapture: {branch: yes}\n"
    )
    assert m.snapshot_tag == "2026-11-22"
    assert m.capture.branch == "yes"


def test_glob_cannot_have_a_single_dest() -> None:
    (line,) = problems('version: 1\ntarget: {home: /a}\nfiles:\n  "*.yml": {dest: /etc/x}\n')
    assert "a glob cannot have one destination" in line and line.startswith("tether.yaml:4:")


def test_duplicate_service_names() -> None:
    (line,) = problems("version: 1\ntarget: {home: /a}\nservices:\n  - name: a\n  - name: a\n")
    assert line.startswith("tether.yaml:5:11: ") and "duplicate service 'a'" in line


def test_not_a_mapping() -> None:
    assert problems("- 1\n")[0].startswith("tether.yaml:1:1: $:")
    assert problems("")[0].startswith("tether.yaml:1:1: $:")


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_manifest(tmp_path / "tether.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifest(bad)
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(folder)


def test_schema_is_valid_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    Draft202012Validator.check_schema(schema)


@pytest.mark.slow
def test_the_wheel_ships_the_same_schema_file(tmp_path: Path) -> None:
    """The schema in schema/ is the single source: the built package carries its exact bytes."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tether-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("tether/_data/manifest.schema.json")
    assert shipped == (ROOT / "schema" / "manifest.schema.json").read_bytes()
    assert json.loads(shipped) == load_schema()
    outputs = sorted((ROOT / "schema" / "output").glob("*.json"))
    assert outputs  # the --json schemas ship beside it, byte for byte
    with zipfile.ZipFile(wheel) as archive:
        for path in outputs:
            assert archive.read(f"tether/_data/output/{path.name}") == path.read_bytes()


def test_a_checkout_reads_schema_dir_in_place() -> None:
    assert schema_path().read_bytes() == (ROOT / "schema" / "manifest.schema.json").read_bytes()


def test_an_exact_path_can_set_a_field_back_to_its_default() -> None:
    m = parse_manifest(
        "version: 1\ntarget: {home: /a}\nfiles:\n"
        "  '**/*.db': {capture: false, allow_binary: true}\n"
        "  keep/this.db: {capture: true}\n"
    )
    assert m.override_for("keep/this.db").capture is True
    assert m.override_for("keep/this.db").allow_binary is True
    assert m.override_for("other/x.db").capture is False


def test_unquoted_mode_says_to_quote_it() -> None:
    (line,) = problems("version: 1\ntarget: {home: /a}\nfiles:\n  a.txt: {mode: 0600}\n")
    assert line.startswith('tether.yaml:4:17: $.files["a.txt"].mode: 384 is not a quoted mode')


def test_a_valid_manifest_is_cached_and_read_back(tmp_path: Path) -> None:
    first = parse_manifest(FULL, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("manifest-*.json")
    assert parse_manifest(FULL, cache_dir=tmp_path) == first
    # the cache is keyed on the bytes: an edited manifest is validated again, and errors
    # are never cached
    with pytest.raises(ManifestError):
        parse_manifest(FULL.replace("version: 1", "version: 2"), cache_dir=tmp_path)
    assert list(tmp_path.glob("manifest-*.json")) == [entry]
    # a damaged cache entry is ignored, not trusted
    entry.write_text("{not json")
    assert parse_manifest(FULL, cache_dir=tmp_path) == first
