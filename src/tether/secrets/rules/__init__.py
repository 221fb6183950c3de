"""Detection rules shared by redaction and the scanner.

Two kinds of rule: known token formats (found anywhere, whatever the file), and key-name rules
(a value whose key names a secret), read per format so that exactly the value's characters are
reported: inside the quotes, without a trailing comment. `find_secrets` returns offsets into the
`str` it is given; `text[m.start:m.end]` is the secret.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import PurePosixPath

from tether.secrets.rules.formats import SFTP_USERS, Slot, comment_pairs, file_format
from tether.secrets.rules.formats import pairs as file_pairs
from tether.secrets.rules.keys import (
    KEY_WORDS,
    is_reference,
    key_words,
    names_secret,
    plausible,
    plausible_for,
    reference_defaults,
    self_described,
    user_password,
)
from tether.secrets.rules.tokens import (
    CONNECTION_PASSWORD,
    DISCORD_HOST,
    TOKEN_RULES,
    TOKEN_WORDS,
    URL_PASSWORD,
    WIREGUARD_KEY,
)

# A file holding none of these has no secret any rule can find.
KEYWORDS: frozenset[str] = KEY_WORDS | TOKEN_WORDS | {"://"}
# ...except a file of these names, whose format says where its secrets are (`user:password:...`).
KEYWORD_FREE: frozenset[str] = frozenset({SFTP_USERS})


@dataclass(frozen=True)
class SecretMatch:
    rule: str  # rule id, e.g. "github-pat", "key-name", "url-password", "pem-private-key"
    start: int  # offset of the secret's first character in `text`
    end: int  # offset after its last character
    line: int  # 1-based line of `start`
    key: str | None  # the key/attribute/variable the value is assigned to, when known
    commented: bool = False  # in a commented-out assignment (`# DB_PASSWORD=x`)


def _line_of(starts: list[int], offset: int) -> int:
    return bisect_right(starts, offset)


def find_secrets(text: str, path: str) -> list[SecretMatch]:
    """Secrets in `text` (the content of `path`), sorted by start and non-overlapping."""
    return scan(text, path)[0]


def scan(text: str, path: str, *, live: bool = False) -> tuple[list[SecretMatch], list[Slot]]:
    """`find_secrets`, and every key/value slot of the file (secret or not), from one parse.

    `live`: the file is a host's, so a value asking to be filled in is the one in use
    (`is_reference`)."""
    lowered = text.lower()
    if not any(word in lowered for word in KEYWORDS) and (
        PurePosixPath(path).name not in KEYWORD_FREE
    ):
        return [], []
    pairs = list(file_pairs(text, path))
    # start, end, rule, key, rank, commented
    candidates: list[tuple[int, int, str, str | None, int, bool]] = []
    commented = list(comment_pairs(text, path))
    # A commented-out assignment is judged like an active one: the line reaches git all the same.
    for index, pair in enumerate((*pairs, *commented)):
        value = text[pair.start : pair.end]
        if not (
            names_secret(pair.key)
            or user_password(pair.key, value)
            or self_described(pair.key, value)
        ):
            continue
        spans = [(pair.start, pair.end)]
        if "${" in text[pair.start : pair.end]:
            spans = reference_defaults(text, pair.start, pair.end)
        for start, end in spans:
            value = text[start:end]
            if not plausible_for(pair.key, value, live=live):
                continue
            rule = "key-name"
            if WIREGUARD_KEY.fullmatch(value) and any(
                w in ("private", "preshared", "wireguard", "wg") or "privatekey" in w
                for w in key_words(pair.key)
            ):
                rule = "wireguard-private-key"
            candidates.append((start, end, rule, pair.key, 1, index >= len(pairs)))
    for rule, words, pattern in TOKEN_RULES:
        if not any(word in lowered for word in words):
            continue
        for match in pattern.finditer(text):
            host_from = max(0, match.start() - 40)
            if rule == "discord-webhook" and not DISCORD_HOST.search(
                text, host_from, match.start()
            ):
                continue
            candidates.append((match.start(), match.end(), rule, None, 0, False))
    for match in URL_PASSWORD.finditer(text) if "://" in text else ():
        if not is_reference(match["pw"], live=live):
            candidates.append((match.start("pw"), match.end("pw"), "url-password", None, 2, False))
    # Last in rank: on the same span a `PASSWORD=x` pair stays a key-name finding.
    for match in CONNECTION_PASSWORD.finditer(text) if "=" in text else ():
        value = match["pw"]
        if plausible(value, live=live) and not value.startswith(("$", "%", "{")):
            start, end = match.span("pw")
            candidates.append((start, end, "connection-string-password", None, 3, False))
    # Widest span wins; on equal spans a token rule's id is more telling than key-name.
    candidates.sort(key=lambda c: (c[0], -(c[1] - c[0]), c[4]))
    pair_at = sorted((p.start, p.end, p.key) for p in pairs)
    pair_starts = [p[0] for p in pair_at]
    line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
    chosen: list[SecretMatch] = []
    last_end = -1
    for start, end, rule, found_key, _rank, in_comment in candidates:
        if start < last_end:
            continue
        key = found_key
        if key is None:
            index = bisect_right(pair_starts, start) - 1
            if index >= 0 and pair_at[index][1] >= end:
                key = pair_at[index][2]
        line = _line_of(line_starts, start)
        chosen.append(SecretMatch(rule, start, end, line, key, in_comment))
        last_end = end
    return chosen, pairs


__all__ = [
    "KEYWORDS",
    "KEYWORD_FREE",
    "SecretMatch",
    "Slot",
    "file_format",
    "find_secrets",
    "is_reference",
    "key_words",
    "names_secret",
    "scan",
]
