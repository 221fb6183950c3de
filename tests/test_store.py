"""The secret store's write side: 0600, atomic, never deletes, quoting a shell reads the same."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import SecretError
from tether.secrets.store import load_store, parse_dotenv, save_values, shell_quote

TRICKY = [
    *("p&a/s|s\\w", "it's", 'say "hi"', "$HOME `x` $(id)", "a b\tc", "#notcomment", ""),
    *("-----BEGIN KEY-----\nabc/+=\n-----END KEY-----\n", "~user", "x;y", "!bang", "é ünï"),
]


def test_creates_private_file_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secrets.env"
    assert save_values(path, {"A_TOKEN": "abc123"}) == ["A_TOKEN"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == "export A_TOKEN=abc123\n"
    assert load_store(path, {}).get("A_TOKEN") == "abc123"
    assert [p.name for p in path.parent.iterdir()] == ["secrets.env"]  # no temp file left


@pytest.mark.parametrize("value", TRICKY)
def test_values_round_trip_through_tether_and_bash(tmp_path: Path, value: str) -> None:
    path = tmp_path / "s.env"
    save_values(path, {"V": value})
    assert load_store(path, {}).get("V") == value
    shell = subprocess.run(
        ["bash", "-c", f'source "{path}" && printf %s "$V"'],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert shell.stdout.decode("utf-8") == value


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_characters="\0", codec="utf-8")))
def test_shell_quote_reads_back(value: str) -> None:
    assert parse_dotenv(f"V={shell_quote(value)}\n", "s.env") == {"V": value}


def test_update_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    original = "# my secrets\nexport A=one\nB='two words'  # note\n\nexport C=three\n"
    path.write_text(original)
    path.chmod(0o600)
    assert save_values(path, {"B": "2", "A": "one", "D": "new&"}) == ["B", "D"]
    assert path.read_text() == (
        "# my secrets\nexport A=one\nB=2  # note\n\nexport C=three\nexport D='new&'\n"
    )
    assert save_values(path, {"A": "one"}) == []  # unchanged: not rewritten
    assert load_store(path, {}).file_values == {"A": "one", "B": "2", "C": "three", "D": "new&"}


def test_never_deletes_and_updates_multiline_in_place(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    save_values(path, {"PEM": "a\nb\n", "X": "1"})
    save_values(path, {"PEM": "c\nd"})
    assert load_store(path, {}).file_values == {"PEM": "c\nd", "X": "1"}


def test_refuses_readable_store_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    path.write_text("A=1\n")
    path.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        save_values(path, {"A": "2"})
    assert path.read_text() == "A=1\n"


def test_write_failure_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SecretError) as info:
        save_values(blocker / "s.env", {"A": "secretvalue"})
    assert "secretvalue" not in str(info.value)
    assert "\n" not in str(info.value)


def test_refuses_a_symlinked_store(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("A=1\n")
    real.chmod(0o600)
    link = tmp_path / "link.env"
    link.symlink_to(real)
    with pytest.raises(SecretError, match="not a regular file"):
        save_values(link, {"A": "2"})
    assert real.read_text() == "A=1\n"


def test_load_refuses_a_symlink_saying_so(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("A=1\n")
    real.chmod(0o600)
    (tmp_path / "link.env").symlink_to(real)
    with pytest.raises(SecretError, match="is a symlink") as info:
        load_store(tmp_path / "link.env", {})
    assert info.value.hint


def test_load_refuses_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "store.env"
    os.mkfifo(fifo, 0o600)  # open(O_RDONLY) on a fifo blocks until a writer comes
    with pytest.raises(SecretError, match="not a regular file"):
        load_store(fifo, {})


def test_writers_take_turns_on_the_stores_folder(tmp_path: Path) -> None:
    """Another writer (a capture, an import) holding the store: this one waits for it, then
    sees what it wrote (a guard runs on the values read under the lock), and loses nothing."""
    path = tmp_path / "secrets.env"
    save_values(path, {"A": "1"})
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "open(sys.argv[2], 'a').write('export B=2\\n')\n"
         "print('held', flush=True)\n"
         "time.sleep(0.6)\n",
         str(tmp_path), str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    seen: list[dict[str, str]] = []
    started = time.monotonic()
    assert save_values(path, {"C": "3"}, guard=lambda stored: seen.append(dict(stored))) == ["C"]
    waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited > 0.3, waited
    assert seen == [{"A": "1", "B": "2"}]
    assert load_store(path, {}).file_values == {"A": "1", "B": "2", "C": "3"}
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.env"]  # no lock file beside it


def test_a_guard_that_refuses_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    save_values(path, {"A": "1"})
    before = path.read_bytes()

    def refuse(stored: object) -> None:
        raise SecretError("no")

    with pytest.raises(SecretError):
        save_values(path, {"A": "2", "B": "3"}, guard=refuse)
    assert path.read_bytes() == before
