"""Detection rules shared by redaction and the scanner.

Two kinds of rule: known token formats (found anywhere, whatever the file), and key-name rules
(a value whose key names a secret), read per format so that exactly the value's characters are
reported: inside the quotes, without a trailing comment. `find_secrets` returns offsets into the
`str` it is given; `text[m.start:m.end]` is the secret.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath


@dataclass(frozen=True)
class SecretMatch:
    rule: str  # rule id, e.g. "github-pat", "key-name", "url-password", "pem-private-key"
    start: int  # offset of the secret's first character in `text`
    end: int  # offset after its last character
    line: int  # 1-based line of `start`
    key: str | None  # the key/attribute/variable the value is assigned to, when known


@dataclass(frozen=True)
class Slot:
    """A value assigned to a key, with its YAML parents (redaction derives names from these)."""

    key: str
    start: int
    end: int
    parents: tuple[str, ...] = ()  # enclosing YAML keys, outermost first


# --- known token formats ---------------------------------------------------------------------

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
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}={0,2}\.eyJ[A-Za-z0-9_-]{10,}={0,2}\."
            r"[A-Za-z0-9_-]{10,}={0,2}",
        ),
        ("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    )
)
_CLOUDFLARE = tuple(f"cf{c}t_" for c in "abcdefghijklmnopqrstuvwxyz")
# Lower-case words one of which is in any text a rule can match: rules whose words are absent
# are not run at all (most files need two or three of the fifteen patterns).
_RULE_WORDS: dict[str, tuple[str, ...]] = {
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
    "age-secret-key": ("age-secret-key-1",),
}
_TOKEN_RULES = tuple((rule, _RULE_WORDS[rule], pattern) for rule, pattern in _TOKEN_PATTERNS)
_DISCORD_HOST = re.compile(r"discord(?:app)?\.com/api/webhooks/$")
# The password of `scheme://user:PASSWORD@host`; stops at characters a URL would escape.
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'<>`]*:(?P<pw>[^\s@/\"'<>`]+)@"
    r"(?=[^\s@/\"'<>`])",
    re.ASCII,
)
_WIREGUARD_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")

# --- key names -------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A key word containing one of these names a secret (`WEBPASSWORD`, `PlexOnlineToken`).
_SECRET_SUBSTRINGS = _words(
    """password passwd passphrase passkey secret token pwhash credential apikey authkey
    privatekey accesskey secretkey licensekey presharedkey"""
)
# ...and these only as whole words (`PG_PASS`, but not `passthrough` or `bypass`).
_SECRET_WORDS = _words("pass pwd psk pw")
# `<word>_key` names a secret after one of these; a lone `key` does too (homepage widgets).
_KEY_QUALIFIERS = _words(
    """api auth private secret access encryption encrypt signing sign license licence master
    session installation push preshared app client consumer shared wg wireguard hmac jwt cookie
    crypt storage secure account bot webhook enc admin service server"""
)
# Keys whose last word says the value is about a secret, not the secret (`token_expiry`).
_NOT_SECRET_TAILS = _words(
    """expiry expires expiration expire ttl lifetime timeout length len size type types url uri
    urls endpoint path file files dir directory name names user username id ids enabled enable
    disabled required min max count policy format algorithm algo header prefix mode method
    version age interval duration hint rotation field attempts retries strength encoding
    location host port env var source mount generator provider reset days hours minutes seconds
    level label description placeholder regex pattern store manager backend command cmd script
    help text title rules complexity auth"""
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")

KEYWORDS: frozenset[str] = frozenset(
    {"pass", "pwd", "psk", "pw", "secret", "token", "key", "credential", "://"}
    | {"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "hooks.slack.com"}
    | {"akia", "asia", "abia", "acca", "a3t", "k_live_", "k_prod_", "tskey-", "webhooks/", ":a"}
    | {"eyj", "age-secret-key-1", "basicauth", "digestauth"}
    | set(_CLOUDFLARE)
)


@lru_cache(maxsize=4096)
def key_words(key: str) -> tuple[str, ...]:
    """`PlexOnlineToken` / `api-key` / `db.password` -> lower-case words."""
    spaced = _CAMEL.sub(lambda m: f"{m[1] or m[3]}_{m[2] or m[4]}", key)
    return tuple(w.lower() for w in _WORD_SPLIT.split(spaced) if w)


@lru_cache(maxsize=4096)
def names_secret(key: str) -> bool:
    """Does this key name a secret? Any case; snake, kebab, camel, dotted or spaced."""
    words = key_words(key)
    if not words or words[-1] in _NOT_SECRET_TAILS:
        return False
    if words[-1] == "users" and any("basicauth" in w or "digestauth" in w for w in words):
        return True  # traefik `...basicauth.users=user:$$apr1$$hash`: password hashes
    if words == ("key",) or (
        len(words) > 1 and words[-1] == "key" and words[-2] in _KEY_QUALIFIERS
    ):
        return True
    for word in words:
        if word in _SECRET_WORDS or any(s in word for s in _SECRET_SUBSTRINGS):
            return True
    return False


# --- values that are not secrets ------------------------------------------------------------

_REFERENCE = re.compile(
    r"""(?xi)
    \$\{[^}]*\}? | ^\$[A-Za-z_][A-Za-z0-9_]*$ | \{\{ | \{% | %\([A-Za-z0-9_]+\)s
    | ^\$[0-9@*\#?!$-]$ | \$\( | ^`[^`]*`$
    | ^!secret\s | ^@[A-Za-z0-9_]+@$ | ^%[A-Za-z0-9_]+%$
    | ^/run/secrets/ | ^/var/run/secrets/
    | __REDACTED_ | ^REDACTED$ | ^<[^<>]*>$ | ^\[[^\[\]]*\]$
    | ^(?:true|false|yes|no|on|off|enabled?|disabled?|null|none|nil|~|\*+|x+|\.+|-+|_+)$
    | ^(?:change[-_ ]?me|changeit|secret|password|placeholder|todo|tbd|fixme)$
    | ^(?:your|my|enter|insert)[-_ ].*$
    """
)
_NUMBER_FLAG = re.compile(r"-?[0-9]{1,5}(?:\.[0-9]+)?")


def is_reference(value: str) -> bool:
    """Placeholders, `${VAR}`, `{{ ... }}`, `!secret x`, `/run/secrets/...`, empty, booleans."""
    value = value.strip()
    return not value or _REFERENCE.search(value) is not None


# A file path (two segments at least, no base64 `+` or `=`): `ssl_key: /etc/ssl/private/a.pem`.
_FILE_PATH = re.compile(r"(?:~|\.\.?)?/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+/?")


def _plausible(value: str) -> bool:
    """Value shape for key-name rules: `http_hash_password = 0` is a flag, not a password."""
    value = value.strip()
    return not (is_reference(value) or _NUMBER_FLAG.fullmatch(value) or _FILE_PATH.fullmatch(value))


# --- per-format extraction of key/value pairs ------------------------------------------------


@dataclass(frozen=True)
class _Pair:
    key: str
    start: int
    end: int
    parents: tuple[str, ...] = ()


def _quoted(text: str, pos: int, *, backslash: bool, doubled: bool = False) -> int | None:
    """Position of the closing quote of the string opening at `pos`, or None."""
    quote = text[pos]
    i = pos + 1
    n = len(text)
    while i < n:
        char = text[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if doubled and i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i
        i += 1
    return None


def _plain_end(text: str, pos: int, eol: int, comments: str) -> int:
    """End of an unquoted value: before ` #` (or another comment char), trailing spaces cut."""
    end = eol
    for char in comments:
        for lead in (" ", "\t"):
            found = text.find(lead + char, pos, end)
            if found >= 0:
                end = found
    if end > pos and text[pos] in comments:
        end = pos
    while end > pos and text[end - 1] in " \t\r":
        end -= 1
    return end


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end-of-line) of every line; the end excludes the newline."""
    pos = 0
    n = len(text)
    while pos <= n:
        eol = text.find("\n", pos)
        if eol < 0:
            if pos < n:
                yield pos, n
            return
        yield pos, eol
        pos = eol + 1


def _value(
    text: str, pos: int, eol: int, *, comments: str, backslash: bool, doubled: bool = False
) -> tuple[int, int] | None:
    """Span of the value starting at `pos` (inside quotes when quoted)."""
    if pos >= eol:
        return None
    if text[pos] in "\"'":
        close = _quoted(text, pos, backslash=backslash and text[pos] == '"', doubled=doubled)
        return None if close is None else (pos + 1, close)
    end = _plain_end(text, pos, eol, comments)
    return (pos, end) if end > pos else None


_ENV_LINE = re.compile(r"[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*=[ \t]*")
_INI_LINE = re.compile(r"[ \t]*(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\- ]*?)[ \t]*[=:][ \t]*")
_TOML_LINE = re.compile(
    r"[ \t]*(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"\n]*\"|'[^'\n]*')"
    r"(?:[ \t]*\.[ \t]*(?:[A-Za-z0-9_-]+|\"[^\"\n]*\"|'[^'\n]*'))*)[ \t]*=[ \t]*"
)
_GENERIC_LINE = re.compile(
    r"[ \t]*(?:export[ \t]+|-[ \t]+|set[ \t]+)?[\"']?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)[\"']?"
    r"[ \t]*(?::(?=[ \t])|=|:=)[ \t]*"
)


# Escapes and characters that make a quoted string invalid in each format. A value ends before
# the first one, so a file that did not parse still does not parse once redacted.
def _badness(valid_escapes: str, controls: str) -> re.Pattern[str]:
    bad = r"(?P<bad>\\" + (f"|[{controls}])" if controls else ")")
    return re.compile(rf"(?P<ok>\\(?:{valid_escapes}))|{bad}")


_UNI = r"u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}"
_BAD_JSON = _badness(r'["\\/bfnrt]|u[0-9a-fA-F]{4}', r"\x00-\x1f")
_BAD_YAML_DOUBLE = _badness(r'[0abt\tnvfre "/\\N_LP\n]|x[0-9a-fA-F]{2}|' + _UNI, "")
_BAD_TOML_BASIC = _badness(r'[btnfr"\\]|' + _UNI, r"\x00-\x08\x0a-\x1f\x7f")
_BAD_TOML_MULTI = _badness(r'[btnfr"\\]|[ \t]*\r?\n|' + _UNI, r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f")
_BAD_TOML_LITERAL = re.compile(r"(?P<bad>[\x00-\x08\x0a-\x1f\x7f])")
_BAD_TOML_MULTI_LITERAL = re.compile(r"(?P<bad>[\x00-\x08\x0b\x0c\x0e-\x1f\x7f])")


def _cut(text: str, start: int, end: int, bad: re.Pattern[str]) -> tuple[int, int]:
    for found in bad.finditer(text, start, end):
        if found["bad"] is not None:
            return start, found.start()
    return start, end


def _line_pairs(
    text: str, line_re: re.Pattern[str], comments: str, kind: str = "generic"
) -> Iterator[_Pair]:
    skip_to = 0
    for start, eol in _lines(text):
        if start < skip_to:
            continue
        first = text[start:eol].lstrip(" \t")[:1]
        if not first or first in comments or first == "[":
            continue
        match = line_re.match(text, start, eol)
        if match is None:
            continue
        pos = match.end()
        key = match["key"].strip().strip("\"'")
        if text.startswith(('"""', "'''"), pos):  # TOML multi-line string
            close = text.find(text[pos : pos + 3], pos + 3)
            if close >= 0:
                first = text[
                    pos + 3 : pos + 5
                ]  # a newline right after the opening quotes is trimmed
                inner = pos + 3 + (2 if first == "\r\n" else 1 if first[:1] == "\n" else 0)
                literal = text[pos] == "'"
                bad = _BAD_TOML_MULTI_LITERAL if literal else _BAD_TOML_MULTI
                yield _Pair(key, *_cut(text, inner, close, bad))
                skip_to = close
            continue
        if kind == "ini":
            span = _ini_value(text, pos, eol, comments)
        elif kind == "toml":
            if text[pos : pos + 1] not in ("'", '"'):
                continue  # numbers, booleans, dates, arrays: a placeholder there would not parse
            span = _value(text, pos, eol, comments=comments, backslash=True)
            if span is not None:
                bad = _BAD_TOML_BASIC if text[pos] == '"' else _BAD_TOML_LITERAL
                span = _cut(text, *span, bad)
        else:
            span = _value(text, pos, eol, comments=comments, backslash=True)
            prose = span is not None and any(c in text[span[0] : span[1]] for c in " \t")
            if kind == "generic" and prose and text[pos] not in "\"'":
                continue  # prose (`Password: use the vault`), not an assignment
        if span is not None:
            yield _Pair(key, *span)
            skip_to = span[1]


def _ini_value(text: str, pos: int, eol: int, comments: str) -> tuple[int, int] | None:
    """configparser keeps quotes as part of the value; `"x"` whole is read as quoted anyway."""
    end = _plain_end(text, pos, eol, comments)
    if end - pos >= 2 and text[pos] in "\"'" and text[end - 1] == text[pos]:
        return pos + 1, end - 1
    return (pos, end) if end > pos else None


_YAML_KEY = re.compile(
    r"(?P<key>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s#'\"\-?:,\[\]{}&*!|>%@`][^\n]*?|-[^\s][^\n]*?)"
    r"[ \t]*:(?=[ \t\r]|$)"
)
_YAML_LIST_ENV = re.compile(r"(?P<q>[\"']?)-{0,2}(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)=")
_YAML_BLOCK = re.compile(r"[|>][+-]?[0-9]?[+-]?[ \t]*(?:#[^\r\n]*)?\r?$")
_YAML_PROPS = re.compile(r"(?:&[^\s]+|!![A-Za-z]+)[ \t]+")


def _yaml_pairs(text: str) -> Iterator[_Pair]:
    stack: list[tuple[int, str]] = []  # (indent, key) of open mappings, for names
    skip_to = 0
    for start, eol in _lines(text):
        if start < skip_to:
            continue
        body = text[start:eol]
        stripped = body.lstrip(" \t")
        if not stripped or stripped[0] == "#" or stripped.startswith(("---", "...")):
            continue
        pos = start + len(body) - len(stripped)
        listed = False
        while text.startswith(("- ", "-\t"), pos):
            listed = True
            pos += 2
            while pos < eol and text[pos] in " \t":
                pos += 1
        key_indent = pos - start
        while stack and stack[-1][0] >= key_indent:
            stack.pop()
        pair: _Pair | None = None
        if listed:
            pair = _yaml_list_env(text, pos, eol)
        if pair is None:
            match = _YAML_KEY.match(text, pos, eol)
            if match is None:
                continue
            key = match["key"]
            key = key[1:-1] if key[:1] in "\"'" else key
            pair = _yaml_value(text, key, match.end(), eol, key_indent)
            if pair is None:
                stack.append((key_indent, key))
                continue
        if pair.end > pair.start:
            yield _Pair(pair.key, pair.start, pair.end, _parents(stack))
            skip_to = pair.end


def _yaml_list_env(text: str, pos: int, eol: int) -> _Pair | None:
    """Compose's `- KEY=value` / `- "KEY=value"` environment items."""
    env = _YAML_LIST_ENV.match(text, pos, eol)
    if env is None or ": " in text[pos : env.start("key")]:
        return None
    vstart = env.end()
    if env["q"]:
        quote = env["q"]
        close = _quoted(text, env.start("q"), backslash=quote == '"', doubled=quote == "'")
        if close is None or close > eol:
            return _Pair("", 0, 0)
        if quote == '"':
            return _Pair(env["key"], *_cut(text, vstart, close, _BAD_YAML_DOUBLE))
        return _Pair(env["key"], vstart, close)
    return _Pair(env["key"], vstart, _yaml_plain_end(text, vstart, eol))


def _yaml_value(text: str, key: str, pos: int, eol: int, key_indent: int) -> _Pair | None:
    """The value after `key:`; None when the key opens a nested mapping or list."""
    while pos < eol and text[pos] in " \t\r":
        pos += 1
    props = _YAML_PROPS.match(text, pos, eol)
    if props is not None:
        pos = props.end()
    if pos >= eol or text[pos] == "#":
        return None
    empty = _Pair(key, 0, 0)
    if _YAML_BLOCK.match(text, pos, eol):
        span = _yaml_block(text, eol, key_indent)
        return empty if span is None else _Pair(key, *span)
    if text[pos] in "[{*":
        return empty
    if text[pos] in "\"'":
        close = _quoted(text, pos, backslash=text[pos] == '"', doubled=text[pos] == "'")
        if close is None:
            return empty
        if text[pos] == '"':
            return _Pair(key, *_cut(text, pos + 1, close, _BAD_YAML_DOUBLE))
        return _Pair(key, pos + 1, close)
    if text[pos] in "@`":  # cannot start a plain scalar: the file is not YAML, keep it so
        pos += 1
    return _Pair(key, pos, _yaml_plain_end(text, pos, eol))


def _yaml_plain_end(text: str, pos: int, eol: int) -> int:
    """A plain scalar ends before ` #` and before `: ` (which would make it a mapping)."""
    end = _plain_end(text, pos, eol, "#")
    for indicator in (": ", ":\t"):
        found = text.find(indicator, pos, end)
        if found >= 0:
            end = found
    if end > pos and text[end - 1] == ":" and text[end:eol].strip(" \t\r") == "":
        end -= 1
    while end > pos and text[end - 1] in " \t":
        end -= 1
    return end


def _parents(stack: list[tuple[int, str]]) -> tuple[str, ...]:
    return tuple(key for _, key in stack)


def _yaml_block(text: str, header_eol: int, key_indent: int) -> tuple[int, int] | None:
    """Span of a `|`/`>` block's content: first content character to end of last content line."""
    first = last = -1
    block_indent = 0
    pos = header_eol + 1
    n = len(text)
    while pos < n:
        eol = text.find("\n", pos)
        eol = n if eol < 0 else eol
        line = text[pos:eol]
        content = line.lstrip(" ")
        if content.strip():
            indent = len(line) - len(content)
            if indent <= key_indent or (first >= 0 and indent < block_indent):
                break  # the block ended (or is broken: a less indented line stays outside)
            if first < 0:
                first = pos + indent
                block_indent = indent
            last = eol
        pos = eol + 1
    if first < 0:
        return None
    while last > first and text[last - 1] in " \t\r":
        last -= 1
    return first, last


_JSON_PAIR = re.compile(r"\"(?P<key>(?:[^\"\\\n]|\\.){1,200})\"[ \t\r\n]*:[ \t\r\n]*\"")


def _json_pairs(text: str) -> Iterator[_Pair]:
    pos = 0
    while True:
        match = _JSON_PAIR.search(text, pos)
        if match is None:
            return
        vstart = match.end()
        close = _quoted(text, vstart - 1, backslash=True)
        if close is None:
            return
        yield _Pair(match["key"], *_cut(text, vstart, close, _BAD_JSON))
        pos = close + 1


_XML_ATTR = re.compile(r"(?<=[\s])(?P<key>[A-Za-z_][A-Za-z0-9_.:\-]*)[ \t]*=[ \t]*(?P<q>[\"'])")
_XML_ELEMENT = re.compile(
    r"<(?P<key>[A-Za-z_][A-Za-z0-9_.:\-]*)(?:\s[^<>]*)?(?<!/)>(?P<lead>\s*)(?P<value>[^<]*?)\s*"
    r"</(?P=key)\s*>"
)
_XML_NAMED = re.compile(
    r"<[A-Za-z_][^<>]*?\s(?:key|name)[ \t]*=[ \t]*[\"'](?P<key>[^\"'<>]+)[\"'][^<>]*?\s"
    r"value[ \t]*=[ \t]*(?P<q>[\"'])"
)


_XML_BAD = re.compile(r"<|&(?!(?:amp|lt|gt|quot|apos);|#[0-9]+;|#x[0-9A-Fa-f]+;)")


def _xml_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The value up to any `<` or bare `&`: those make the file not XML, and must stay so."""
    bad = _XML_BAD.search(text, start, end)
    end = bad.start() if bad else end
    return (start, end) if end > start else None


def _xml_pairs(text: str) -> Iterator[_Pair]:
    for match in _XML_ATTR.finditer(text):
        if match["key"] in ("key", "name", "id"):  # `<add key="ApiKey" value="...">`
            continue
        close = text.find(match["q"], match.end())
        span = _xml_span(text, match.end(), close) if close >= 0 else None
        if span is not None:
            yield _Pair(match["key"], *span)
    for match in _XML_NAMED.finditer(text):
        close = text.find(match["q"], match.end())
        span = _xml_span(text, match.end(), close) if close >= 0 else None
        if span is not None:
            yield _Pair(match["key"], *span)
    for match in _XML_ELEMENT.finditer(text):
        if match["value"] and not match["value"].startswith("<![CDATA["):
            span = _xml_span(text, match.start("value"), match.end("value"))
            if span is not None:
                yield _Pair(match["key"], *span)


def file_format(path: str) -> str:
    """yaml, json, toml, ini, xml, env or generic, from the file name."""
    name = PurePosixPath(path).name.lower()
    suffix = PurePosixPath(name).suffix
    if suffix in {".yml", ".yaml"}:
        return "yaml"
    if suffix in {".json", ".json5"}:
        return "json"
    if suffix == ".toml":
        return "toml"
    if suffix in {".xml", ".config", ".plist"}:
        return "xml"
    if suffix in {".ini", ".cfg", ".conf", ".cnf", ".properties"}:
        return "ini"
    if name == ".env" or name.startswith(".env.") or suffix == ".env" or name.endswith(".envrc"):
        return "env"
    return "generic"


def _pairs(text: str, path: str) -> Iterator[_Pair]:
    kind = file_format(path)
    if kind == "yaml":
        return _yaml_pairs(text)
    if kind == "json":
        return _json_pairs(text)
    if kind == "xml":
        return _xml_pairs(text)
    if kind == "toml":
        return _line_pairs(text, _TOML_LINE, "#", "toml")
    if kind == "ini":
        return _line_pairs(text, _INI_LINE, "#;", "ini")
    if kind == "env":
        return _line_pairs(text, _ENV_LINE, "#")
    return _line_pairs(text, _GENERIC_LINE, "#", "generic")


# --- putting it together ---------------------------------------------------------------------


def slots(text: str, path: str) -> list[Slot]:
    """Every value assigned to a secret-naming key, references and placeholders included."""
    return [
        Slot(p.key, p.start, p.end, p.parents) for p in _pairs(text, path) if names_secret(p.key)
    ]


def _line_of(starts: list[int], offset: int) -> int:
    return bisect_right(starts, offset)


def find_secrets(text: str, path: str) -> list[SecretMatch]:
    """Secrets in `text` (the content of `path`), sorted by start and non-overlapping."""
    return scan(text, path)[0]


def scan(text: str, path: str) -> tuple[list[SecretMatch], list[Slot]]:
    """`find_secrets`, and every key/value slot of the file (secret or not), from one parse."""
    lowered = text.lower()
    if not any(word in lowered for word in KEYWORDS):
        return [], []
    pairs = list(_pairs(text, path))
    candidates: list[tuple[int, int, str, str | None, int]] = []  # start, end, rule, key, rank
    for pair in pairs:
        value = text[pair.start : pair.end]
        if names_secret(pair.key) and _plausible(value):
            rule = "key-name"
            if _WIREGUARD_KEY.fullmatch(value) and any(
                w in ("private", "preshared", "wireguard", "wg") or "privatekey" in w
                for w in key_words(pair.key)
            ):
                rule = "wireguard-private-key"
            candidates.append((pair.start, pair.end, rule, pair.key, 1))
    for rule, words, pattern in _TOKEN_RULES:
        if not any(word in lowered for word in words):
            continue
        for match in pattern.finditer(text):
            host_from = max(0, match.start() - 40)
            if rule == "discord-webhook" and not _DISCORD_HOST.search(
                text, host_from, match.start()
            ):
                continue
            candidates.append((match.start(), match.end(), rule, None, 0))
    for match in _URL_PASSWORD.finditer(text) if "://" in text else ():
        if not is_reference(match["pw"]):
            candidates.append((match.start("pw"), match.end("pw"), "url-password", None, 2))
    # Widest span wins; on equal spans a token rule's id is more telling than key-name.
    candidates.sort(key=lambda c: (c[0], -(c[1] - c[0]), c[4]))
    pair_at = sorted((p.start, p.end, p.key) for p in pairs)
    pair_starts = [p[0] for p in pair_at]
    line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
    chosen: list[SecretMatch] = []
    last_end = -1
    for start, end, rule, found_key, _rank in candidates:
        if start < last_end:
            continue
        key = found_key
        if key is None:
            index = bisect_right(pair_starts, start) - 1
            if index >= 0 and pair_at[index][1] >= end:
                key = pair_at[index][2]
        chosen.append(SecretMatch(rule, start, end, _line_of(line_starts, start), key))
        last_end = end
    return chosen, [Slot(p.key, p.start, p.end, p.parents) for p in pairs]
