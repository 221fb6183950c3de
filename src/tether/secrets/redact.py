"""Format-preserving redaction: exactly each secret's characters become a named placeholder.

Names come from where a value sits, never from the value: the service folder (the first
segment of the inventory path) and the key, e.g. `arrstack/docker-compose.yml`
`WIREGUARD_PRIVATE_KEY` -> `ARRSTACK_WIREGUARD_PRIVATE_KEY`. When one file has the same key
twice, the nearest telling YAML parent joins the name (`HOMEPAGE_PLEX_KEY`,
`HOMEPAGE_RADARR_KEY`), then `_2`, `_3` in file order. So the same location always gets the
same name, a rotated value at a known location keeps its name, and redacting twice is a no-op.
"""

from __future__ import annotations

import base64
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NamedTuple

from tether.secrets.render import (
    BASE64_PREFIX,
    KEY_BEFORE_TEXT,
    MARKERS_TEXT,
    NAME_PATTERN,
    env_name,
    placeholder,
)
from tether.secrets.rules import Slot, is_reference, key_words, scan
from tether.secrets.wholefile import is_whole_file_secret

PLACEHOLDER_TEXT = re.compile(r"__REDACTED_(?P<name>" + NAME_PATTERN + r")__")
# YAML parents that say nothing about which secret this is.
_GENERIC_PARENTS = frozenset(
    str.split(
        """environment env widget widgets config configuration settings options auth
    authentication credentials secrets secret data spec values services service params
    parameters properties vars variables global default defaults"""
    )
)
_PASSWORD_WORDS = frozenset({"pass", "password", "passwd", "pwd", "pw"})


class Redacted(NamedTuple):
    name: str
    value: str
    line: int


class Redaction(NamedTuple):
    text: str
    secrets: tuple[Redacted, ...]


def inventory_path(path: str) -> str:
    """`configs/arrstack/x.yml` or `arrstack/x.yml` -> `arrstack/x.yml`."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    while parts and parts[0] in ("/", ".", "..", "configs"):
        parts = parts[1:]
    return "/".join(parts)


def service_name(path: str) -> str:
    """The service folder as a name part: `arrstack/docker-compose.yml` -> `ARRSTACK`."""
    parts = PurePosixPath(inventory_path(path)).parts
    if len(parts) > 1:
        return env_name(parts[0])
    return env_name(PurePosixPath(parts[0]).stem if parts else "")


def _key_part(key: str | None, rule: str, path: str) -> str:
    if rule in ("url-password", "connection-string-password"):
        part = env_name(key) if key else "URL"
        words = set(key_words(part))
        return part if words & _PASSWORD_WORDS else f"{part}_PASSWORD"
    if key:
        return env_name(key)
    if rule == "pem-private-key":
        stem = env_name(PurePosixPath(path).name.split(".")[0] or "PEM")
        return stem if stem.endswith("_KEY") else f"{stem}_PRIVATE_KEY"
    return env_name(rule)


def _join(*parts: str) -> str:
    """Join name parts, dropping a part the next one already starts with (`AUTHENTIK`)."""
    out: list[str] = []
    for part in parts:
        if out and (part == out[-1] or part.startswith(out[-1] + "_")):
            out[-1] = part
        else:
            out.append(part)
    return "_".join(out)


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    base: str
    qualified: str
    fixed: str | None  # the name of a placeholder already there
    line: int = 0


def _qualifier(parents: tuple[str, ...]) -> str | None:
    for parent in reversed(parents):
        words = key_words(parent)
        if words and " ".join(words) not in _GENERIC_PARENTS:
            return env_name(parent)
    return None


def _literal_key(text: str, start: int, slot: Slot | None) -> str:
    """The key a literal placeholder word on the host sits under, or LITERAL_REDACTED."""
    if slot is not None and slot.key:
        return slot.key
    found = KEY_BEFORE_TEXT.search(text, text.rfind("\n", 0, start) + 1, start)
    return found["key"] if found else "literal-redacted"


def _units(text: str, path: str, *, literal: bool = False) -> list[_Unit]:
    service = service_name(path)
    matches, found_slots = scan(text, path, live=literal)
    found = sorted(found_slots, key=lambda s: (s.start, s.end))
    starts = [s.start for s in found]

    def slot_for(start: int, end: int) -> Slot | None:
        """The value slot holding [start, end): slots do not nest, so only one can."""
        index = bisect_right(starts, start) - 1
        return found[index] if index >= 0 and found[index].end >= end else None

    units: list[_Unit] = []
    holders = list((MARKERS_TEXT if literal else PLACEHOLDER_TEXT).finditer(text))
    for holder in holders:
        slot = slot_for(holder.start(), holder.end())
        key = _literal_key(text, holder.start(), slot) if literal else slot.key if slot else None
        part = _key_part(key, "key-name", path)
        qual = _qualifier(slot.parents) if slot else None
        units.append(
            _Unit(
                holder.start(),
                holder.end(),
                _join(service, part),
                _join(service, qual, part) if qual else _join(service, part),
                None if literal else holder["name"],  # a host's literal words are a value
                text.count("\n", 0, holder.start()) + 1,
            )
        )
    taken = [(h.start(), h.end()) for h in holders]
    for match in matches:
        value = text[match.start : match.end]
        if PLACEHOLDER_TEXT.search(value) or is_reference(value, live=literal):
            continue
        if any(s < match.end and match.start < e for s, e in taken):
            continue
        slot = slot_for(match.start, match.end)
        part = _key_part(match.key, match.rule, path)
        if match.commented:  # never takes the name of the active value under the same key
            part = f"{part}_COMMENTED"
        qual = _qualifier(slot.parents) if slot else None
        units.append(
            _Unit(
                match.start,
                match.end,
                _join(service, part),
                _join(service, qual, part) if qual else _join(service, part),
                None,
                match.line,
            )
        )
    return sorted(units, key=lambda u: u.start)


def _file_part(path: str) -> str:
    return env_name(PurePosixPath(inventory_path(path)).stem)


def redact(
    text: str,
    path: str,
    store: Mapping[str, str] | None = None,
    elsewhere: Collection[str] = (),
    *,
    whole: bool = False,
    literal: bool = False,
) -> Redaction:
    """Replace each secret in `text` (the content of `path`) by its named placeholder; a file
    that is a secret as a whole (`whole`, or see wholefile) becomes one placeholder.

    `literal`: `text` is a host file (capture), so a `REDACTED` or `__REDACTED_X__` in it is
    what the host holds, not a placeholder: it becomes a placeholder of its own, its words the
    stored value, so that restoring gives the same bytes back.

    `store` holds the values already stored by name and `elsewhere` the names placeholders
    use in other files: a derived name used elsewhere for a different value is not reused
    (the file's name joins it instead), so no value is ever overwritten by another.
    """
    store = store or {}
    if whole or is_whole_file_secret(path, text):
        return _whole(text, path, store, elsewhere, literal=literal)
    units = _units(text, path, literal=literal)
    counts = Counter(u.base for u in units)
    wanted = [u.qualified if counts[u.base] > 1 else u.base for u in units]
    used = {u.fixed for u in units if u.fixed}
    names: list[str] = []
    seen: Counter[str] = Counter()
    for unit, want in zip(units, wanted, strict=True):
        seen[want] += 1
        if unit.fixed:
            names.append(unit.fixed)
            continue
        name = want if seen[want] == 1 else f"{want}_{seen[want]}"
        value = text[unit.start : unit.end]
        name = _free(name, value=value, used=used, store=store, elsewhere=elsewhere, path=path)
        used.add(name)
        names.append(name)
    out: list[str] = []
    secrets: list[Redacted] = []
    position = 0
    for unit, name in zip(units, names, strict=True):
        if unit.fixed:
            continue
        out.append(text[position : unit.start])
        out.append(placeholder(name))
        secrets.append(Redacted(name, text[unit.start : unit.end], unit.line))
        position = unit.end
    out.append(text[position:])
    return Redaction("".join(out), tuple(secrets))


def _whole(
    text: str, path: str, store: Mapping[str, str], elsewhere: Collection[str], *, literal: bool
) -> Redaction:
    """The file becomes its placeholder alone (no newline); the store keeps its exact text."""
    if not literal and PLACEHOLDER_TEXT.fullmatch(text.strip()):
        return Redaction(text, ())  # already redacted (a reconciled host file holds the value)
    base = _join(service_name(path), _file_part(path))
    name = _free(base, value=text, used=set(), store=store, elsewhere=elsewhere, path=path)
    return Redaction(placeholder(name), (Redacted(name, text, 1),))


def redact_binary(
    data: bytes, path: str, store: Mapping[str, str], elsewhere: Collection[str] = ()
) -> Redaction:
    """A binary secret file (a keystore): the repo holds `tether:base64 ` and its placeholder,
    the store its bytes in base64."""
    value = base64.b64encode(data).decode("ascii")
    whole = _whole(value, path, store, elsewhere, literal=True)
    return Redaction(BASE64_PREFIX.decode("ascii") + whole.text, whole.secrets)


def _free(
    name: str,
    *,
    value: str,
    used: set[str],
    store: Mapping[str, str],
    elsewhere: Collection[str],
    path: str,
) -> str:
    """`name`, or the first variant no other location holds for a different value."""

    def clashes(candidate: str) -> bool:
        if candidate in used:
            return True
        return candidate in elsewhere and store.get(candidate) != value

    if not clashes(name):
        return name
    with_file = _join(
        service_name(path), _file_part(path), name.removeprefix(service_name(path) + "_")
    )
    candidate = with_file
    number = 1
    while clashes(candidate):
        number += 1
        candidate = f"{with_file}_{number}"
    return candidate


class _UsedElsewhere(Collection[str]):
    """The names used by files other than `path`, without building the set for each file."""

    def __init__(self, used_by: Mapping[str, set[str]], path: str) -> None:
        self.used_by, self.path = used_by, path

    def __contains__(self, name: object) -> bool:
        where = self.used_by.get(name, set()) if isinstance(name, str) else set()
        return bool(where - {self.path})

    def __iter__(self) -> Iterator[str]:
        return (name for name in self.used_by if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def redact_files(
    texts: Mapping[str, str],
    store: Mapping[str, str] | None = None,
    repo_names: Mapping[str, Collection[str]] | None = None,
    whole: Collection[str] = (),
    *,
    literal: bool = False,
) -> dict[str, Redaction]:
    """Redact several files (by inventory path) consistently, in path order; the paths in
    `whole` (Docker secret files, `secret: whole` overrides) are secrets as a whole;
    `literal`: they are host files (see `redact`).

    `store` holds the stored values by name; `repo_names` the placeholder names each other
    file of the repo already uses. A name is shared between files only for the same value.
    """
    values = dict(store or {})
    used_by: dict[str, set[str]] = {}
    for path, names in (repo_names or {}).items():
        for name in names:
            used_by.setdefault(name, set()).add(path)
    for path, text in () if literal else texts.items():  # a host's literal names none
        for name, _line in placeholders_in(text):
            used_by.setdefault(name, set()).add(path)
    results: dict[str, Redaction] = {}
    for path in sorted(texts):
        result = redact(
            texts[path],
            path,
            store=values,
            elsewhere=_UsedElsewhere(used_by, path),
            whole=path in whole,
            literal=literal,
        )
        for secret in result.secrets:
            values[secret.name] = secret.value
            used_by.setdefault(secret.name, set()).add(path)
        results[path] = result
    return results


def placeholders_in(text: str) -> list[tuple[str, int]]:
    """(name, line) of every named placeholder in `text`."""
    return [
        (m["name"], text.count("\n", 0, m.start()) + 1) for m in PLACEHOLDER_TEXT.finditer(text)
    ]
