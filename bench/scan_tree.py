"""A labeled homelab tree for the scan benchmark when `bench/labeled_tree.py` is absent.

Files in the formats a homelab repo holds (compose in both env styles, .env, YAML, TOML, INI,
XML, JSON, WireGuard, PEM, URLs with credentials) with planted fake secrets, and look-alikes
that are not secrets (placeholders, interpolations, digests, UUIDs, image tags, paths, flags).
Every planted secret is labeled with its file and line.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable
from pathlib import Path

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
Labels = dict[str, set[int]]  # path -> lines holding a planted secret


def _rand(rng: random.Random, size: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _password(rng: random.Random) -> str:
    # Not starting with `#`: unquoted, YAML and shells read that as a comment.
    return rng.choice(ALNUM) + _rand(rng, rng.randint(11, 23), ALNUM + "!#%+-_")


def _token(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "ghp_" + _rand(rng, 36)
    if kind == 1:
        return "glpat-" + _rand(rng, 20)
    if kind == 2:
        return "tskey-auth-" + _rand(rng, 12) + "-" + _rand(rng, 24)
    if kind == 3:
        return "AKIA" + _rand(rng, 16, string.ascii_uppercase + "234567")
    if kind == 4:
        return f"{rng.randint(10**8, 10**9)}:A" + _rand(rng, 34, ALNUM + "_-")
    return _rand(rng, 40, ALNUM)


def _lookalike(rng: random.Random) -> str:
    kind = rng.randrange(7)
    if kind == 0:
        return "__REDACTED_" + _rand(rng, 8, string.ascii_uppercase) + "__"
    if kind == 1:
        return "${" + _rand(rng, 8, string.ascii_uppercase) + "}"
    if kind == 2:
        return "/run/secrets/" + _rand(rng, 6, string.ascii_lowercase)
    if kind == 3:
        return "{{ vault_" + _rand(rng, 6, string.ascii_lowercase) + " }}"
    if kind == 4:
        return "your_password_here"  # `changeme` is a weak live password (issue 11)
    if kind == 5:
        return ""
    return "REDACTED"


def _benign_lines(rng: random.Random) -> list[str]:
    digest = _rand(rng, 64, "0123456789abcdef")
    return [
        f"image: ghcr.io/example/app@sha256:{digest}",
        f"uuid: {_rand(rng, 8, HEX)}-1234-4abc-8def-{_rand(rng, 12, HEX)}",
        f"path: /srv/data/{_rand(rng, 6, string.ascii_lowercase)}/media",
        "restart: unless-stopped",
        f"port: {rng.randint(1000, 65000)}",
        f"commit: {_rand(rng, 40, '0123456789abcdef')}",
        "enabled: true",
        f"timezone: Europe/{rng.choice(['Berlin', 'Paris', 'London'])}",
    ]


def _compose(rng: random.Random) -> tuple[str, set[int]]:
    lines = ["services:", "  app:", f"    image: lscr.io/linuxserver/app:{rng.randint(1, 9)}.0"]
    planted: set[int] = set()
    lines.append("    environment:")
    listed = rng.random() < 0.5
    for i in range(rng.randint(3, 7)):
        name = rng.choice(["DB_PASSWORD", "API_TOKEN", "SECRET_KEY", "ADMIN_PASS", "AUTH_KEY"])
        name = f"{rng.choice(['APP', 'WEB', 'SYNC', 'MEDIA', 'BACKUP', 'PROXY', 'DNS'])}{i}_{name}"
        secret = rng.random() < 0.5
        value = (
            (_password(rng) if rng.random() < 0.5 else _token(rng)) if secret else _lookalike(rng)
        )
        plain = rng.choice(["PUID", "PGID", "TZ", "LOG_LEVEL"])
        if listed:
            lines.append(f"      - {name}={value}")
            lines.append(f"      - {plain}={rng.randint(100, 2000)}")
        else:
            lines.append(f"      {name}: {value}")
            lines.append(f"      {plain}: '{rng.randint(100, 2000)}'")
        if secret:
            planted.add(len(lines) - 1)
    lines.append("    volumes:")
    lines.append(f"      - /srv/{_rand(rng, 5, string.ascii_lowercase)}:/config")
    return "\n".join(lines) + "\n", planted


def _dotenv(rng: random.Random) -> tuple[str, set[int]]:
    lines: list[str] = ["# service settings"]
    planted: set[int] = set()
    for i in range(rng.randint(4, 10)):
        if rng.random() < 0.4:
            name = rng.choice(["PASSWORD", "TOKEN", "API_KEY", "CLIENT_SECRET", "WEBHOOK"])
            value = _password(rng) if "PASS" in name else _token(rng)
            if name == "WEBHOOK":
                value = f"https://discord.com/api/webhooks/{rng.randint(10**17, 10**18)}/" + _rand(
                    rng, 68, ALNUM + "_-"
                )
            lines.append(f"{rng.choice(['APP', 'WEB', 'DNS', 'SYNC'])}{i}_{name}={value}")
            planted.add(len(lines))
        elif rng.random() < 0.5:
            lines.append(f"SECRET_{i}={_lookalike(rng)}")
        else:
            lines.append(f"SETTING_{i}={rng.choice(['true', 'info', '8080', '/data'])}")
    return "\n".join(lines) + "\n", planted


def _yaml(rng: random.Random) -> tuple[str, set[int]]:
    lines = ["server:", f"  host: host{rng.randint(1, 99)}.lan"]
    planted: set[int] = set()
    for line in _benign_lines(rng):
        lines.append("  " + line)
    if rng.random() < 0.6:
        lines.append(f"  api_key: {_token(rng)}")
        planted.add(len(lines))
    else:
        lines.append(f"  api_key: {_lookalike(rng) or 'null'}")
    if rng.random() < 0.4:
        lines.append(f"  dsn: postgres://app:{_password(rng).replace('#', 'x')}@db:5432/app")
        planted.add(len(lines))
    return "\n".join(lines) + "\n", planted


def _toml_ini(rng: random.Random) -> tuple[str, set[int]]:
    lines = ["[database]", f"port = {rng.randint(1000, 9000)}", 'user = "app"']
    planted: set[int] = set()
    if rng.random() < 0.6:
        lines.append(f'password = "{_password(rng)}"')
        planted.add(len(lines))
    else:
        lines.append(f'password = "{_lookalike(rng)}"')
    lines.append(f'checksum = "{_rand(rng, 64, "0123456789abcdef")}"')
    return "\n".join(lines) + "\n", planted


def _xml(rng: random.Random) -> tuple[str, set[int]]:
    planted: set[int] = set()
    value = _rand(rng, 20) if rng.random() < 0.6 else ""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<Preferences MachineIdentifier="{_rand(rng, 8, "0123456789abcdef")}-aaaa-bbbb" '
        f'PlexOnlineToken="{value}" FriendlyName="media"/>',
    ]
    if value:
        planted.add(2)
    return "\n".join(lines) + "\n", planted


def _json(rng: random.Random) -> tuple[str, set[int]]:
    planted: set[int] = set()
    lines = ["{", f'  "name": "svc{rng.randint(1, 99)}",']
    if rng.random() < 0.6:
        lines.append(f'  "client_secret": "{_rand(rng, 32)}",')
        planted.add(len(lines))
    else:
        lines.append(f'  "client_secret": "{_lookalike(rng)}",')
    lines.append(f'  "integrity": "sha512-{base64.b64encode(rng.randbytes(48)).decode()}"')
    lines.append("}")
    return "\n".join(lines) + "\n", planted


def _wireguard(rng: random.Random) -> tuple[str, set[int]]:
    key = base64.b64encode(rng.randbytes(32)).decode()
    pub = base64.b64encode(rng.randbytes(32)).decode()
    lines = ["[Interface]", f"PrivateKey = {key}", "Address = 10.0.0.2/32", "[Peer]"]
    lines.append(f"PublicKey = {pub}")
    return "\n".join(lines) + "\n", {2}


def _pem(rng: random.Random) -> tuple[str, set[int]]:
    body = base64.b64encode(rng.randbytes(180)).decode()
    chunks = [body[i : i + 64] for i in range(0, len(body), 64)]
    kind = "OPENSSH PRIVATE KEY"
    lines = [f"-----BEGIN {kind}-----", *chunks, f"-----END {kind}-----"]
    return "\n".join(lines) + "\n", {1}


def _readme(rng: random.Random) -> tuple[str, set[int]]:
    lines = [
        "# Notes",
        "Set the password in the secret store, never here.",
        "The token is read from `${API_TOKEN}` at start-up.",
        f"Last checked commit {_rand(rng, 40, '0123456789abcdef')}.",
    ]
    return "\n".join(lines) + "\n", set()


KINDS: list[tuple[str, Callable[[random.Random], tuple[str, set[int]]]]] = [
    ("docker-compose.yml", _compose),
    (".env", _dotenv),
    ("config.yaml", _yaml),
    ("settings.toml", _toml_ini),
    ("app.ini", _toml_ini),
    ("Preferences.xml", _xml),
    ("config.json", _json),
    ("wg0.conf", _wireguard),
    ("id_ed25519", _pem),
    ("README.md", _readme),
]


def generate(root: Path, files: int = 1200, seed: int = 42) -> Labels:
    rng = random.Random(seed)
    labels: Labels = {}
    for index in range(files):
        name, make = KINDS[index % len(KINDS)]
        rel = f"host{index // 100:02d}/svc{index:04d}/{name}"
        text, planted = make(rng)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        labels[rel] = planted
    return labels
