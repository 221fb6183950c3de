"""The allowlist (`inventory/include-paths.txt`): parsing, path safety and globbing.

One path per line, relative to the target home. `#` starts a comment line, blank lines are
ignored, `*`, `?` and `**` are globs, and everything else (spaces, brackets) is literal.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tether.errors import InventoryError, warn
from tether.textsafe import has_control

GLOB_CHARS = frozenset("*?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Entry:
    pattern: str
    line: int

    @property
    def is_glob(self) -> bool:
        return is_glob(self.pattern)


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


@dataclass(frozen=True)
class Inventory:
    origin: str
    patterns: tuple[str, ...]
    lines: array[int]  # the line number of each pattern
    warnings: tuple[str, ...] = ()

    @property
    def entries(self) -> list[Entry]:
        """Each pattern with its line (made when asked: a 100,000-line allowlist keeps its
        patterns and an array of numbers, not an object and an int a line)."""
        return list(map(Entry, self.patterns, self.lines))

    def select(self, candidates: Iterable[str]) -> list[str]:
        """The candidate paths the allowlist names, sorted (literal entries need not exist)."""
        globs = [compile_glob(p) for p in self.patterns if is_glob(p)]
        if not globs:  # literal lines only, each once (parse_inventory collapsed repeats)
            return sorted(self.patterns)
        chosen = {p for p in self.patterns if not is_glob(p)}  # the literals
        for name in candidates:
            if any(g.match(name) for g in globs):
                if has_control(name):  # it would drive the terminal in every message
                    warn(f"{name}: a control character in the name; left out (rename it)")
                    continue
                chosen.add(name)
        return sorted(chosen)

    def expand_folder(self, root: Path) -> list[str]:
        """Allowlisted paths found under `root` (files or links), plus every literal entry."""
        if not any(map(is_glob, self.patterns)):
            return self.select(())
        return self.select(walk_files(root, self.glob_bases()))

    def glob_bases(self) -> list[str]:
        """The literal folder prefix of each glob, so a walk can skip the rest of the tree."""
        bases: set[str] = set()
        for pattern in self.patterns:
            if is_glob(pattern):
                literal = []
                for part in pattern.split("/")[:-1]:
                    if any(c in GLOB_CHARS for c in part):
                        break
                    literal.append(part)
                bases.add("/".join(literal))
        # A base inside another base is walked already.
        return sorted(b for b in bases if not any(_inside(b, o) for o in bases if o != b))


def _inside(path: str, folder: str) -> bool:
    return folder == "" or path.startswith(folder + "/")


def walk_files(root: Path, bases: Iterable[str] = ("",)) -> list[str]:
    """'/'-separated paths of the files and symlinks under root/base; links are not followed."""
    found: list[str] = []
    for base in bases:
        top = root / base if base else root
        if not top.is_dir():
            continue
        for folder, dirs, files in os.walk(top):
            rel = os.path.relpath(folder, root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            found.extend(prefix + name for name in files)
            # os.walk lists symlinks to folders in dirs without descending; they are files to us.
            found.extend(prefix + d for d in dirs if Path(folder, d).is_symlink())
    return found


# One step of a glob: a literal character, `?`, `*` (stays in a segment), `**` (anything) or
# `**/` (whole segments, any number). Matched by simulating the set of reachable steps, so a
# crafted pattern (`*a*a*a*a*a*a*a*b`) costs pattern length x path length, never exponential.
_LIT, _ONE, _STAR, _ALL, _SEGS = range(5)


class Glob:
    """An allowlist glob, matched in linear time (no backtracking regex)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        steps: list[tuple[int, str]] = []
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                steps.append((_SEGS, ""))
                i += 3
            elif pattern.startswith("**", i):
                steps.append((_ALL, ""))
                i += 2
            elif pattern[i] == "*":
                if not steps or steps[-1][0] != _STAR:  # `**`-free runs of `*` are one `*`
                    steps.append((_STAR, ""))
                i += 1
            else:
                steps.append((_ONE, "") if pattern[i] == "?" else (_LIT, pattern[i]))
                i += 1
        self.steps = tuple(steps)

    def _closure(self, states: set[tuple[int, bool]]) -> set[tuple[int, bool]]:
        """Add the steps reachable without reading: past `*`, `**` and `**/` (zero times)."""
        todo = list(states)
        while todo:
            index, inside = todo.pop()
            if index < len(self.steps) and not inside:
                kind = self.steps[index][0]
                if kind in (_STAR, _ALL, _SEGS) and (index + 1, False) not in states:
                    states.add((index + 1, False))
                    todo.append((index + 1, False))
        return states

    def match(self, path: str) -> bool:
        # A state is (step index, inside a `**/` segment that has not reached its `/` yet).
        states = self._closure({(0, False)})
        end = len(self.steps)
        for char in path:
            moved: set[tuple[int, bool]] = set()
            for index, inside in states:
                if index == end:
                    continue
                kind, literal = self.steps[index]
                if kind == _SEGS:
                    if char == "/" and inside:
                        moved.add((index, False))  # one more whole segment
                    elif char != "/":
                        moved.add((index, True))
                elif kind == _LIT:
                    if char == literal:
                        moved.add((index + 1, False))
                elif kind in (_ONE, _STAR):
                    if char != "/":
                        moved.add((index + 1 if kind == _ONE else index, False))
                else:  # _ALL
                    moved.add((index, False))
            if not moved:
                return False
            states = self._closure(moved)
        return (end, False) in states


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob:
    """`*` and `?` stay inside one path segment; `**` spans any number of segments."""
    return Glob(pattern)


def matches(pattern: str, path: str) -> bool:
    if any(c in GLOB_CHARS for c in pattern):
        return compile_glob(pattern).match(path)
    return pattern == path


# A plain relative path: no control characters, no leading / or ~, no . or .. segments, no
# doubled or trailing slash. Nearly every line is one, and then no further check is needed.
_PLAIN = re.compile(r"(?!/|~)(?:(?!\.\.?/)[^\x00-\x1f\x7f/]+/)*(?!\.\.?\Z)[^\x00-\x1f\x7f/]+\Z")


PATH_MAX = 4096  # Linux: bytes in a whole path
NAME_MAX = 255  # bytes in one name
MAX_RELATIVE_PATH = 3072  # what is left for the target root and home


def chosen_by(patterns: Iterable[str], path: str) -> bool:
    """`--only`: does one of `patterns` name `path` (a glob, the path, or a folder above it)?"""
    return any(matches(p, path) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def check_relative_path(path: str) -> str | None:
    """Why `path` is unsafe as a path below the home, or None when it is safe."""
    if len(path.encode("utf-8", "surrogateescape")) > MAX_RELATIVE_PATH:
        return f"longer than {MAX_RELATIVE_PATH} bytes (the system allows {PATH_MAX} in all)"
    if any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in path.split("/")):
        return f"a name longer than {NAME_MAX} bytes (the system's limit)"
    if _PLAIN.match(path):
        return None
    if not path:
        return "empty path"
    if _CONTROL.search(path):
        return "control character in path"
    if path.startswith("/"):
        return "absolute path (write it relative to the target home)"
    if path.startswith("~"):
        return "'~' is not expanded (write the path relative to the target home)"
    if ".." in path.split("/"):
        return "'..' segment (paths must stay inside the target home)"
    normal = posixpath.normpath(path)
    if normal in (".", "") or normal.startswith("../") or normal == "..":
        return "path normalises outside the target home"
    return None


def parse_inventory(text: str, origin: str) -> Inventory:
    """Parse the allowlist; report every bad line at once as `origin:LINE: why`."""
    problems: list[str] = []
    warnings: list[tuple[int, str]] = []  # (line, text): said in line order
    patterns: list[str] = []
    lines = array("L")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) <= NAME_MAX and line.isascii() and _PLAIN.match(line):
            why, normal = None, line  # the common line, safe and normal as written (fast path)
        else:
            why = check_relative_path(line)
            normal = line if why else posixpath.normpath(line)
            if not why and normal != line:  # e.g. './~' hides '~' until normalised
                why = check_relative_path(normal)
            normal = line if normal == line else normal  # one copy of the text
        if why:
            problems.append(f"{origin}:{number}: {why}: {line!r}")
            continue
        if normal != line:
            warnings.append((number, f"{origin}:{number}: {line!r} is written as {normal!r}"))
        patterns.append(normal)
        lines.append(number)
    if problems:
        raise InventoryError(problems, hint="fix these lines; paths are relative to target.home")
    twice = repeated(patterns)
    if twice:
        patterns, lines = _collapse(patterns, lines, twice, origin, warnings)
    said = tuple(text for _, text in sorted(warnings))
    return Inventory(origin, tuple(patterns), lines, said)


def repeated(values: Iterable[str]) -> set[str]:
    """The values found more than once. Sorted, a repeat is next to its twin: no table of every
    value to find the rare one (a 100,000-line allowlist, a plan's destinations)."""
    return {a for a, b in itertools.pairwise(sorted(values)) if a == b}


def _collapse(
    patterns: list[str],
    lines: array[int],
    twice: set[str],
    origin: str,
    warnings: list[tuple[int, str]],
) -> tuple[list[str], array[int]]:
    """The patterns with each repeat dropped (its first line kept), a warning for each."""
    first: dict[str, int] = {}
    kept, kept_lines = [], array("L")
    for pattern, number in zip(patterns, lines, strict=True):
        if pattern in twice:
            if pattern in first:
                why = f"duplicate of line {first[pattern]} ({pattern!r}); collapsed"
                warnings.append((number, f"{origin}:{number}: {why}"))
                continue
            first[pattern] = number
        kept.append(pattern)
        kept_lines.append(number)
    return kept, kept_lines
