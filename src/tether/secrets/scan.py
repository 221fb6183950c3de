"""The scanning engine: which parts of a file can hold a secret, and which findings to report.

Per file: skip binaries and oversized files (counted), run the shared rules only when one of
their keywords occurs (the prefilter), add generic `key = value` assignments whose value looks
random (entropy), then drop tether's own placeholders and interpolations (`is_reference`),
lines marked `tether:allow`, and findings whose keyed fingerprint is in the baseline.

The secret itself never leaves this module: a `Finding` holds a masked preview and an HMAC
fingerprint keyed by a per-repo salt, so reports and baselines cannot be brute-forced offline.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import string
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import PurePosixPath
from typing import Protocol

from tether.secrets.render import BASE64_PREFIX, NAME_PATTERN, is_marker_value
from tether.secrets.wholefile import WHOLE_FILE_RULE, is_keystore, is_whole_file_secret
from tether.textsafe import looks_binary, printable

ALLOW_MARK = "tether:allow"
MAX_SIZE = 1024 * 1024  # files above this are skipped and counted (minified bundles, dumps)
STORE_VALUE_RULE = "store-value"  # a value of the secret store, verbatim
MIN_STORE_VALUE = 4
ENTROPY_RULE = "generic-high-entropy"
# In program source a hard-coded secret is a string literal; an unquoted value after a
# secret-sounding name is code (`key: str | None = None`, `password = ask()`), not a secret.
CODE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".cjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".go",
        ".rs",
        ".java",
        ".kt",
        ".rb",
        ".php",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cs",
        ".swift",
        ".lua",
        ".pl",
    ]
)
_KEY_NAME_RULES = frozenset({"key-name"})
# Dependency lockfiles: package names, versions and integrity hashes only (`js-tokens`).
LOCKFILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "Pipfile.lock",
        "Cargo.lock",
        "composer.lock",
        "Gemfile.lock",
        "go.sum",
        "uv.lock",
    }
)
# tether.yaml maps keys to secret NAMES (`jwt_secret: TAUTULLI_JWT_SECRET`): references.
_MANIFEST = "tether.yaml"
_SECRET_NAME = re.compile(NAME_PATTERN)
# `CHANGE_ME` is shaped like a variable's name, but it is the example password a host runs with.
_CHANGE_ME = re.compile(r"CHANGE_?ME(?:_[A-Z0-9]+)*")
_TEMPLATE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.\[\]'\"]*(?:![rsa])?(?::[^{}]*)?\}")


class MatchLike(Protocol):
    """What the shared rules return (tether.secrets.rules.SecretMatch)."""

    @property
    def rule(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def line(self) -> int: ...


FindFn = Callable[[str, str], Sequence[MatchLike]]
ReferenceFn = Callable[[str], bool]


@dataclass(frozen=True)
class RuleSet:
    """The detection rules the engine runs; injected so the engine can be tested on its own."""

    find: FindFn
    keywords: frozenset[str]
    is_reference: ReferenceFn
    # Rules a `tether:allow` comment cannot silence: known token formats and private keys.
    unallowable: frozenset[str] = frozenset()
    keyword_free: frozenset[str] = frozenset()  # file names read whatever words they hold


def default_rules() -> RuleSet:
    # Imported here: the rules compile their regexes on import.
    from tether.secrets.rules import (  # noqa: PLC0415
        KEYWORD_FREE,
        KEYWORDS,
        find_secrets,
        is_reference,
    )
    from tether.secrets.rules.tokens import RULE_WORDS  # noqa: PLC0415

    known_formats = frozenset(RULE_WORDS) | {"wireguard-private-key"}
    return RuleSet(find_secrets, KEYWORDS, is_reference, known_formats, KEYWORD_FREE)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    fingerprint: str
    preview: str  # masked: never the value
    commit: str | None = None

    def text(self) -> str:
        where = f"{self.path}:{self.line}: {self.rule}"
        shown = f" {self.preview}" if self.preview else ""
        commit = f" (commit {self.commit[:12]})" if self.commit else ""
        return printable(f"{where}{shown}{commit}")


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    files_skipped: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    baselined: int = 0
    unscanned: list[str] = field(default_factory=list)  # hook mode: too large, not allowed


def mask(secret: str) -> str:
    """What may be shown of a secret: its first two characters when it is long, else nothing."""
    return f"{secret[:2]}***" if len(secret) >= 24 else "***"


def fingerprint(salt: bytes, path: str, rule: str, context: str) -> str:
    """Keyed hash of where a finding is: the file, the rule and its line with the value cut out
    (`slot`). Nothing of the value goes in, so a committed baseline cannot be used to confirm
    a guessed password offline; it survives the line moving, not the line's other text changing.
    """
    message = "\0".join((path, rule, context)).encode("utf-8", "surrogateescape")
    return hmac.new(salt, message, hashlib.sha256).hexdigest()


SLOT_CONTEXT = 80  # characters of the line kept each side: a 1 MB one-line file stays cheap


def slot(text: str, start: int, end: int) -> str:
    """The line around text[start:end] (at most SLOT_CONTEXT characters each side), with that
    value replaced by a NUL."""
    line_start = max(text.rfind("\n", 0, start) + 1, start - SLOT_CONTEXT)
    line_end = text.find("\n", end, end + SLOT_CONTEXT)
    line_end = min(len(text), end + SLOT_CONTEXT) if line_end < 0 else line_end
    return (text[line_start:start] + "\0" + text[end:line_end]).strip()


def shannon(value: str) -> float:
    counts = Counter(value)
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


# -- generic high-entropy assignments ---------------------------------------------------------

# A run of token characters; the assignment before it is checked separately (cheaper than one
# regex that would retry the key at every offset).
_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_\-.~])[A-Za-z0-9+/_\-.~]{20,}={0,2}(?![A-Za-z0-9+/_\-.~=])")
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
_MAX_KEY = 80
# Keys whose long values are identifiers or digests, not credentials.
_BENIGN_LAST_WORDS = frozenset(
    [
        "sha",
        "sha1",
        "sha256",
        "sha512",
        "hash",
        "hashes",
        "digest",
        "digests",
        "checksum",
        "checksums",
        "integrity",
        "commit",
        "revision",
        "rev",
        "uuid",
        "guid",
        "id",
        "ids",
        "identifier",
        "version",
        "image",
        "url",
        "uri",
        "path",
        "file",
        "dir",
        "name",
        "host",
        "domain",
        "email",
        "icon",
        "color",
        "etag",
        "fingerprint",
        "thumbprint",
        "kid",
        "ciphers",
        "cipher",
        "suites",
        "protocols",
        "algorithms",
        "test",
        "command",
        "entrypoint",
        "healthcheck",
    ]
)
_KEY_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def benign_key(key: str) -> bool:
    """Keys whose long values are identifiers, digests or public keys, not credentials."""
    words = [w.lower() for w in _KEY_WORD.findall(key)]
    if not words:
        return False
    return words[-1] in _BENIGN_LAST_WORDS or any(w in ("public", "pubkey", "pub") for w in words)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGIT = re.compile(r"[0-9]")
_LETTER = re.compile(r"[A-Za-z]")
_DOTTED = re.compile(r"^[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+$")
_WORDY = re.compile(r"^[A-Za-z.\-_/]+$")


def looks_random(value: str) -> bool:
    """A long value with mixed character classes and high entropy for its length."""
    core = value.rstrip("=")
    if len(core) < 20 or _UUID.match(core) or _WORDY.match(core):
        return False
    if core[0] in "/." or "//" in core or ".." in core:
        return False  # paths and URLs
    if _DOTTED.match(core):
        return False  # module paths, host names, versions: random tokens hold no dots
    if _DIGIT.search(core) is None or _LETTER.search(core) is None:
        return False
    if _HEX.match(core):
        return len(core) >= 32 and shannon(core) >= 3.0
    # Random base62/base64 of n characters has entropy close to log2(n) up to ~6.
    ceiling = math.log2(min(len(core), 64))
    return shannon(core) >= max(3.6, ceiling - 0.9)


def assigned_key(text: str, start: int) -> str | None:
    """The key a value at `start` is assigned to: `key = v`, `key: v`, `"key": "v"`, `KEY=v`,
    `key := v`, `key => v`; None when no assignment precedes it on its line.

    Read backwards character by character: a regex searched over the line would retry at
    every offset, which is quadratic on a minified one-line file.
    """
    i = start
    quoted = i > 0 and text[i - 1] in "\"'`"
    if quoted:
        i -= 1
    value_at = i
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    spaced = i < value_at
    colon = False
    if text[max(0, i - 2) : i] in ("=>", ":="):
        i -= 2
    elif i > 0 and text[i - 1] in "=:":
        colon = text[i - 1] == ":"
        i -= 1
    else:
        return None
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    key_quoted = i > 0 and text[i - 1] in "\"'"
    if key_quoted:
        i -= 1
    if colon and not (spaced or quoted or key_quoted):
        return None  # `host:port/path` in a command line, not `key: value`
    end = i
    while i > 0 and end - i < _MAX_KEY and text[i - 1] in _KEY_CHARS:
        i -= 1
    key = text[i:end].lstrip("0123456789.-")
    return key or None


def entropy_matches(
    text: str, is_reference: ReferenceFn, *, code: bool = False
) -> list[tuple[int, int]]:
    """Spans of random-looking values assigned to a key (`key = v`, `key: v`, `KEY=v`, ...).

    In program source (`code`) only string literals count: an unquoted value there is an
    expression (`x = module.Draft202012Validator`), not data.
    """
    spans = []
    for match in _TOKEN.finditer(text):
        value = match.group()
        if text[match.end() : match.end() + 1] in ("(", "["):
            continue  # a call or an index: code
        if code and not _quoted_at(text, match.start()):
            continue
        if not looks_random(value):
            continue
        key = assigned_key(text, match.start())
        if key is None or benign_key(key):
            continue
        if is_reference(value):
            continue
        spans.append((match.start(), match.end()))
    return spans


# -- the engine -------------------------------------------------------------------------------


class Scanner:
    """Scans texts with one rule set, salt and baseline; collects a ScanResult."""

    def __init__(
        self,
        rules: RuleSet,
        salt: bytes,
        baseline: frozenset[str] = frozenset(),
        max_size: int = MAX_SIZE,
    ) -> None:
        self.rules = rules
        self.salt = salt
        self.baseline = baseline
        self.max_size = max_size
        self.result = ScanResult()
        self.path_filter: Callable[[str], bool] = lambda path: True
        self.known_values: tuple[str, ...] = ()  # the store's values: never in a committed file
        # Hook mode: what cannot be scanned fails the hook unless allowed; binary files are
        # still searched for known token formats.
        self.strict = False
        self.allow_unscanned: Callable[[str], bool] = lambda path: False
        self._seen: set[tuple[str, int, str, str]] = set()

    def skip(self, path: str, reason: str) -> None:
        self.result.files_skipped += 1
        self.result.skipped.append((path, reason))

    def scan_bytes(self, path: str, data: bytes, commit: str | None = None) -> None:
        if not self.path_filter(path):
            return
        if PurePosixPath(path).name in LOCKFILES and not self.strict:
            self.skip(path, "lockfile")
            return
        if len(data) > self.max_size:
            self.skip(path, f"larger than {self.max_size} bytes")
            if self.strict and not self.allow_unscanned(path):
                self.result.unscanned.append(path)
            return
        if looks_binary(data) and not is_keystore(path):  # a keystore: one whole-file finding
            if self.strict:
                self.result.files_scanned += 1
                self._collect(self._known_formats(path, data.decode("latin-1"), commit))
                return
            self.skip(path, "binary")
            return
        self.result.files_scanned += 1
        self._collect(self.scan_text(path, data.decode("utf-8", "replace"), commit))

    def _known_formats(self, path: str, text: str, commit: str | None) -> list[Finding]:
        """In a binary file only known token formats and private keys mean anything."""
        return [f for f in self.scan_text(path, text, commit) if f.rule in self.rules.unallowable]

    def _collect(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            key = (finding.path, finding.line, finding.rule, finding.fingerprint)
            if key in self._seen:
                continue
            self._seen.add(key)
            if finding.fingerprint in self.baseline:
                self.result.baselined += 1
                continue
            self.result.findings.append(finding)

    def scan_text(self, path: str, text: str, commit: str | None = None) -> list[Finding]:
        if (
            is_whole_file_secret(path, text)
            and not _is_placeholder_only(text)
            and not self.rules.is_reference(text.strip())  # `<token here>`: nothing filled in
        ):
            return [  # one finding for the whole file, at line 1; its value never shown
                Finding(
                    path=path,
                    line=1,
                    rule=WHOLE_FILE_RULE,
                    fingerprint=fingerprint(self.salt, path, WHOLE_FILE_RULE, "\0"),
                    preview="",
                    commit=commit,
                )
            ]
        spans: list[tuple[int, int, str, int]] = []  # start, end, rule, line
        lower = text.lower()
        code = PurePosixPath(path).suffix.lower() in CODE_SUFFIXES
        free = PurePosixPath(path).name in self.rules.keyword_free
        if free or any(word in lower for word in self.rules.keywords):
            for m in self.rules.find(text, path):
                if code and m.rule in _KEY_NAME_RULES and not _quoted_at(text, m.start):
                    continue
                spans.append((m.start, m.end, m.rule, m.line))
        taken = sorted((s, e) for s, e, _, _ in spans)
        starts = [s for s, _ in taken]
        reach = list(accumulate((e for _, e in taken), max))
        line, counted = 1, 0  # entropy spans come in text order: count newlines once
        for start, end in entropy_matches(text, self.rules.is_reference, code=code):
            if _overlaps(starts, reach, start, end):
                continue
            line += text.count("\n", counted, start)
            counted = start
            spans.append((start, end, ENTROPY_RULE, line))
        spans.extend(self._known_value_spans(text, spans))
        if not spans:
            return []
        has_allow = ALLOW_MARK in text
        manifest = PurePosixPath(path).name == _MANIFEST
        out = []
        for start, end, rule, line in sorted(spans):
            secret = text[start:end]
            if not secret or self.rules.is_reference(secret):
                continue
            if _is_name_or_template(secret, manifest=manifest):
                continue
            if has_allow and self._allowed(path, text, end, rule):
                continue
            out.append(
                Finding(
                    path=path,
                    line=line,
                    rule=rule,
                    fingerprint=fingerprint(self.salt, path, rule, slot(text, start, end)),
                    preview=mask(secret),
                    commit=commit,
                )
            )
        return out

    def _allowed(self, path: str, text: str, end: int, rule: str) -> bool:
        """A `tether:allow` in a comment (the file's own syntax) after the value, on its line;
        never for a known token format, a private key or a value of the store."""
        if rule == STORE_VALUE_RULE or rule in self.rules.unallowable:
            return False
        line_end = text.find("\n", end)
        rest = text[end : line_end if line_end >= 0 else len(text)]
        mark = rest.find(ALLOW_MARK)
        if mark < 0:
            return False
        return any(0 <= rest.find(opener) < mark for opener in _comment_openers(path))

    def use_store(self, values: Iterable[str]) -> None:
        """The last line of defence: a value of the secret store found verbatim in a file is a
        finding, whatever the rules say about its place (a comment, a neutral key name)."""
        self.known_values = store_values(values)

    def _known_value_spans(
        self, text: str, taken: list[tuple[int, int, str, int]]
    ) -> list[tuple[int, int, str, int]]:
        covered = [(s, e) for s, e, _, _ in taken]
        return [
            (start, end, STORE_VALUE_RULE, line)
            for start, end, line in store_value_spans(text, self.known_values, covered)
        ]


# Letters only, one word or several joined by - _ . or a space: `example`, `root`, `changeme`,
# `change-me-strong-password`. Stored when they are a password (weak live passwords are
# credentials), but as a bare word they are everywhere else too (`example.com`, `user: root`).
_WORDS = re.compile(r"[A-Za-z]+(?:[-_. ][A-Za-z]+)*")


def store_values(values: Iterable[str]) -> tuple[str, ...]:
    """The values worth looking for verbatim, longest first so that a value inside another is
    not reported on its own: 4 characters or more, not words alone (see _WORDS), not a host's
    literal `REDACTED`. The rules still judge every value in its place."""
    found = {
        v
        for v in values
        if len(v) >= MIN_STORE_VALUE and not _WORDS.fullmatch(v.strip()) and not is_marker_value(v)
    }
    return tuple(sorted(found, key=len, reverse=True))


def store_value_spans(
    text: str, values: Sequence[str], covered: Iterable[tuple[int, int]] = ()
) -> list[tuple[int, int, int]]:
    """(start, end, line) of each value of `values` standing alone in `text` (not glued to
    letters or digits), outside the `covered` spans."""
    found: list[tuple[int, int, int]] = []
    taken = list(covered)
    for value in values:
        start = text.find(value)
        while start != -1:
            end = start + len(value)
            alone = not (start and _word_char(text[start - 1], value[0])) and not (
                end < len(text) and _word_char(text[end], value[-1])
            )
            if alone and not any(s <= start and end <= e for s, e in taken):
                found.append((start, end, text.count("\n", 0, start) + 1))
                taken.append((start, end))
            start = text.find(value, end)
    return found


def _word_char(neighbour: str, edge: str) -> bool:
    """A value glued to letters or digits on a side where it has one itself is part of a word."""
    return neighbour.isalnum() and edge.isalnum()


def _overlaps(starts: list[int], reach: list[int], start: int, end: int) -> bool:
    """Does [start, end) overlap a taken span? `starts` are the spans' sorted starts and
    `reach[i]` the furthest end among the first i+1 of them."""
    index = bisect_left(starts, end)
    return index > 0 and reach[index - 1] > start


def _is_name_or_template(value: str, *, manifest: bool) -> bool:
    """`{pw}` (f-string, str.format), `DB_PASSWORD` (an environment variable's name), and in
    tether.yaml any secret name: references to a secret, not one."""
    if _TEMPLATE.fullmatch(value):
        return True
    if _SECRET_NAME.fullmatch(value) and not _CHANGE_ME.fullmatch(value):
        return manifest or "_" in value
    return False


def _quoted_at(text: str, start: int) -> bool:
    return start > 0 and text[start - 1] in "\"'`"


def _is_placeholder_only(text: str) -> bool:
    """Nothing but a placeholder, PEM armour lines around it included (a redacted key file)."""
    body = [line for line in text.strip().splitlines() if not line.startswith("-----")]
    only = "".join(body).strip().removeprefix(BASE64_PREFIX.decode("ascii"))  # a binary one
    return re.fullmatch(r"__REDACTED_[A-Z][A-Z0-9_]*__|REDACTED", only) is not None


def _comment_openers(path: str) -> tuple[str, ...]:
    """How a comment starts in this kind of file (JSON has none: nothing can be allowed)."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix == ".json":
        return ()
    if suffix in (".xml", ".html", ".htm", ".svg", ".plist"):
        return ("<!--",)
    if suffix in (".ini", ".cfg", ".conf", ".properties"):
        return ("#", ";")
    if suffix in (".js", ".ts", ".go", ".java", ".c", ".h", ".cpp", ".rs", ".kt", ".swift"):
        return ("//", "/*")
    if suffix in (".sql", ".lua"):
        return ("--",)
    return ("#",)
