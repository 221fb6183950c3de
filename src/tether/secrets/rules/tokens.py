"""Known token formats: found anywhere, whatever the file or the key."""

from __future__ import annotations

import re

_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (rule, re.compile(pattern, re.ASCII))
    for rule, pattern in (
        (
            "pem-private-key",
            r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:(?!-----BEGIN)[\s\S]){0,20000}?"  # stops at the next BEGIN: linear time
            r"-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
        ),
        ("github-pat", r"(?<![A-Za-z0-9_])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}(?![A-Za-z0-9_])"),
        ("github-pat", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{60,255}(?![A-Za-z0-9_])"),
        ("gitlab-pat", r"(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{9,})?"),
        ("slack-token", r"(?<![A-Za-z0-9_])xox[abposr]-(?:[0-9]+-)+[A-Za-z0-9-]{8,}"),
        (
            "slack-webhook",
            r"(?<=hooks\.slack\.com/services/)T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/"
            r"[A-Za-z0-9_]{16,}",
        ),
        (
            "aws-access-key",
            r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"
            r"(?![A-Za-z0-9])(?<!EXAMPLE)",
        ),
        ("stripe-key", r"(?<![A-Za-z0-9_])[rs]k_(?:live|prod)_[A-Za-z0-9]{10,99}(?![A-Za-z0-9])"),
        ("tailscale-key", r"(?<![A-Za-z0-9_])tskey-[a-z]{3,10}-[A-Za-z0-9_-]{10,}"),
        ("cloudflare-token", r"(?<![A-Za-z0-9_])cf[a-z]t_[A-Za-z0-9_-]{30,}"),
        ("discord-webhook", r"(?<=/api/webhooks/)(?:[0-9]{17,20})/[A-Za-z0-9_-]{60,80}"),
        (
            "telegram-bot-token",
            r"(?<![A-Za-z0-9_:])[0-9]{8,10}:A[A-Za-z0-9_-]{34}(?![A-Za-z0-9_-])",
        ),
        (
            "jwt",
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}={0,2}\.ey[A-Za-z0-9_-]{10,}={0,2}\."
            r"[A-Za-z0-9_-]{10,}={0,2}",
        ),
        # crypt(3) password hashes (bcrypt, sha-crypt, apr1, yescrypt, argon2): crackable
        (
            "password-hash",
            r"(?<![A-Za-z0-9$])\$(?:2[abxy]\$[0-9]{2}|[56]|apr1|y|argon2(?:id|i|d))\$"
            r"[A-Za-z0-9./$=,+]{20,}",
        ),
        ("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    )
)
_CLOUDFLARE = tuple(f"cf{c}t_" for c in "abcdefghijklmnopqrstuvwxyz")
# Lower-case words one of which is in any text a rule can match: rules whose words are absent
# are not run at all (most files need two or three of the fifteen patterns).
RULE_WORDS: dict[str, tuple[str, ...]] = {
    "pem-private-key": ("private key",),
    "github-pat": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab-pat": ("glpat-",),
    "slack-token": ("xox",),
    "slack-webhook": ("hooks.slack.com",),
    "aws-access-key": ("akia", "asia", "abia", "acca", "a3t"),
    "stripe-key": ("k_live_", "k_prod_"),
    "tailscale-key": ("tskey-",),
    "cloudflare-token": _CLOUDFLARE,
    "discord-webhook": ("webhooks/",),
    "telegram-bot-token": (":a",),
    "jwt": ("eyj",),
    "password-hash": ("$2a$", "$2b$", "$2x$", "$2y$", "$5$", "$6$", "$apr1$", "$y$", "$argon2"),
    "age-secret-key": ("age-secret-key-1",),
}
TOKEN_RULES = tuple((rule, RULE_WORDS[rule], pattern) for rule, pattern in _TOKEN_PATTERNS)
DISCORD_HOST = re.compile(r"discord(?:app)?\.com/api/webhooks/$")
# The password of `scheme://user:PASSWORD@host`; stops at characters a URL would escape.
URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'<>`]*:(?P<pw>[^\s@/\"'<>`]+)@"
    r"(?=[^\s@/\"'<>`])",
    re.ASCII,
)
# `password=` inside a connection string: libpq's `host=db user=app password=x dbname=app`,
# ADO.NET's `Server=db;User Id=sa;Password=x;`, a URL query's `?user=a&password=x`.
CONNECTION_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9_.-])(?i:password|passwd|pwd)=(?P<pw>[^\s;\"'&<>`]{1,200})",
    re.ASCII,
)
WIREGUARD_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")

# Every word a token rule needs (the scan's cheap pre-filter).
TOKEN_WORDS: frozenset[str] = frozenset(w for words in RULE_WORDS.values() for w in words)
