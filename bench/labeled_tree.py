"""A labeled homelab config repo: planted secrets and look-alikes that are not secrets.

    python bench/labeled_tree.py OUT [--files 1000] [--seed 7]

Writes OUT/tether.yaml, OUT/inventory/include-paths.txt, OUT/configs/<service>/... and
OUT/labels.json:

    {"files": N, "seed": S,
     "secrets": [{"path", "line", "value", "kind", "format"}],   # must not survive redaction
     "decoys":  [{"path", "line", "text", "kind", "format"}]}    # must survive byte for byte

`path` is relative to OUT (`configs/arrstack/docker-compose.yml`), `line` is 1-based (the
line where the value starts), `value` is exactly the characters of the secret in the file.
Formats: compose (environment map and `- KEY=value` list), .env, YAML, TOML, INI, XML, JSON,
PEM key files, and plain text/shell with tokens and URLs with credentials. Every secret value
is unique, so "is it still in the output" is a plain substring test.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l".upper()
SERVICES = [
    "arrstack",
    "authentik",
    "immich",
    "pihole",
    "plex",
    "tautulli",
    "homepage",
    "traefik",
    "vaultwarden",
    "homeassistant",
    "dockhand",
    "gitea",
    "nextcloud",
    "grafana",
    "wireguard",
    "paperless",
    "jellyfin",
    "mealie",
    "uptime",
    "minio",
]
SECRET_KEYS = [
    "DB_PASSWORD",
    "POSTGRES_PASSWORD",
    "ADMIN_TOKEN",
    "API_KEY",
    "SECRET_KEY",
    "CLIENT_SECRET",
    "SMTP_PASSWORD",
    "WEBPASSWORD",
    "PG_PASS",
    "AUTH_TOKEN",
    "PRIVATE_KEY",
    "JWT_SECRET",
    "ACCESS_TOKEN",
    "REDIS_PASSWORD",
    "APP_KEY",
    "ENCRYPTION_KEY",
    "MQTT_PASS",
    "RPC_SECRET",
]


@dataclass
class Labels:
    files: int = 0
    seed: int = 0
    secrets: list[dict[str, object]] = field(default_factory=list)
    decoys: list[dict[str, object]] = field(default_factory=list)


class FileBuilder:
    """Lines of one file, with labels recorded as they are added."""

    def __init__(self, path: str, fmt: str, labels: Labels) -> None:
        self.path, self.fmt, self.labels = path, fmt, labels
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def secret(self, line: str, value: str, kind: str) -> None:
        assert value in line
        self.labels.secrets.append(
            {
                "path": self.path,
                "line": self.row(line, value),
                "value": value,
                "kind": kind,
                "format": self.fmt,
            }
        )
        self.lines.append(line)

    def decoy(self, line: str, text: str, kind: str) -> None:
        assert text in line
        self.labels.decoys.append(
            {
                "path": self.path,
                "line": self.row(line, text),
                "text": text,
                "kind": kind,
                "format": self.fmt,
            }
        )
        self.lines.append(line)

    def row(self, line: str, part: str) -> int:
        before = sum(chunk.count("\n") + 1 for chunk in self.lines)
        return before + line[: line.index(part)].count("\n") + 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def word(
        self, alphabet: str, low: int = 12, high: int = 36, extras: tuple[str, ...] = ()
    ) -> str:
        """A unique secret-looking value: alphanumeric ends, `alphabet` and `extras` inside."""
        self.serial += 1
        size = self.rng.randint(low, high)
        middle = [self.rng.choice(list(alphabet) + list(extras)) for _ in range(size)]
        tag = f"{self.serial:x}"  # uniqueness, without looking like a pattern
        first = self.rng.choice(string.ascii_letters)
        return first + "".join(middle) + tag + self.rng.choice(ALNUM)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def key(self) -> str:
        return self.rng.choice(SECRET_KEYS)

    def token(self) -> tuple[str, str]:
        """A known-format token: (kind, value)."""
        c = self.chars
        kinds: list[tuple[str, Callable[[], str]]] = [
            ("github-pat", lambda: "ghp_" + c(ALNUM, 36)),
            ("github-pat", lambda: "github_pat_" + c(ALNUM + "_", 82)),
            ("gitlab-pat", lambda: "glpat-" + c(ALNUM + "_-", 20)),
            (
                "slack-token",
                lambda: f"xoxb-{c(string.digits, 11)}-{c(string.digits, 12)}-" + c(ALNUM, 24),
            ),
            ("aws-access-key", lambda: "AKIA" + c("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            ("stripe-key", lambda: "sk_live_" + c(ALNUM, 24)),
            ("tailscale-key", lambda: f"tskey-auth-k{c(ALNUM, 11)}CNTRL-{c(ALNUM, 32)}"),
            ("cloudflare-token", lambda: "cfat_" + c(ALNUM, 40) + c("0123456789abcdef", 8)),
            ("telegram-bot-token", lambda: f"{c(string.digits, 9)}:AA{c(ALNUM + '_-', 33)}"),
            ("jwt", lambda: "eyJhbGciOiJIUzI1NiJ9.eyJ" + c(ALNUM, 40) + "." + c(ALNUM + "_-", 43)),
            ("age-secret-key", lambda: "AGE-SECRET-KEY-1" + c(BECH32, 58)),
        ]
        kind, make = self.rng.choice(kinds)
        return kind, make()

    def wg_key(self) -> str:
        return self.chars(B64, 42) + self.rng.choice("AEIMQUYcgkosw048") + "="

    def pem(self) -> str:
        kind = self.rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
        body = "\n".join(self.chars(B64, 64) for _ in range(self.rng.randint(3, 8)))
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


# --- one generator per file kind --------------------------------------------------------------


def compose(g: Gen, f: FileBuilder, service: str) -> None:
    list_style = g.rng.random() < 0.5
    f.add(f"services:\n  {service}:\n    image: ghcr.io/example/{service}:1.2.3")
    f.add(f"    container_name: {service}\n    restart: unless-stopped\n    environment:")
    for _ in range(g.rng.randint(1, 3)):
        key = g.key()
        if list_style:
            if g.rng.random() < 0.5:
                value = g.word(ALNUM + "_.+=@%/&|!-")
                f.secret(f"      - {key}={value}", value, "key-name")
            else:
                value = g.word(ALNUM + "&/|#:' ")
                f.secret(f'      - "{key}={value}"', value, "key-name")
        else:
            style = g.rng.choice(["plain", "double", "single"])
            if style == "plain":
                value = g.word(ALNUM + "_.+=@%/&|!-")
                f.secret(f"      {key}: {value}", value, "key-name")
            elif style == "double":
                value = g.word(ALNUM + "&/|$#:' ", extras=("\\\\", '\\"'))
                f.secret(f'      {key}: "{value}"  # set by hand', value, "key-name")
            else:
                value = g.word(ALNUM + '&/|$#:"\\ ', extras=("''",))
                f.secret(f"      {key}: '{value}'", value, "key-name")
    if service == "arrstack" or g.rng.random() < 0.2:
        value = g.wg_key()
        line = (
            f"      - WIREGUARD_PRIVATE_KEY={value}"
            if list_style
            else (f"      WIREGUARD_PRIVATE_KEY: {value}")
        )
        f.secret(line, value, "wireguard-private-key")
    decoys = [
        ("POSTGRES_PASSWORD", "${PG_PASS}", "interpolation"),
        ("SMTP_PASSWORD", "${SMTP_APP_PASSWORD:-}", "interpolation"),
        ("DB_PASSWORD_FILE", "/run/secrets/db_password", "secret-file"),
        ("TOKEN_EXPIRY", "3600", "not-secret-key"),
        ("PASSWORD_MIN_LENGTH", "12", "not-secret-key"),
        ("ENABLE_PASSWORD_AUTH", "true", "boolean"),
        ("TZ", "Australia/Sydney", "plain"),
        ("PUID", "1000", "plain"),
        ("WG_PUBLIC_KEY", g.wg_key(), "public-key"),
        ("GIT_COMMIT", g.chars("0123456789abcdef", 40), "hash-not-secret"),
    ]
    for key, value, kind in g.rng.sample(decoys, 4):
        text = f"{key}={value}" if list_style else f"{key}: {value}"
        f.decoy(f"      - {text}" if list_style else f"      {text}", text, kind)
    f.add("    labels:\n      - traefik.enable=true")
    f.add(f"      - traefik.http.routers.{service}.rule=Host(`{service}.homelab.internal`)")
    f.add("    networks: [traefik]\nnetworks:\n  traefik:\n    external: true")


def dotenv(g: Gen, f: FileBuilder, service: str) -> None:
    f.add(f"# {service} environment")
    export = "export " if g.rng.random() < 0.3 else ""
    for _ in range(g.rng.randint(1, 3)):
        key = f"{service.upper()}_{g.key()}"
        style = g.rng.choice(["plain", "double", "single"])
        if style == "plain":
            value = g.word(ALNUM + "_.+=@%/:,-")
            f.secret(f"{export}{key}={value}", value, "key-name")
        elif style == "double":
            value = g.word(ALNUM + "&/|#:' ")
            f.secret(f'{export}{key}="{value}"  # rotated 2026-05', value, "key-name")
        else:
            value = g.word(ALNUM + '&/|#:"$\\ ')
            f.secret(f"{export}{key}='{value}'", value, "key-name")
    if g.rng.random() < 0.5:
        kind, value = g.token()
        f.secret(f"{export}NOTIFY_{g.rng.randint(1, 9)}={value}", value, kind)
    if g.rng.random() < 0.3:
        hook = f"{g.chars(string.digits, 18)}/{g.chars(ALNUM + '_-', 68)}"
        line = f"{export}DISCORD_WEBHOOK=https://discord.com/api/webhooks/{hook}"
        f.secret(line, hook.split("/")[1], "discord-webhook")
    decoys = [
        ("EMPTY_PASSWORD=", "empty"),
        ("PASSWORD_FILE=/run/secrets/pw", "secret-file"),
        ("ENABLE_TOKEN_AUTH=true", "boolean"),
        ("SESSION_TOKEN_TTL=86400", "not-secret-key"),
        ("COMPOSE_PORT_HTTP=9000", "plain"),
        ("SECRET_NAME=app-secret", "not-secret-key"),
        ("ADMIN_USERNAME=admin", "not-secret-key"),
    ]
    for text, kind in g.rng.sample(decoys, 3):
        f.decoy(f"{export}{text}", text, kind)


def yaml_widgets(g: Gen, f: FileBuilder, service: str) -> None:
    for group in g.rng.sample(["Media", "Arr", "Network", "Infra"], 2):
        f.add(f"- {group}:")
        for name in g.rng.sample(
            ["Plex", "Radarr", "Sonarr", "Pihole", "Portainer", "Tautulli"], 2
        ):
            f.add(f"    - {name}:\n        icon: {name.lower()}.png")
            f.add(f"        href: https://{name.lower()}.homelab.internal\n        widget:")
            f.add(f"          type: {name.lower()}")
            value = g.word(ALNUM)
            f.secret(f"          key: {value}", value, "key-name")
            if g.rng.random() < 0.4:
                f.decoy("          username: admin", "username: admin", "not-secret-key")
                value = g.word(ALNUM + "&/|$#:' ", extras=("\\\\",))
                f.secret(f'          password: "{value}"', value, "key-name")
            if g.rng.random() < 0.3:
                user, pw = "svc", g.word(ALNUM + "-_.~")
                url = f"https://{user}:{pw}@{name.lower()}.lan:8443/api"
                f.secret(f"          url: {url}", pw, "url-password")
            else:
                f.decoy(
                    f"          url: http://{service}.lan:80",
                    f"url: http://{service}.lan:80",
                    "url-no-password",
                )
    decoys = [
        ("# password: set in the UI", "comment"),
        ('token: "{{ .Config.token }}"', "template"),
        ("api_key: !secret ha_api_key", "ha-secret"),
        ("secret_name: my-app-secret", "not-secret-key"),
        ("passwordless: true", "boolean"),
        ("keyboard: us", "look-alike-key"),
        ("monkey: banana", "look-alike-key"),
        ("sort_key: created_at", "not-secret-key"),
    ]
    f.add("- Settings:\n    - Misc:")
    for text, kind in g.rng.sample(decoys, 4):
        f.decoy(f"        {text}", text, kind)


def toml(g: Gen, f: FileBuilder, service: str) -> None:
    f.add(f'# {service} settings\n[webserver]\n  port = "80o,443os"\n[webserver.api]')
    value = "$BALLOON-SHA256$v=1$s=1024,t=32$" + g.chars(B64, 22) + "$" + g.chars(B64, 43)
    f.secret(f'  pwhash = "{value}" # the web password hash', value, "key-name")
    for key in g.rng.sample(SECRET_KEYS, g.rng.randint(0, 2)):
        value = g.word(ALNUM + '&/|$#:"\\ ')
        f.secret(f"  app_{key.lower()} = '{value}'", value, "key-name")
    for text, kind in [
        ('totp_secret = ""', "empty"),
        ("max_sessions = 16", "plain"),
        ("http_hash_password = 0", "number-flag"),
        ("token_lifetime = 3600", "not-secret-key"),
    ]:
        f.decoy(f"  {text}", text, kind)


def ini(g: Gen, f: FileBuilder, service: str) -> None:
    f.add("[General]\nhttp_port = 8181\nlaunch_browser = 0")
    for key in g.rng.sample(
        [
            "api_key",
            "http_password",
            "pms_token",
            "newsletter_password",
            "cloudinary_api_secret",
            "git_token",
        ],
        3,
    ):
        value = g.word(ALNUM + "&/|$:!@%")
        if g.rng.random() < 0.3:
            f.secret(f'{key} = "{value}"', value, "key-name")
        else:
            f.secret(f"{key} = {value}", value, "key-name")
    for text, kind in [
        ("http_hash_password = 0", "number-flag"),
        ("http_hashed_password = 1", "number-flag"),
        ("jwt_update_secret = 0", "number-flag"),
        ('http_username = ""', "empty"),
        ("token_expiry = 30", "not-secret-key"),
        ("; http_password = see vault", "comment"),
        (f"pms_identifier = {g.chars('0123456789abcdef', 40)}", "id-not-secret"),
    ]:
        f.decoy(text, text, kind)


def xml(g: Gen, f: FileBuilder, service: str) -> None:
    token = g.word(ALNUM, 20, 20)
    machine = g.chars("0123456789abcdef", 40)
    processed = g.chars("0123456789abcdef", 40)
    attrs = (
        f'MachineIdentifier="{machine}" ProcessedMachineIdentifier="{processed}" '
        f'PlexOnlineUsername="me" PlexOnlineToken="{token}" PublishServerOnPlexOnlineKey="1"'
    )
    line = f'<?xml version="1.0" encoding="utf-8"?>\n<Preferences {attrs}/>'
    f.secret(line, token, "key-name")
    f.labels.decoys.append(
        {
            "path": f.path,
            "line": 2,
            "text": f'MachineIdentifier="{machine}"',
            "kind": "id-not-secret",
            "format": f.fmt,
        }
    )
    f.labels.decoys.append(
        {
            "path": f.path,
            "line": 2,
            "text": 'PublishServerOnPlexOnlineKey="1"',
            "kind": "look-alike-key",
            "format": f.fmt,
        }
    )


def xml_config(g: Gen, f: FileBuilder, service: str) -> None:
    f.add('<?xml version="1.0" encoding="utf-8"?>\n<Config>\n  <Port>7878</Port>')
    value = g.chars("0123456789abcdef", 32)
    f.secret(f"  <ApiKey>{value}</ApiKey>", value, "key-name")
    f.decoy("  <AuthenticationMethod>Forms</AuthenticationMethod>", "Forms", "plain")
    f.decoy("  <UrlBase></UrlBase>", "<UrlBase></UrlBase>", "empty")
    f.add("</Config>")


def json_file(g: Gen, f: FileBuilder, service: str) -> None:
    f.add("{")
    f.add(f'  "name": "{service}",')
    f.decoy('  "tokenType": "bearer",', '"tokenType": "bearer"', "not-secret-key")
    f.decoy('  "password": "",', '"password": ""', "empty")
    for key in g.rng.sample(["apiKey", "clientSecret", "refresh_token", "db_password"], 2):
        value = g.word(ALNUM + "&/|$#:' <>", extras=("\\\\", '\\"'))
        f.secret(f'  "{key}": "{value}",', value, "key-name")
    f.decoy(
        '  "publicKey": "ssh-ed25519 AAAAC3Nza"',
        '"publicKey": "ssh-ed25519 AAAAC3Nza"',
        "public-key",
    )
    f.add("}")


def pem(g: Gen, f: FileBuilder, service: str) -> None:
    value = g.pem()
    f.secret(value, value, "pem-private-key")


def text_notes(g: Gen, f: FileBuilder, service: str) -> None:
    f.add(f"#!/bin/sh\n# {service} maintenance notes\nset -eu")
    kind, value = g.token()
    f.secret(f'curl -H "Authorization: Bearer {value}" https://api.example.com/', value, kind)
    pw = g.word(ALNUM + "-_.~")
    f.secret(f"DATABASE_URL=postgresql://{service}:{pw}@db.lan:5432/{service}", pw, "url-password")
    f.decoy(
        "REPO=https://github.com/example/homelab.git",
        "https://github.com/example/homelab.git",
        "url-no-password",
    )
    f.decoy("TOKEN_FILE=/run/secrets/api_token", "TOKEN_FILE=/run/secrets/api_token", "secret-file")
    f.decoy("echo 'rotate the password yearly'", "rotate the password yearly", "prose")


KINDS: list[tuple[str, str, str, Callable[[Gen, FileBuilder, str], None]]] = [
    ("compose", "yaml", "docker-compose.yml", compose),
    ("env", "env", ".env", dotenv),
    ("yaml", "yaml", "config/services.yaml", yaml_widgets),
    ("toml", "toml", "etc/app.toml", toml),
    ("ini", "ini", "config/config.ini", ini),
    ("xml", "xml", "Library/Application Support/Preferences.xml", xml),
    ("xml", "xml", "config/config.xml", xml_config),
    ("json", "json", "config/settings.json", json_file),
    ("pem", "pem", "certs/server.key", pem),
    ("text", "text", "scripts/maintenance.sh", text_notes),
]


def generate(out: Path, files: int = 1000, seed: int = 7) -> Labels:
    g = Gen(seed)
    labels = Labels(files=files, seed=seed)
    paths: list[str] = []
    for i in range(files):
        service = SERVICES[i % len(SERVICES)]
        _kind, fmt, name, make = KINDS[(i // len(SERVICES) + i) % len(KINDS)]
        rel = f"{service}/{i // len(SERVICES):03d}/{name}"
        f = FileBuilder(f"configs/{rel}", fmt, labels)
        make(g, f, service)
        target = out / "configs" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text(), encoding="utf-8")
        paths.append(rel)
    (out / "inventory").mkdir(parents=True, exist_ok=True)
    (out / "inventory" / "include-paths.txt").write_text("\n".join(paths) + "\n")
    (out / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/bench\n")
    (out / "labels.json").write_text(json.dumps(asdict(labels), indent=1))
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    labels = generate(args.out, args.files, args.seed)
    print(
        f"{args.files} files, {len(labels.secrets)} secrets, {len(labels.decoys)} decoys "
        f"-> {args.out}"
    )


if __name__ == "__main__":
    main()
