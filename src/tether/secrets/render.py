"""Placeholders in repo bytes, and filling them from the secret store.

A placeholder is `__REDACTED_<NAME>__` where NAME is shaped like an environment variable
without doubled or trailing underscores, so the end is unambiguous and the placeholder is
made only of characters every config format accepts unquoted ([A-Za-z0-9_]). The article's
bare `REDACTED` is accepted when a name can be found for it (see `bare_name`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

NAME_PATTERN = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*"
PLACEHOLDER = re.compile(rb"__REDACTED_(?P<name>" + NAME_PATTERN.encode() + rb")__")
BARE = re.compile(rb"(?<![A-Za-z0-9_])REDACTED(?![A-Za-z0-9_])")
MARKER = b"REDACTED"
# A binary secret file in the repo: this prefix, then its placeholder; the store holds base64.
BASE64_PREFIX = b"tether:base64 "
BARE_MISSING = "REDACTED@line"  # in Rendered.missing: a bare REDACTED nothing names, by line
BARE_HINT = "map it under secrets.map in tether.yaml, or redact it again"
# The key a bare REDACTED stands for, on its line: `key: REDACTED`, `KEY=REDACTED`,
# `key = "REDACTED"`, `Key="REDACTED"` (XML), `- KEY=REDACTED` (compose list).
_KEY_BEFORE = re.compile(rb"""(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)["']?\s*[:=]\s*["']?$""")
# What render reads as a placeholder, in text: a host file holding it means the words themselves.
MARKERS_TEXT = re.compile(PLACEHOLDER.pattern.decode() + "|" + BARE.pattern.decode())
KEY_BEFORE_TEXT = re.compile(_KEY_BEFORE.pattern.decode())

Lookup = Callable[[str], "str | None"]


def placeholder(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"not a secret name: {name!r}")
    return f"__REDACTED_{name}__"


def env_name(text: str) -> str:
    """`Wireguard private-key` -> `WIREGUARD_PRIVATE_KEY`: a valid secret name from any text."""
    words = re.findall(r"[A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text))
    name = "_".join(w.upper() for w in words) or "SECRET"
    return name if name[0].isalpha() else f"S_{name}"


def has_marker(data: bytes) -> bool:
    """Cheap test: can this file hold a placeholder at all?"""
    return MARKER in data


def is_marker_value(value: str) -> bool:
    """A value that is only what render reads as a placeholder (a host's literal `REDACTED`):
    stored so that it round-trips, but no secret: never looked for or masked as one."""
    return MARKERS_TEXT.fullmatch(value.strip()) is not None


def bare_name(data: bytes, start: int, names: Mapping[str, str], lookup: Lookup) -> str | None:
    """The secret a bare REDACTED at `start` stands for, or None when nothing says."""
    line_start = data.rfind(b"\n", 0, start) + 1
    match = _KEY_BEFORE.search(data, line_start, start)
    if match is None:
        return None
    key = match["key"].decode("utf-8", "replace")
    if key in names:
        return names[key]
    candidate = env_name(key)
    return candidate if lookup(candidate) is not None else None


@dataclass(frozen=True)
class Rendered:
    """Repo bytes with placeholders filled; `data` is None when any secret is missing."""

    data: bytes | None
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def render(data: bytes, lookup: Lookup, names: Mapping[str, str] | None = None) -> Rendered:
    """Fill every placeholder byte-exactly; any value round-trips whatever it contains."""
    if MARKER not in data:
        return Rendered(data)
    if data.startswith(BASE64_PREFIX):
        whole = PLACEHOLDER.fullmatch(data, len(BASE64_PREFIX))
        if whole is not None:
            return _render_base64(whole["name"].decode(), lookup)
    names = names or {}
    out: list[bytes] = []
    used: set[str] = set()
    missing: set[str] = set()
    position = 0
    for match in re.finditer(PLACEHOLDER.pattern + rb"|" + BARE.pattern, data):
        out.append(data[position : match.start()])
        position = match.end()
        name = match["name"].decode() if match["name"] else None
        if name is None:
            name = bare_name(data, match.start(), names, lookup)
            if name is None:
                line = data.count(b"\n", 0, match.start()) + 1
                missing.add(f"{BARE_MISSING}{line}")
                continue
        value = lookup(name)
        if value is None:
            missing.add(name)
            continue
        used.add(name)
        out.append(value.encode("utf-8"))
    out.append(data[position:])
    if missing:
        return Rendered(None, tuple(sorted(used)), tuple(sorted(missing)))
    return Rendered(b"".join(out), tuple(sorted(used)))


def _render_base64(name: str, lookup: Lookup) -> Rendered:
    """A binary secret file: the stored base64 decoded (a value that is not base64 is missing:
    never written half-decoded)."""
    value = lookup(name)
    try:
        decoded = base64.b64decode(value or "", validate=True) if value is not None else None
    except (binascii.Error, ValueError):
        decoded = None
    if decoded is None:
        return Rendered(None, (), (name,))
    return Rendered(decoded, (name,))


def missing_reason(missing: Sequence[str], store: Path | None) -> str:
    """Why a file is blocked, for the plan: the names to add to the store, and where a bare
    REDACTED that nothing names is (it needs a map, not a value)."""
    names = [m for m in missing if not m.startswith(BARE_MISSING)]
    lines = [m.removeprefix(BARE_MISSING) for m in missing if m.startswith(BARE_MISSING)]
    parts = []
    if names:
        where = f" (add them to {store})" if store else ""
        parts.append(f"missing secrets: {', '.join(names)}{where}")
    if lines:
        on = f"line {lines[0]}" if len(lines) == 1 else f"lines {', '.join(lines)}"
        parts.append(f"bare REDACTED with no name on {on}: {BARE_HINT}")
    return "; ".join(parts)


def mask(text: str, secrets: Mapping[str, str], label: str = "(secret {})") -> str:
    """Replace every known secret value in `text` by `label` with its NAME (`(secret NAME)`),
    longest values first."""
    for name, value in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
        if len(value) >= 4 and value in text and not is_marker_value(value):
            text = text.replace(value, label.format(name))
    return text
