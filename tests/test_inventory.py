from __future__ import annotations

import posixpath
import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.config.inventory import check_relative_path, compile_glob, matches, parse_inventory
from tether.errors import InventoryError


def test_comments_blanks_spaces_and_crlf() -> None:
    text = (
        "# restore-worthy files\r\n"
        "\r\n"
        "traefik/docker-compose.yml  \r\n"
        "plex/config/Library/Application Support/Plex Media Server/Preferences.xml\r\n"
        "authentik/.env"  # no trailing newline: the article's `while read` dropped this line
    )
    inv = parse_inventory(text, "include-paths.txt")
    assert [e.pattern for e in inv.entries] == [
        "traefik/docker-compose.yml",
        "plex/config/Library/Application Support/Plex Media Server/Preferences.xml",
        "authentik/.env",
    ]
    assert [e.line for e in inv.entries] == [3, 4, 5]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("/etc/passwd", "absolute path"),
        ("../outside", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/\x00b", "control character"),
        ("a/\x1bb", "control character"),
        ("~/x", "'~' is not expanded"),
        (".", "normalises outside"),
        ("./", "normalises outside"),
    ],
)
def test_unsafe_lines_are_rejected_with_their_line(line: str, why: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(f"ok/file\n# c\n{line}\n", "include-paths.txt")
    assert caught.value.problems[0].startswith("include-paths.txt:3: ")
    assert why in caught.value.problems[0]


def test_every_bad_line_is_reported_at_once() -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory("/a\nok\n../b\n", "inv")
    assert [p.split(": ")[0] for p in caught.value.problems] == ["inv:1", "inv:3"]


def test_duplicates_warn_and_collapse() -> None:
    inv = parse_inventory("a/b\n./a/b\na/b\n", "inv")
    assert [e.pattern for e in inv.entries] == ["a/b"]
    assert any("duplicate of line 1" in w for w in inv.warnings)
    assert len(inv.warnings) == 3  # './a/b' rewritten + two duplicates


def test_warnings_come_in_line_order_and_the_first_of_a_repeat_keeps_its_line() -> None:
    inv = parse_inventory("z\nc\n./c\nz\nb\n./b\nc\n", "inv")
    assert [(e.pattern, e.line) for e in inv.entries] == [("z", 1), ("c", 2), ("b", 5)]
    assert [w.split(": ")[0] for w in inv.warnings] == [
        "inv:3", "inv:3", "inv:4", "inv:6", "inv:6", "inv:7",
    ]  # fmt: skip
    assert inv.warnings[1] == "inv:3: duplicate of line 2 ('c'); collapsed"


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("traefik/dynamic/*.yaml", "traefik/dynamic/tls.yaml", True),
        ("traefik/dynamic/*.yaml", "traefik/dynamic/sub/tls.yaml", False),
        ("traefik/**", "traefik/dynamic/sub/tls.yaml", True),
        ("**/*.env", ".env", True),
        ("**/*.env", "authentik/.env", True),
        ("**/*.env", "a/b/c/x.env", True),
        ("a/?.yml", "a/b.yml", True),
        ("a/?.yml", "a/bb.yml", False),
        ("a/[x].yml", "a/[x].yml", True),  # brackets are literal
        ("a/[x].yml", "a/x.yml", False),
        ("Application Support/*", "Application Support/Prefs.xml", True),
    ],
)
def test_globs(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


def test_select_expands_globs_against_candidates(tmp_path: Path) -> None:
    inv = parse_inventory("a/*.yml\nliteral/missing.txt\n", "inv")
    assert inv.select(["a/x.yml", "a/y.txt", "b/z.yml"]) == ["a/x.yml", "literal/missing.txt"]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.yml").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.yml").write_text("x")
    assert inv.expand_folder(tmp_path) == ["a/one.yml", "literal/missing.txt"]


segment = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=8)


@given(st.lists(st.one_of(segment, st.sampled_from(["..", ".", "", "~", " "])), max_size=6))
def test_any_accepted_path_stays_inside_the_home(parts: list[str]) -> None:
    path = "/".join(parts)
    home = "/home/demo"
    try:
        inv = parse_inventory(path + "\n", "inv")
    except InventoryError:
        return
    for entry in inv.entries:
        joined = posixpath.normpath(posixpath.join(home, entry.pattern))
        assert joined.startswith(home + "/")
        assert check_relative_path(entry.pattern) is None


@given(st.text(alphabet="ab/*?.", max_size=10), st.text(alphabet="ab/.", max_size=10))
def test_single_star_never_crosses_a_slash(pattern: str, path: str) -> None:
    if "**" in pattern:
        return
    if compile_glob(pattern).match(path):
        assert pattern.count("/") == path.count("/")


def test_paths_beyond_the_system_limits_are_refused() -> None:
    assert check_relative_path("a/" * 1000 + "x") is None  # 2,001 bytes, 1,001 names: fine
    assert "longer than 3072 bytes" in str(check_relative_path("a/" * 1600 + "x"))
    assert "a name longer than 255 bytes" in str(check_relative_path("app/" + "n" * 256))
    with pytest.raises(InventoryError) as caught:
        parse_inventory("ok.conf\n" + "b/" * 1600 + "x\n", "include-paths.txt")
    (problem,) = caught.value.problems
    assert problem.startswith("include-paths.txt:2: longer than 3072 bytes")


def _reference(pattern: str) -> re.Pattern[str]:
    """The regex the allowlist syntax means (backtracking: fine for short test strings)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@given(st.text(alphabet="ab/*?.", max_size=12), st.text(alphabet="ab/.", max_size=12))
def test_the_linear_matcher_means_what_the_glob_syntax_says(pattern: str, path: str) -> None:
    assert compile_glob(pattern).match(path) == bool(_reference(pattern).match(path))


def test_a_crafted_glob_cannot_hang_a_run() -> None:
    pattern, name = "app/" + "*a" * 12 + "*b", "app/" + "a" * 80
    start = time.perf_counter()
    assert not matches(pattern, name)  # a backtracking regex takes hours here
    assert time.perf_counter() - start < 5.0  # a hang guard, not a speed figure


def _slow_line(line: str) -> tuple[str | None, str]:
    """What parse_inventory made of a line before its fast path: (why unsafe, normal form)."""
    why = check_relative_path(line)
    normal = line if why else posixpath.normpath(line)
    if not why and normal != line:
        why = check_relative_path(normal)
    return why, normal


@given(
    st.lists(st.one_of(segment, st.sampled_from(["..", ".", "", "~", " ", "a" * 300])), max_size=6)
)
def test_the_fast_path_reads_a_line_as_the_full_checks_do(parts: list[str]) -> None:
    line = "/".join(parts).strip()
    if not line or line.startswith("#") or line.splitlines() != [line]:
        return  # not one line of the file (splitlines also splits at \x0c, \x1c, \u2028...)
    why, normal = _slow_line(line)
    try:
        inv = parse_inventory(line + "\n", "inv")
    except InventoryError:
        assert why is not None
        return
    assert why is None
    assert [e.pattern for e in inv.entries] == [normal]
