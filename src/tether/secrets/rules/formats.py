"""Per-format extraction of key/value pairs: exactly the value's characters (inside the
quotes, without a trailing comment) for env, INI, TOML, YAML, JSON, XML and generic files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import PurePosixPath


@dataclass(frozen=True)
class Slot:
    """A value assigned to a key, with its YAML parents (redaction derives names from these)."""

    key: str
    start: int
    end: int
    parents: tuple[str, ...] = ()  # enclosing YAML keys, outermost first


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
) -> Iterator[Slot]:
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
                yield Slot(key, *_cut(text, inner, close, bad))
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
            yield Slot(key, *span)
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


def _yaml_pairs(text: str) -> Iterator[Slot]:
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
        pair: Slot | None = None
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
            yield Slot(pair.key, pair.start, pair.end, _parents(stack))
            skip_to = pair.end


def _yaml_list_env(text: str, pos: int, eol: int) -> Slot | None:
    """Compose's `- KEY=value` / `- "KEY=value"` environment items."""
    env = _YAML_LIST_ENV.match(text, pos, eol)
    if env is None or ": " in text[pos : env.start("key")]:
        return None
    vstart = env.end()
    if env["q"]:
        quote = env["q"]
        close = _quoted(text, env.start("q"), backslash=quote == '"', doubled=quote == "'")
        if close is None or close > eol:
            return Slot("", 0, 0)
        if quote == '"':
            return Slot(env["key"], *_cut(text, vstart, close, _BAD_YAML_DOUBLE))
        return Slot(env["key"], vstart, close)
    return Slot(env["key"], vstart, _yaml_plain_end(text, vstart, eol))


def _yaml_value(text: str, key: str, pos: int, eol: int, key_indent: int) -> Slot | None:
    """The value after `key:`; None when the key opens a nested mapping or list."""
    while pos < eol and text[pos] in " \t\r":
        pos += 1
    props = _YAML_PROPS.match(text, pos, eol)
    if props is not None:
        pos = props.end()
    if pos >= eol or text[pos] == "#":
        return None
    empty = Slot(key, 0, 0)
    if _YAML_BLOCK.match(text, pos, eol):
        span = _yaml_block(text, eol, key_indent)
        return empty if span is None else Slot(key, *span)
    if text[pos] in "[{*&":  # flow collections, aliases, an anchor with no value
        return empty
    if text[pos] in "\"'":
        close = _quoted(text, pos, backslash=text[pos] == '"', doubled=text[pos] == "'")
        if close is None:
            return empty
        if text[pos] == '"':
            return Slot(key, *_cut(text, pos + 1, close, _BAD_YAML_DOUBLE))
        return Slot(key, pos + 1, close)
    if text[pos] in "@`|>%":  # cannot start a plain scalar: the file is not YAML, keep it so
        pos += 1
        while pos < eol and text[pos] in " \t":
            pos += 1
    return Slot(key, pos, _yaml_plain_end(text, pos, eol))


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


def _json_pairs(text: str) -> Iterator[Slot]:
    pos = 0
    while True:
        match = _JSON_PAIR.search(text, pos)
        if match is None:
            return
        vstart = match.end()
        close = _quoted(text, vstart - 1, backslash=True)
        if close is None:
            return
        yield Slot(match["key"], *_cut(text, vstart, close, _BAD_JSON))
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


_XML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _xml_pairs(text: str) -> Iterator[Slot]:
    comments = [m.span() for m in _XML_COMMENT.finditer(text)] if "<!--" in text else []
    for slot in _xml_all_pairs(text):
        if not any(s <= slot.start < e for s, e in comments):  # `Example: <password>x</..>`
            yield slot


def _xml_all_pairs(text: str) -> Iterator[Slot]:
    for match in _XML_ATTR.finditer(text):
        if match["key"] in ("key", "name", "id"):  # `<add key="ApiKey" value="...">`
            continue
        close = text.find(match["q"], match.end())
        span = _xml_span(text, match.end(), close) if close >= 0 else None
        if span is not None:
            yield Slot(match["key"], *span)
    for match in _XML_NAMED.finditer(text):
        close = text.find(match["q"], match.end())
        span = _xml_span(text, match.end(), close) if close >= 0 else None
        if span is not None:
            yield Slot(match["key"], *span)
    for match in _XML_ELEMENT.finditer(text):
        if match["value"] and not match["value"].startswith("<![CDATA["):
            span = _xml_span(text, match.start("value"), match.end("value"))
            if span is not None:
                yield Slot(match["key"], *span)


# The assignment inside a comment line: `# SMTP_PASSWORD=x`, `#- KEY=x`, `#  secret_key: x`,
# `# Database password: x`. The value is one token (or quoted): prose is not an assignment.
_COMMENTED = re.compile(
    r"[ \t]*(?:#+|;+|//)[ \t]*(?:-[ \t]*)?(?:export[ \t]+)?[\"']?"
    r"(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*(?: [A-Za-z][A-Za-z0-9_.\-]*)?)[\"']?"
    r"[ \t]*(?:=|:(?=[ \t]))[ \t]*"
)
_COMMENT_MARKS = {"yaml": "#", "toml": "#", "ini": "#;", "env": "#", "generic": "#"}


def comment_pairs(text: str, path: str) -> Iterator[Slot]:
    """Assignments commented out on lines of their own (none in JSON and XML)."""
    marks = _COMMENT_MARKS.get(file_format(path), "")
    if not marks:
        return
    if PurePosixPath(path).name == SFTP_USERS:
        yield from _sftp_users(text, commented=True)
        return
    for start, eol in _lines(text):
        first = text[start:eol].lstrip(" \t")[:1]
        if not first or first not in marks:
            continue
        span = None
        match = _COMMENTED.match(text, start, eol)
        if match is not None:
            pos = match.end()
            span = _value(text, pos, eol, comments="#", backslash=True)
            if span is None or text[pos] in "[{":
                span = None
            elif text[pos] not in "\"'" and any(c in text[span[0] : span[1]] for c in " \t"):
                span = None  # prose (`# password: see the vault`)
            elif text[span[1] - 1 : span[1]] in (".", ",", ")"):
                span = None  # the end of a sentence
        if match is not None and span is not None:
            yield Slot(match["key"], *span)
        else:  # prose: only a password glued to its word (`password:admin`) is one
            yield from _prose_passwords(text, start, eol)


# A password glued to its word inside a prose comment: `# ... username: admin password:admin`.
_PROSE_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9_])(?P<key>[A-Za-z_]*(?:password|passwd|pwd))[=:](?P<value>[^\s\"'`,;()]+)",
    re.IGNORECASE,
)
# Caddy v1 `basicauth [/path] user password [{]`: the last word is the password.
_BASICAUTH = re.compile(
    r"[ \t]*basicauth[ \t]+(?:/\S*[ \t]+)?[^\s{}/]+[ \t]+(?P<value>[^\s{}]+)[ \t]*\{?[ \t]*$"
)
# atmoz/sftp users.conf: `user:password[:e][:uid[:gid]][:dir]`, one user a line.
_SFTP_USER = re.compile(
    r"[ \t]*(?P<hash>#[ \t]*)?(?P<user>[A-Za-z0-9_][A-Za-z0-9_.\-]*):(?P<value>[^:\s]+)"
    r"(?::e)?:[0-9]*:[0-9]*(?::[^:\s]*)?[ \t]*$"
)
SFTP_USERS = "users.conf"


def _sftp_users(text: str, *, commented: bool) -> Iterator[Slot]:
    for start, eol in _lines(text):
        match = _SFTP_USER.match(text, start, eol)
        if match is not None and bool(match["hash"]) == commented:
            yield Slot(f"{match['user']}_password", *match.span("value"))


def _basicauth(text: str) -> Iterator[Slot]:
    if "basicauth" not in text:
        return
    for start, eol in _lines(text):
        match = _BASICAUTH.match(text, start, eol)
        if match is not None:
            yield Slot("basicauth_password", *match.span("value"))


def _prose_passwords(text: str, start: int, eol: int) -> Iterator[Slot]:
    for match in _PROSE_PASSWORD.finditer(text, start, eol):
        end = match.end("value")
        while end > match.start("value") and text[end - 1] in ".:":
            end -= 1  # the end of a sentence
        if end > match.start("value"):
            yield Slot(match["key"], match.start("value"), end)


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


def pairs(text: str, path: str) -> Iterator[Slot]:
    kind = file_format(path)
    if kind == "yaml":
        return _yaml_pairs(text)
    if kind == "json":
        return _json_pairs(text)
    if kind == "xml":
        return _xml_pairs(text)
    if kind == "toml":
        return _line_pairs(text, _TOML_LINE, "#", "toml")
    if kind == "ini" and PurePosixPath(path).name == SFTP_USERS:
        return _sftp_users(text, commented=False)
    if kind == "ini":
        return chain(_line_pairs(text, _INI_LINE, "#;", "ini"), _basicauth(text))
    if kind == "env":
        return _line_pairs(text, _ENV_LINE, "#")
    return chain(_line_pairs(text, _GENERIC_LINE, "#", "generic"), _basicauth(text))
