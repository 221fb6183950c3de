"""Key-name rules: which keys name a secret, and which values are not secrets anyway."""

from __future__ import annotations

import re
from functools import lru_cache


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A key word containing one of these names a secret (`WEBPASSWORD`, `PlexOnlineToken`).
_SECRET_SUBSTRINGS = _words(
    """password passwd passphrase passkey secret token pwhash credential apikey authkey
    privatekey accesskey secretkey licensekey presharedkey bindpw"""
)
# ...and these only as whole words (`PG_PASS`, but not `passthrough` or `bypass`).
_SECRET_WORDS = _words("pass pwd psk pw")
# `<word>_key` names a secret after one of these; a lone `key` does too (homepage widgets).
_KEY_QUALIFIERS = _words(
    """api auth private secret access encryption encrypt signing sign license licence master
    session installation push preshared app client consumer shared wg wireguard hmac jwt cookie
    crypt crypto storage secure account bot webhook enc admin service server"""
)
# Keys whose last word says the value is about a secret, not the secret (`token_expiry`).
_NOT_SECRET_TAILS = _words(
    """expiry expires expiration expire ttl lifetime timeout length len size type types url uri
    urls endpoint path file files dir directory name names user username id ids enabled enable
    disabled required min max count policy format algorithm algo header prefix mode method
    version age interval duration hint rotation field attempts retries strength encoding
    location host port env var source mount generator provider reset days hours minutes seconds
    level label description placeholder regex pattern store manager backend command cmd script
    help text title rules complexity auth language lang locale timezone tz ciphers cipher
    protocols protocol suites algorithms attribute scheme"""
)
# Web server directives that hold an upstream address, not a password (`proxy_pass`).
_DIRECTIVE_PASS = _words("proxy fastcgi uwsgi scgi grpc memcached passenger")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")

# One of these is in every key `names_secret` accepts (the scan's cheap pre-filter).
KEY_WORDS = _words("pass pwd psk pw secret token key credential basicauth digestauth")


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
        return words[-3:] == ("access", "key", "id")  # S3/AWS access key ids are credentials
    if words[0] in _DIRECTIVE_PASS and len(words) > 1 and words[1] == "pass":
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


# Values that are not secrets.

_REFERENCE = re.compile(
    r"""(?xi)
    \$\{[^}]*\}? | ^\$[A-Za-z_][A-Za-z0-9_]*$ | \{\{ | \{% | %\([A-Za-z0-9_]+\)s
    | ^\$[0-9@*\#?!$-]$ | \$\( | ^`[^`]*`$
    | ^!secret\s | ^@[A-Za-z0-9_]+@$ | ^%[A-Za-z0-9_]+%$
    | ^/run/secrets/ | ^/var/run/secrets/
    | __REDACTED_ | ^REDACTED$ | ^\[[^\[\]]*\]$
    | ^(?:true|false|yes|no|on|off|enabled?|disabled?|null|none|nil|~|\*+|x+|\.+|-+|_+)$
    """
)
# Words that ask for a value (`your_password`, `<YOUR-KEY>`, `MyStrongLoginPassword`): in a docs
# or example repo nothing is filled in yet, but on a live host they are the password the service
# really uses, so capture (`live`) redacts them like any other value.
_TEMPLATE_REQUEST = re.compile(
    r"""(?xi)
    ^<+[^<>]*>+$
    | ^(?:placeholder|todo|tbd|fixme|dummy)$
    | ^(?:your|enter|insert)[-_ ].*$
    | (?:^|[-_ ])(?:you[-_ ]must[-_ ]|must[-_ ]be[-_ ]changed|replace[-_ ]?(?:me|this)\b)
    | [-_]x{4,}$
    | (?-i:^(?:Your|Some|My)(?:[A-Z][a-z]+)+$)
    """
)
_NUMBER_FLAG = re.compile(r"-?[0-9]{1,5}(?:\.[0-9]+)?")
# Version specs (`^4.0.0`, `>=1.2`, `v2.3.1-rc1`), durations and sizes (`10s`, `512M`).
_VERSION_OR_SIZE = re.compile(
    r"(?:[\^~<>=!]{0,2}[ ]?v?[0-9]+(?:\.[0-9x*]+)+(?:[-+][0-9A-Za-z.-]+)?"
    r"|[0-9]{1,6}(?:\.[0-9]+)?(?:ms|s|m|h|d|w|[kmgt]i?b?))",
    re.IGNORECASE,
)
# A relative path of lower-case words (nginx unit `"pass": "routes/main"`): a route, not a password.
_ROUTE = re.compile(r"[a-z][a-z0-9_-]*(?:/[a-z0-9_.-]+)+")
# A lone `key` holding one plain lower-case word is a field name (`"key": "host"`), not a key.
_PLAIN_WORD = re.compile(r"[a-z][a-z_.-]{0,30}")


# `${VAR:-default}`, `${VAR:default}`, `${VAR-default}`, `${VAR:=default}`: the default is what
# runs when the variable is unset, so it is judged like any value under the key.
# Shell forms take an identifier; Spring's `${a.b.c:default}` a dotted name and `:` only.
_DEFAULT = re.compile(
    r"\$\{(?:[A-Za-z_][A-Za-z0-9_]*(?::?[-=]|:)|[A-Za-z_][A-Za-z0-9_.-]*:)"
    r"(?P<default>[^${}\s]+)\}"
)


def reference_defaults(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the defaults inside references in text[start:end]."""
    return [m.span("default") for m in _DEFAULT.finditer(text, start, end)]


def is_reference(value: str, *, live: bool = False) -> bool:
    """Placeholders, `${VAR}`, `{{ ... }}`, `!secret x`, `/run/secrets/...`, empty, booleans;
    and unless the value is `live` (a host file's), a request to fill one in (`your_password`)."""
    value = value.strip()
    return (
        not value
        or _REFERENCE.search(value) is not None
        or (not live and _TEMPLATE_REQUEST.search(value) is not None)
    )


# A file path (two segments at least, no base64 `+` or `=`): `ssl_key: /etc/ssl/private/a.pem`.
_FILE_PATH = re.compile(r"(?:~|\.\.?)?/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+/?")


def plausible(value: str, *, live: bool = False) -> bool:
    """Value shape for key-name rules: `http_hash_password = 0` is a flag, not a password."""
    value = value.strip()
    return not (
        is_reference(value, live=live)
        or _NUMBER_FLAG.fullmatch(value)
        or _FILE_PATH.fullmatch(value)
        or _VERSION_OR_SIZE.fullmatch(value)
    )


# `user:password` under an `auth` key (`http_auth: admin:admin`).
_USER_PASSWORD = re.compile(r"[^:\s/@]+:[^:\s/@]+")


def user_password(key: str, value: str) -> bool:
    words = key_words(key)
    return bool(words) and words[-1] == "auth" and _USER_PASSWORD.fullmatch(value) is not None


# One token (no `.` or `/`: `server.key` is a file) that calls itself a key or a secret.
_SELF_DESCRIBED = re.compile(r"[A-Za-z0-9_-]*(?:key|secret|pass|token)[A-Za-z0-9_-]*", re.I)


def self_described(key: str, value: str) -> bool:
    """`MEILISEARCH_KEY=masterkey`: a `<name>_key` no qualifier makes secret (`sort_key`), whose
    value says it is one."""
    words = key_words(key)
    return len(words) > 1 and words[-1] == "key" and _SELF_DESCRIBED.fullmatch(value) is not None


def plausible_for(key: str, value: str, *, live: bool = False) -> bool:
    """`plausible`, and a lone `key` must hold more than one plain word, a lone `pass` more
    than a route."""
    words = key_words(key)
    if words == ("key",) and _PLAIN_WORD.fullmatch(value.strip()):
        return False
    if words == ("pass",) and _ROUTE.fullmatch(value.strip()):
        return False
    return plausible(value, live=live)
