"""Text fit to print: credentials in URLs masked; binary bytes told from text."""

from __future__ import annotations

import re

_CREDENTIALS_IN_URL = re.compile(
    r"^(?P<scheme>[a-z+]+://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@", re.IGNORECASE
)
# https://TOKEN@host/... : over http(s) a user without a password is usually a token.
_HTTP_USER_ONLY = re.compile(r"^(?P<scheme>https?://)[^:/@\s]+@", re.IGNORECASE)


def mask_url(url: str) -> str:
    """A URL fit to print: any password, or an http(s) user that may be a token, shown as ***."""
    url = _CREDENTIALS_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _HTTP_USER_ONLY.sub(lambda m: f"{m['scheme']}***@", url)


BINARY_PROBE = 8192  # like git: a NUL byte in the first 8 KiB means binary


def looks_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_PROBE]


# Control characters other than tab: a file name holding ESC, CR or an OSC sequence must not
# drive the terminal or fake an output line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character but tab shown as an escape (`\\x1b`, `\\n`)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def keyed_name(key: str) -> str:
    """<slug>-<hash of key>: a stable folder name for a URL or path, safe as one file name."""
    import hashlib  # noqa: PLC0415 (loads OpenSSL: not for every command)

    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    tail = key.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tail = tail.removesuffix(".git")
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", tail).strip("._")[:40] or "repo"
    return f"{slug}-{digest}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 error`, `2 errors` (`plural` for nouns that do not just take an s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
