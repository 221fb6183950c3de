"""Redaction: properties on generated files of every format, and the article's bugs as examples."""

from __future__ import annotations

import configparser
import json
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tether.secrets.redact import redact, redact_files
from tether.secrets.render import render
from tether.secrets.rules import is_reference
from tether.secrets.store import parse_dotenv

# --- generated files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    path: str
    text: str
    planted: tuple[str, ...]  # the secret values, as characters in the file


class _TagLoader(yaml.SafeLoader):
    """Safe loading that accepts Home Assistant's `!secret name` and other local tags."""


_TagLoader.add_multi_constructor("!", lambda loader, _suffix, node: loader.construct_scalar(node))


def _parse_yaml(text: str) -> object:
    return list(yaml.load_all(text, Loader=_TagLoader))  # a SafeLoader subclass


def _parse_ini(text: str) -> object:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return {s: dict(parser[s]) for s in parser.sections()}


PARSERS: dict[str, Callable[[str], object]] = {
    "yaml": _parse_yaml,
    "json": json.loads,
    "toml": tomllib.loads,
    "ini": _parse_ini,
    "xml": ET.fromstring,
    "env": lambda text: parse_dotenv(text, "x.env"),
    "text": lambda text: text,
}

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SECRET_KEYS = [
    "password", "DB_PASSWORD", "apiKey", "api-key", "client.secret", "PlexOnlineToken",
    "AUTH_TOKEN", "private_key", "PG_PASS", "credentials", "pwhash", "ApiKey", "WEBPASSWORD",
]  # fmt: skip
PLAIN_KEYS = ["LOG_LEVEL", "url", "token_expiry", "username", "enabled", "timezone"]


def _value(extra: str, *, escapes: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """A plausible secret: starts and ends alphanumeric, holds `extra` characters and escapes."""
    middle = st.lists(st.sampled_from(list(ALNUM + extra) + list(escapes)), min_size=6, max_size=30)
    edge = st.sampled_from(list(ALNUM))
    return st.builds(lambda a, m, b: a + "".join(m) + b, edge, middle, edge).filter(
        lambda v: not is_reference(v) and any(c.isalpha() for c in v) and "REDACTED" not in v
    )


def _keys(draw: st.DrawFn, n: int) -> list[str]:
    return [f"k{i}_{draw(st.sampled_from(SECRET_KEYS))}" for i in range(n)]


# A bare REDACTED is a placeholder by contract (docs/secrets.md), so plain values never hold one.
FILLER = (
    st.text(ALNUM + " ", min_size=1, max_size=12)
    .map(str.strip)
    .filter(lambda v: bool(v) and "REDACTED" not in v)
)


@st.composite
def yaml_docs(draw: st.DrawFn) -> Doc:
    lines, planted = ["app:", "  settings:"], []
    for i, key in enumerate(_keys(draw, draw(st.integers(1, 4)))):
        style = draw(st.sampled_from(["plain", "double", "single", "block"]))
        if style == "plain":
            value = draw(_value("&/|\\$_.+=@%!-"))
            lines.append(f"    {key}: {value}")
        elif style == "double":
            value = draw(_value("&/|$#:' ", escapes=("\\\\", '\\"')))
            lines.append(f'    {key}: "{value}"  # trailing comment')
        elif style == "single":
            value = draw(_value('&/|$#:"\\ ', escapes=("''",)))
            lines.append(f"    {key}: '{value}'")
        else:
            body = [draw(_value("+/=")) for _ in range(draw(st.integers(1, 3)))]
            value = "\n      ".join(body)
            lines += [f"    {key}: |", *(f"      {b}" for b in body)]
        planted.append(value)
        lines.append(f"    {PLAIN_KEYS[i % len(PLAIN_KEYS)]}: {draw(FILLER)}")
    lines += ["    ref_password: ${DB_PASSWORD}", '    empty_token: ""', "    api_key: !secret ha"]
    return Doc("svc/config.yaml", "\n".join(lines) + "\n", tuple(planted))


@st.composite
def compose_docs(draw: st.DrawFn) -> Doc:
    lines = ["services:", "  app:", "    image: nginx:1.27", "    environment:"]
    planted: list[str] = []
    list_style = draw(st.booleans())
    for key in _keys(draw, draw(st.integers(1, 4))):
        env_key = key.upper().replace("-", "_").replace(".", "_")
        if list_style:
            if draw(st.booleans()):
                value = draw(_value("&/|$_.+=@%!-"))
                lines.append(f"      - {env_key}={value}")
            else:
                value = draw(_value("&/|$#:' "))
                lines.append(f'      - "{env_key}={value}"')
        else:
            value = draw(_value("&/|$_.+=@%!-"))
            lines.append(f"      {env_key}: {value}")
        planted.append(value)
    if list_style:
        lines += ["      - LOG_LEVEL=info", "      - DB_PASSWORD_FILE=/run/secrets/db"]
    else:
        lines += ["      LOG_LEVEL: info", "      POSTGRES_PASSWORD: ${PG_PASS}"]
    return Doc("svc/docker-compose.yml", "\n".join(lines) + "\n", tuple(planted))


@st.composite
def json_docs(draw: st.DrawFn) -> Doc:
    keys = _keys(draw, draw(st.integers(1, 4)))
    values = [draw(_value("&/|$#:' <>", escapes=("\\\\", '\\"', "\\n", "\\u00e9"))) for _ in keys]
    items = [f'"{k}": "{v}"' for k, v in zip(keys, values, strict=True)]
    items += ['"name": "demo"', '"port": 8080', '"password": ""']
    indent = draw(st.sampled_from(["", "\n  "]))
    text = "{" + indent + ("," + indent).join(items) + ("\n" if indent else "") + "}\n"
    return Doc("svc/settings.json", text, tuple(values))


@st.composite
def toml_docs(draw: st.DrawFn) -> Doc:
    lines, planted = ["[server]", 'name = "demo"', "port = 8080"], []
    for key in _keys(draw, draw(st.integers(1, 4))):
        bare = key.replace(".", "_")
        style = draw(st.sampled_from(["basic", "literal", "multi"]))
        if style == "basic":
            value = draw(_value("&/|$#:' ", escapes=("\\\\", '\\"', "\\n")))
            lines.append(f'{bare} = "{value}" # comment')
        elif style == "literal":
            value = draw(_value('&/|$#:"\\ '))
            lines.append(f"{bare} = '{value}'")
        else:
            value = draw(_value("&/|$#:' \n"))
            lines.append(f'{bare} = """\n{value}"""')
        planted.append(value)
    lines += ['totp_secret = ""', "http_hash_password = 0"]
    return Doc("svc/app.toml", "\n".join(lines) + "\n", tuple(planted))


@st.composite
def ini_docs(draw: st.DrawFn) -> Doc:
    lines, planted = ["[General]", "http_port = 8181", "http_hash_password = 0"], []
    for key in _keys(draw, draw(st.integers(1, 4))):
        value = draw(_value("&/|$:'\"\\!@%"))
        if draw(st.booleans()):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
        planted.append(value)
    lines += ['http_username = ""', "jwt_update_secret = 0"]
    return Doc("svc/config.ini", "\n".join(lines) + "\n", tuple(planted))


@st.composite
def xml_docs(draw: st.DrawFn) -> Doc:
    attrs, elements, planted = ['MachineIdentifier="abc"'], [], []
    for i, key in enumerate(_keys(draw, draw(st.integers(1, 4)))):
        tag = key.replace("-", "_").replace(".", "_")
        if i % 2 == 0:
            value = draw(_value("/|$#:' ", escapes=("&amp;", "&lt;", "&quot;")))
            attrs.append(f'{tag}="{value}"')
        else:
            value = draw(_value("/|$#:'\" >", escapes=("&amp;", "&lt;")))
            elements.append(f"<{tag}>{value}</{tag}>")
        planted.append(value)
    attrs.append('PublishServerOnPlexOnlineKey="1"')
    text = f'<?xml version="1.0" encoding="utf-8"?>\n<Preferences {" ".join(attrs)}>'
    text += "".join(elements) + "</Preferences>\n"
    return Doc("plex/Preferences.xml", text, tuple(planted))


@st.composite
def env_docs(draw: st.DrawFn) -> Doc:
    lines, planted = ["# authentik", "COMPOSE_PORT_HTTP=9000"], []
    for key in _keys(draw, draw(st.integers(1, 4))):
        name = key.upper().replace("-", "_").replace(".", "_")
        export = draw(st.sampled_from(["", "export "]))
        style = draw(st.sampled_from(["plain", "double", "single"]))
        if style == "plain":
            value = draw(_value("_.+=@%/:,-"))
            lines.append(f"{export}{name}={value} # comment")
        elif style == "double":
            value = draw(_value("&/|#:' ", escapes=('\\"', "\\\\")))
            lines.append(f'{export}{name}="{value}"')
        else:
            value = draw(_value('&/|#:"$\\ \n'))
            lines.append(f"{export}{name}='{value}'")
        planted.append(value)
    lines += ["PASSWORD_FILE=/run/secrets/pw", "SMTP_PASSWORD=${SMTP_APP_PASSWORD}", "EMPTY_TOKEN="]
    return Doc("authentik/.env", "\n".join(lines) + "\n", tuple(planted))


def _token(draw: st.DrawFn) -> str:
    def run(n: int, alphabet: str = ALNUM) -> str:
        return "".join(draw(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n)))

    kind = draw(st.sampled_from(["ghp", "glpat", "akia", "sk", "tskey", "jwt", "age", "tg"]))
    return {
        "ghp": lambda: "ghp_" + run(36),
        "glpat": lambda: "glpat-" + run(20),
        "akia": lambda: "AKIA" + run(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        "sk": lambda: "sk_live_" + run(24),
        "tskey": lambda: "tskey-auth-" + run(30),
        "jwt": lambda: f"eyJ{run(20)}.eyJ{run(20)}.{run(30)}",
        "age": lambda: "AGE-SECRET-KEY-1" + run(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
        "tg": lambda: f"{run(9, '0123456789')}:AA{run(33)}",
    }[kind]()


@st.composite
def text_docs(draw: st.DrawFn) -> Doc:
    lines, planted = ["#!/bin/sh", "set -eu"], []
    for _ in range(draw(st.integers(1, 4))):
        style = draw(st.sampled_from(["bearer", "url", "export"]))
        if style == "bearer":
            value = _token(draw)
            lines.append(f'curl -H "Authorization: Bearer {value}" https://api.example.com/')
        elif style == "url":
            value = draw(_value("-_.~%"))
            lines.append(f"DATABASE_URL=postgresql://app:{value}@db.lan:5432/app")
        else:
            value = draw(_value("&/|#:$\\ "))
            lines.append(f"export API_TOKEN='{value}'")
        planted.append(value)
    lines += ['PASSWORD="$1"', "TOKEN_FILE=/run/secrets/token", "echo 'rotate the password'"]
    return Doc("svc/run.sh", "\n".join(lines) + "\n", tuple(planted))


FORMATS: dict[str, st.SearchStrategy[Doc]] = {
    "yaml": yaml_docs(),
    "compose": compose_docs(),
    "json": json_docs(),
    "toml": toml_docs(),
    "ini": ini_docs(),
    "xml": xml_docs(),
    "env": env_docs(),
    "text": text_docs(),
}
PARSER_OF = {"compose": "yaml"}


def _parses(kind: str, text: str) -> bool:
    try:
        PARSERS[PARSER_OF.get(kind, kind)](text)
    except Exception:
        return False
    return True


def _corrupt(kind: str, text: str, data: st.DataObject) -> str:
    """Maybe break the file: cut it short or drop a character somewhere.

    Not `drop` for .env: `KEY=a# b` is an error for a shell but the value `a# b` for docker
    compose; tether redacts the compose reading (the whole value), which a shell then accepts.
    """
    hows = ["none", "truncate"] if kind == "env" else ["none", "truncate", "drop"]
    how = data.draw(st.sampled_from(hows))
    if how == "none" or len(text) < 4:
        return text
    at = data.draw(st.integers(1, len(text) - 1))
    return text[:at] if how == "truncate" else text[:at] + text[at + 1 :]


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", sorted(FORMATS))
@PROPERTY
@given(data=st.data())
def test_round_trip_parse_idempotent_no_leak(kind: str, data: st.DataObject) -> None:
    doc = data.draw(FORMATS[kind])
    for value in doc.planted:
        assume(value not in doc.text.replace(value, "", 1) or doc.planted.count(value) > 1)
    assert _parses(kind, doc.text), doc.text
    result = redact(doc.text, doc.path)
    store = {s.name: s.value for s in result.secrets}
    assert len(store) == len(result.secrets)  # one name per location
    assert render(result.text.encode(), store.get).data == doc.text.encode()
    assert _parses(kind, result.text), result.text
    assert redact(result.text, doc.path).text == result.text
    for value in doc.planted:
        assert value not in result.text
    assert sorted(store.values()) == sorted(doc.planted)


@pytest.mark.parametrize("kind", sorted(set(FORMATS) - {"env"}))
@PROPERTY
@given(data=st.data())
def test_crlf_files_redact_the_same_values(kind: str, data: st.DataObject) -> None:
    doc = data.draw(FORMATS[kind])
    crlf = doc.text.replace("\n", "\r\n")
    planted = [v.replace("\n", "\r\n") for v in doc.planted]
    result = redact(crlf, doc.path)
    assert sorted(s.value for s in result.secrets) == sorted(planted)
    store = {s.name: s.value for s in result.secrets}
    assert render(result.text.encode(), store.get).data == crlf.encode()
    assert _parses(kind, result.text)
    assert result.text.replace("\r\n", "\n") == redact(doc.text, doc.path).text


@pytest.mark.parametrize("kind", sorted(FORMATS))
@PROPERTY
@given(data=st.data())
def test_parses_iff_original_did(kind: str, data: st.DataObject) -> None:
    doc = data.draw(FORMATS[kind])
    text = _corrupt(kind, doc.text, data)
    result = redact(text, doc.path)
    assert _parses(kind, result.text) == _parses(kind, text)
    store = {s.name: s.value for s in result.secrets}
    assert render(result.text.encode(), store.get).data == text.encode()
    assert redact(result.text, doc.path).text == result.text


@pytest.mark.parametrize(
    "text",
    [
        # hypothesis found it: a block header with its newline dropped is no YAML; redacting the
        # whole `|  value` made it a plain scalar that parses, so the indicator stays in the file
        "a: 1\nk0_DB_PASSWORD: |  s3cr3tVal9\n  line2xyz\nb: 2\n",
        "k0_DB_PASSWORD: >  s3cr3tVal9\n",
        "k0_DB_PASSWORD: %s3cr3tVal9\n",
    ],
)
def test_a_value_no_plain_scalar_may_start_with_stays_unparseable(text: str) -> None:
    assert not _parses("yaml", text)
    redacted, store = _round_trip(text, "app/config.yaml")
    assert not _parses("yaml", redacted), redacted
    assert list(store.values()) == ["s3cr3tVal9"]


@pytest.mark.parametrize(
    "line",
    [
        "PASSWORD=MyStrongLoginPassword",
        "MYSQL_PASSWORD=your_filerun_password",
        "OG_OIDC_SECRET=<YOUR-SECRET>",
        "DB_PASSWORD=change-me-xxxx",
        "API_TOKEN=replace-me",
    ],
)
def test_a_request_to_fill_in_a_value_is_the_value_on_a_live_host(line: str) -> None:
    text = line + "\n"
    assert redact(text, "app/.env").secrets == ()  # an example repo: nothing filled in yet
    live = redact(text, "app/.env", literal=True)
    assert [s.value for s in live.secrets] == [line.split("=", 1)[1]]
    assert render(live.text.encode(), {s.name: s.value for s in live.secrets}.get).data == (
        text.encode()
    )


# --- the article's bugs (homelab_repo.md §5, items 7-17), as examples --------------------------


def _round_trip(text: str, path: str) -> tuple[str, dict[str, str]]:
    result = redact(text, path)
    store = {s.name: s.value for s in result.secrets}
    assert render(result.text.encode(), store.get).data == text.encode()
    assert redact(result.text, path).text == result.text
    return result.text, store


PLEX = (
    '<?xml version="1.0" encoding="utf-8"?>\n<Preferences MachineIdentifier="0a1b" '
    'PlexOnlineToken="Zx9abcDEFghiJKLmnoPQ" PlexOnlineMail="me@example.com" '
    'PlexOnlineUsername="me" PublishServerOnPlexOnlineKey="1"/>\n'
)


def test_single_line_xml_stays_valid_and_whole() -> None:
    text, store = _round_trip(PLEX, "plex/Preferences.xml")
    root = ET.fromstring(text)
    assert root.attrib["PlexOnlineToken"] == "__REDACTED_PLEX_ONLINE_TOKEN__"
    assert root.attrib["PlexOnlineUsername"] == "me"
    assert root.attrib["PublishServerOnPlexOnlineKey"] == "1"
    assert text.endswith("/>\n")
    assert store == {"PLEX_ONLINE_TOKEN": "Zx9abcDEFghiJKLmnoPQ"}


def test_toml_quotes_comments_and_empty_values_kept() -> None:
    original = (
        "# Last updated on 2026-05-09\n[webserver.api]\n"
        '  totp_secret = ""\n'
        '  pwhash = "$BALLOON-SHA256$v=1$s=1024,t=32$c2FsdA==$aGFzaA==" # the hash\n'
        "  app_pwhash = 'literal$hash'\n"
        "  max_sessions = 16\n"
    )
    text, store = _round_trip(original, "pihole/etc-pihole/pihole.toml")
    assert tomllib.loads(text)["webserver"]["api"] == {
        "totp_secret": "",
        "pwhash": "__REDACTED_PIHOLE_PWHASH__",
        "app_pwhash": "__REDACTED_PIHOLE_APP_PWHASH__",
        "max_sessions": 16,
    }
    assert '  pwhash = "__REDACTED_PIHOLE_PWHASH__" # the hash\n' in text
    assert '  totp_secret = ""\n' in text
    assert sorted(store) == ["PIHOLE_APP_PWHASH", "PIHOLE_PWHASH"]


def test_compose_interpolation_empty_and_file_refs_kept() -> None:
    original = (
        "services:\n  server:\n    environment:\n"
        "      AUTHENTIK_SECRET_KEY: ${AUTHENTIK_SECRET_KEY}\n"
        "      AUTHENTIK_POSTGRESQL__PASSWORD: ${PG_PASS}\n"
        '      SMTP_PASSWORD: "${SMTP_APP_PASSWORD}"\n'
        "      FTLCONF_webserver_api_password: ''\n"
        "      DB_PASSWORD_FILE: /run/secrets/db_password\n"
        "      AUTHENTIK_BOOTSTRAP_TOKEN: hunter2hunter2  # set once\n"
    )
    text, store = _round_trip(original, "authentik/docker-compose.yml")
    assert text == original.replace("hunter2hunter2", "__REDACTED_AUTHENTIK_BOOTSTRAP_TOKEN__")
    assert store == {"AUTHENTIK_BOOTSTRAP_TOKEN": "hunter2hunter2"}


def test_look_alike_keys_untouched_and_commented_out_values_redacted() -> None:
    original = (
        "[General]\n"
        "; http_password = commented-out-value\n"
        "http_hash_password = 0\n"
        "http_hashed_password = 1\n"
        "jwt_update_secret = 0\n"
        "token_expiry = 3600\n"
        'http_username = ""\n'
        "api_key = 0123456789abcdef0123456789abcdef\n"
        "http_password = s3cret pass\n"
    )
    text, store = _round_trip(original, "tautulli/config/config.ini")
    assert text.splitlines()[1] == "; http_password = __REDACTED_TAUTULLI_HTTP_PASSWORD_COMMENTED__"
    assert text.splitlines()[2:7] == original.splitlines()[2:7]
    assert store == {
        "TAUTULLI_API_KEY": "0123456789abcdef0123456789abcdef",
        "TAUTULLI_HTTP_PASSWORD": "s3cret pass",
        "TAUTULLI_HTTP_PASSWORD_COMMENTED": "commented-out-value",
    }


def test_key_colon_elsewhere_untouched() -> None:
    original = 'description: "the key: is here"\nmonkey: banana\nkeyboard: us\nkey: abc123xyz\n'
    text, _ = _round_trip(original, "homepage/config/services.yaml")
    assert text.splitlines()[:3] == original.splitlines()[:3]


def test_upper_and_lower_case_keys_alike() -> None:
    original = (
        "POSTGRES_PASSWORD: pgpw12345\nWEBPASSWORD: webpw12345\npostgres_password: x12345678\n"
    )
    text, store = _round_trip(original, "immich/docker-compose.yml")
    assert len(store) == 3
    assert "pgpw" not in text and "webpw" not in text


WG_KEY = "aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Qga2V5MTI="
EC_KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("path", "original", "secret"),
    [
        ("homepage/settings.json", '{"providers": {"finnhub_api_key": "fh123abc"}}', "fh123abc"),
        ("arrstack/radarr/config.xml", "<Config><ApiKey>a1b2c3d4</ApiKey></Config>", "a1b2c3d4"),
        ("vaultwarden/backup-to-nas.sh", 'export ADMIN_TOKEN="tok3n-value"\n', "tok3n-value"),
        ("wireguard/wg0.conf", f"[Peer]\nPresharedKey = {WG_KEY}\n", WG_KEY),
        ("authentik/.env", "PG_PASS=pgpass12345\n", "pgpass12345"),
        ("immich/notes.txt", "DB_URL=postgresql://postgres:pw%40x1@db:5432/immich\n", "pw%40x1"),
        ("traefik/certs/homelab.key", EC_KEY + "\n", EC_KEY + "\n"),  # whole: its exact text
    ],
)
def test_former_false_negatives(path: str, original: str, secret: str) -> None:
    text, store = _round_trip(original, path)
    assert secret not in text
    assert list(store.values()) == [secret]


def test_a_redacted_value_does_not_hide_the_rest_of_its_line() -> None:
    line = '<P PlexOnlineToken="__REDACTED_PLEX_TOKEN__" ApiKey="leaked123abc"/>\n'
    result = redact(line, "plex/Preferences.xml")
    assert [(s.name, s.value) for s in result.secrets] == [("PLEX_API_KEY", "leaked123abc")]
    assert result.text == line.replace("leaked123abc", "__REDACTED_PLEX_API_KEY__")


def test_each_widget_gets_its_own_name() -> None:
    original = "".join(
        f"- {group}:\n    - {name}:\n        widget:\n          type: {name.lower()}\n"
        f"          key: {name.lower()}-key-123\n"
        for group, name in [("Media", "Plex"), ("Media", "Tautulli"), ("Arr", "Radarr")]
    )
    _, store = _round_trip(original, "homepage/config/services.yaml")
    assert store == {
        "HOMEPAGE_PLEX_KEY": "plex-key-123",
        "HOMEPAGE_TAUTULLI_KEY": "tautulli-key-123",
        "HOMEPAGE_RADARR_KEY": "radarr-key-123",
    }
    # A second location with the same parent and key is numbered, deterministically.
    doubled = "a:\n  password: one11111\nb:\n  - password: two22222\n"
    _, names = _round_trip(doubled, "svc/x.yaml")
    assert names == {"SVC_A_PASSWORD": "one11111", "SVC_B_PASSWORD": "two22222"}
    same = "PASSWORD=one11111\nPASSWORD=two22222\n"
    assert set(_round_trip(same, "svc/x.env")[1]) == {"SVC_PASSWORD", "SVC_PASSWORD_2"}


@pytest.mark.parametrize(
    "value", ["a&b", "x/y/z", "p|q", "back\\slash", "line1\nline2", "$HOME", "q'uo\"te", "&amp;"]
)
def test_any_value_rehydrates_exactly(value: str) -> None:
    redacted = b"WIREGUARD_PRIVATE_KEY: __REDACTED_ARRSTACK_WIREGUARD_PRIVATE_KEY__\n"
    lookup = {"ARRSTACK_WIREGUARD_PRIVATE_KEY": value}.get
    assert render(redacted, lookup).data == f"WIREGUARD_PRIVATE_KEY: {value}\n".encode()


def test_missing_value_blocks_instead_of_emptying() -> None:
    rendered = render(b"key: __REDACTED_HOMEPAGE_PLEX_KEY__\nurl: x\n", {}.get)
    assert rendered.data is None
    assert rendered.missing == ("HOMEPAGE_PLEX_KEY",)


def test_same_location_same_name_and_rotation() -> None:
    compose = "services:\n  g:\n    environment:\n      WG_PRIVATE_KEY: {}\n"
    path = "arrstack/docker-compose.yml"
    first = redact(compose.format("old1111aaa"), path)
    old = {"ARRSTACK_WG_PRIVATE_KEY": "old1111aaa"}
    rotated = redact(compose.format("new2222bbb"), path, store=old)
    assert first.text == rotated.text
    assert [(s.name, s.value) for s in rotated.secrets] == [
        ("ARRSTACK_WG_PRIVATE_KEY", "new2222bbb")
    ]


def test_a_name_used_elsewhere_for_another_value_is_not_taken() -> None:
    text = "ADMIN_TOKEN=standby-value1\n"
    path = "vaultwarden/docker-compose.nas-standby.env"
    store = {"VAULTWARDEN_ADMIN_TOKEN": "main-value1"}
    clash = redact(text, path, store=store, elsewhere={"VAULTWARDEN_ADMIN_TOKEN"})
    assert [s.name for s in clash.secrets] == ["VAULTWARDEN_DOCKER_COMPOSE_NAS_STANDBY_ADMIN_TOKEN"]
    shared = redact(text, path, store={"VAULTWARDEN_ADMIN_TOKEN": "standby-value1"},
                    elsewhere={"VAULTWARDEN_ADMIN_TOKEN"})  # fmt: skip
    assert [s.name for s in shared.secrets] == ["VAULTWARDEN_ADMIN_TOKEN"]


def test_existing_placeholders_keep_their_names_and_numbering() -> None:
    partly = "PASSWORD=__REDACTED_SVC_PASSWORD__\nPASSWORD=two22222\n"
    result = redact(partly, "svc/x.env")
    assert [s.name for s in result.secrets] == ["SVC_PASSWORD_2"]


def test_redact_files_shares_a_name_only_for_one_value() -> None:
    texts = {
        "vaultwarden/a.env": "ADMIN_TOKEN=same-value-1\n",
        "vaultwarden/standby.env": "ADMIN_TOKEN=same-value-1\n",
        "vaultwarden/zz.env": "ADMIN_TOKEN=other-value-2\n",
    }
    results = redact_files(texts)
    names = {p: [s.name for s in r.secrets] for p, r in results.items()}
    assert names == {
        "vaultwarden/a.env": ["VAULTWARDEN_ADMIN_TOKEN"],
        "vaultwarden/standby.env": ["VAULTWARDEN_ADMIN_TOKEN"],
        "vaultwarden/zz.env": ["VAULTWARDEN_ZZ_ADMIN_TOKEN"],
    }
    # A name another repo file's placeholder uses, unknown to the store, is never taken.
    again = redact_files({"vaultwarden/new.env": "ADMIN_TOKEN=x-value-3\n"}, {},
                         {"vaultwarden/old.env": ["VAULTWARDEN_ADMIN_TOKEN"]})  # fmt: skip
    assert [s.name for s in again["vaultwarden/new.env"].secrets] == ["VAULTWARDEN_NEW_ADMIN_TOKEN"]


@pytest.mark.parametrize(
    ("path", "original", "secret"),
    [
        ("app/application.properties", "spring.datasource.password=${MYSQL_PASSWORD:db-57xsl}\n",
         "db-57xsl"),
        ("db/.env", "MYSQL_ROOT_PASSWORD=${DB_ROOT_PASS:-DatabasePassword1234}\n",
         "DatabasePassword1234"),
        ("db/docker-compose.yml", "environment:\n  DB_PASSWORD: ${DB_PASSWORD-Zx8Kq3Vn6W}\n",
         "Zx8Kq3Vn6W"),
    ],
)  # fmt: skip
def test_the_default_of_a_variable_reference_is_a_value(
    path: str, original: str, secret: str
) -> None:
    text, store = _round_trip(original, path)
    assert secret not in text and "${" in text  # the reference stays, its default goes
    assert list(store.values()) == [secret]


@pytest.mark.parametrize(
    "value", ["${DB_PASSWORD}", "${DB_PASSWORD:-}", "${DB_PASSWORD:-${OTHER}}"]
)
def test_a_reference_without_a_literal_default_is_left_alone(value: str) -> None:
    assert redact(f"DB_PASSWORD={value}\n", "db/.env").secrets == ()


def test_reference_default_and_commented_out_value_round_trip() -> None:
    original = (
        "services:\n"
        "  db:\n"
        "    environment:\n"
        "      MYSQL_ROOT_PASSWORD: ${DB_ROOT_PASS:-DatabasePassword1234}\n"
        "      #- VPN_IPSEC_PSK=3gAW0sDYI2ARSMQIQRa2xpIHb42JS+ImsiHdf3jbTl8\n"
        "      REDIS_PASSWORD: changeme\n"
    )
    text, store = _round_trip(original, "db/docker-compose.yml")
    assert "${DB_ROOT_PASS:-__REDACTED_DB_MYSQL_ROOT_PASSWORD__}" in text
    assert "#- VPN_IPSEC_PSK=__REDACTED_DB_VPN_IPSEC_PSK_COMMENTED__" in text
    assert sorted(store.values()) == sorted(
        ["DatabasePassword1234", "3gAW0sDYI2ARSMQIQRa2xpIHb42JS+ImsiHdf3jbTl8", "changeme"]
    )
