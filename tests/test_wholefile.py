"""Files that are secrets as a whole: named so, private keys, Docker secret files."""

from __future__ import annotations

import pytest

from tether.secrets.redact import redact
from tether.secrets.render import render
from tether.secrets.wholefile import compose_secret_files, is_whole_file_secret

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("path", "text", "whole"),
    [
        ("db/password.txt", "s3cr3t\n", True),
        ("app/secrets/api_token", "tok-123", True),
        ("app/client_secret.txt", "x", True),
        ("ssh/id_ed25519", KEY, True),
        ("tls/server.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", True),
        ("tls/server.pem", "-----BEGIN CERTIFICATE-----\nMIIE\n-----END CERTIFICATE-----\n", False),
        ("age/keys.txt", "# created: 2026\nAGE-SECRET-KEY-1QQQQ\n", True),
        ("db/password.txt.example", "changeme\n", False),
        ("ssh/id_ed25519.pub", "ssh-ed25519 AAAA\n", False),
        ("app/config.yml", "a: 1\n", False),
        ("db/password.txt", "", False),  # empty: nothing to hide
        ("tls/server.p12", "0\x82\x04", True),  # keystores hold a private key, whatever the name
        ("app/truststore.JKS", "\xfe\xed", True),
        ("iis/site.pfx", "0\x82", True),
    ],
)
def test_which_files_are_secrets_as_a_whole(path: str, text: str, whole: bool) -> None:
    assert is_whole_file_secret(path, text) is whole


def test_compose_secret_files_are_resolved_beside_the_compose_file() -> None:
    compose = (
        "services:\n  db:\n    secrets: [db-password]\n"
        "secrets:\n  db-password:\n    file: db/password.txt\n"
        "  remote:\n    external: true\n"
        "  escape:\n    file: ../../etc/shadow\n"
        "configs:\n  app_secret_conf:\n    file: ./app/secret.conf\n"
        "  plain:\n    file: ./app/plain.conf\n"
    )
    found = compose_secret_files("stack/docker-compose.yml", compose)
    assert found == {"stack/db/password.txt", "stack/app/secret.conf"}
    assert compose_secret_files("x/compose.yaml", "[not: a mapping") == set()


@pytest.mark.parametrize(
    "text", ["s3cr3t", "s3cr3t\n", "two\nlines\n\n", "tab\tand 'quotes' \"$x\"\n"]
)
def test_a_whole_file_secret_renders_back_to_the_exact_bytes(text: str) -> None:
    redaction = redact(text, "db/password.txt")
    assert redaction.text == "__REDACTED_DB_PASSWORD__"
    (secret,) = redaction.secrets
    assert secret.value == text
    rendered = render(redaction.text.encode(), {secret.name: secret.value}.get)
    assert rendered.data == text.encode()


def test_a_file_already_a_placeholder_stays_as_it_is() -> None:
    assert redact("__REDACTED_DB_PASSWORD__", "db/password.txt").secrets == ()


def test_a_key_file_whose_body_is_a_placeholder_is_not_a_finding() -> None:
    from tether.secrets.scan import Scanner, default_rules  # noqa: PLC0415

    scanner = Scanner(default_rules(), b"s" * 32)
    armoured = "-----BEGIN PRIVATE KEY-----\n__REDACTED_APP_TLS_KEY__\n-----END PRIVATE KEY-----\n"
    assert scanner.scan_text("tls.key", armoured) == []
    real = armoured.replace("__REDACTED_APP_TLS_KEY__", "MIIEvQIBADANBgkqhkiG9w0BAQEF")
    assert [f.rule for f in scanner.scan_text("tls.key", real)] == ["whole-file-secret"]


@pytest.mark.parametrize(
    "path", ["lib/yaml/tokens.py", "plugins/github_token.py", "src/secret.rs", "bin/token.sh"]
)
def test_program_source_named_after_secrets_is_not_a_whole_file_secret(path: str) -> None:
    assert not is_whole_file_secret(path, "def read(token: str) -> str:\n    return token\n")


@pytest.mark.parametrize("strict", [False, True])
def test_a_binary_keystore_is_one_whole_file_finding(strict: bool) -> None:
    from tether.secrets.scan import Scanner, default_rules  # noqa: PLC0415

    scanner = Scanner(default_rules(), b"s" * 32)
    scanner.strict = strict  # hook mode: binary files are read for known formats
    scanner.scan_bytes("tls/server.p12", b"0\x82\x04\x00\x02\x01\x03")
    scanner.scan_bytes("img/logo.png", b"\x89PNG\x00\x00")
    assert [(f.path, f.line, f.rule) for f in scanner.result.findings] == [
        ("tls/server.p12", 1, "whole-file-secret")
    ]


def test_a_binary_secret_file_renders_from_base64_and_never_half_decoded() -> None:
    from tether.secrets.redact import redact_binary  # noqa: PLC0415
    from tether.secrets.scan import Scanner, default_rules  # noqa: PLC0415

    data = bytes(range(256)) + b"\n"
    redaction = redact_binary(data, "tls/server.p12", {})
    assert redaction.text == "tether:base64 __REDACTED_TLS_SERVER__"
    store = {s.name: s.value for s in redaction.secrets}
    assert render(redaction.text.encode(), store.get).data == data
    assert render(redaction.text.encode(), {"TLS_SERVER": "not base64!"}.get).missing == (
        "TLS_SERVER",
    )
    scanner = Scanner(default_rules(), b"s" * 32)
    assert scanner.scan_text("tls/server.p12", redaction.text) == []  # the repo side is clean
