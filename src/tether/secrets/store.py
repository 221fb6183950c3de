"""The secret store: a dotenv file read with shell quoting semantics, plus the environment.

Compatible with the article's `~/.homelab-secrets.env` (`export NAME=value` lines a shell can
`source`). Like ssh with a private key, tether refuses a store that group or others can read.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tether.errors import SecretError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import exclusive_lock, write_atomic

_ASSIGNMENT = re.compile(r"(?:export[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=")


def _parse_value(text: str, pos: int, origin: str, line: int) -> tuple[str, int]:
    """Read one shell word starting at `pos`; return it and the position after it."""
    out: list[str] = []
    while pos < len(text) and text[pos] not in " \t\n":
        char = text[pos]
        if char == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                raise SecretError(f"{origin}:{line}: unterminated ' quote", hint="close the quote")
            out.append(text[pos + 1 : end])
            pos = end + 1
        elif char == '"':
            pos += 1
            while True:
                if pos >= len(text):
                    raise SecretError(
                        f'{origin}:{line}: unterminated " quote', hint="close the quote"
                    )
                char = text[pos]
                if char == '"':
                    pos += 1
                    break
                if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\$`\n':
                    if text[pos + 1] != "\n":
                        out.append(text[pos + 1])
                    pos += 2
                    continue
                out.append(char)
                pos += 1
        elif char == "\\" and pos + 1 < len(text):
            if text[pos + 1] != "\n":
                out.append(text[pos + 1])
            pos += 2
        elif char == "#" and not out:
            break
        else:
            out.append(char)
            pos += 1
    return "".join(out), pos


@dataclass(frozen=True)
class Assignment:
    """One `NAME=value` in a store file: its value and the span of its text (to rewrite it)."""

    name: str
    value: str
    start: int  # first character of the line
    end: int  # end of the value's last line, newline excluded
    export: bool


def assignments(text: str, origin: str) -> list[Assignment]:
    """Every assignment in file order; `export`, comments, quotes, multi-line quoted values."""
    found: list[Assignment] = []
    pos = 0
    line, counted = 1, 0  # count newlines once, not from the start for every line
    while pos < len(text):
        line += text.count("\n", counted, pos)
        counted = pos
        end_of_line = text.find("\n", pos)
        end_of_line = len(text) if end_of_line < 0 else end_of_line
        stripped = text[pos:end_of_line].lstrip(" \t")
        start = pos + (end_of_line - pos - len(stripped))
        if not stripped or stripped.startswith("#"):
            pos = end_of_line + 1
            continue
        match = _ASSIGNMENT.match(text, start)
        if match is None:
            raise SecretError(
                f"{origin}:{line}: expected NAME=value",
                hint="write one `NAME=value` or `export NAME=value` per line",
            )
        value, pos = _parse_value(text, match.end(), origin, line)
        rest_end = text.find("\n", pos)
        rest_end = len(text) if rest_end < 0 else rest_end
        rest = text[pos:rest_end].strip(" \t")
        if rest and not rest.startswith("#"):
            raise SecretError(
                f"{origin}:{line}: unexpected text after the value of {match['name']}",
                hint="quote values that contain spaces",
            )
        found.append(Assignment(match["name"], value, start, pos, stripped.startswith("export")))
        pos = rest_end + 1
    return found


def parse_dotenv(text: str, origin: str) -> dict[str, str]:
    """NAME=value lines; `export`, comments, blank lines, quotes and multi-line quoted values."""
    return {a.name: a.value for a in assignments(text, origin)}


# Characters a shell leaves alone in an unquoted word (no expansion, splitting or globbing).
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def shell_quote(value: str) -> str:
    """The value as one shell word that `source` and tether both read back byte for byte."""
    if _SHELL_SAFE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def check_private(path: Path, st: os.stat_result) -> None:
    if st.st_mode & 0o077:
        raise SecretError(
            f"{path}: group or others may access it (mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"run `chmod 600 {path}`",
        )
    # root may use any user's store (the restore container, a system unit reading ~/.x.env)
    if os.geteuid() != 0 and st.st_uid not in (os.geteuid(), 0):
        raise SecretError(
            f"{path}: owned by uid {st.st_uid}, not by this user",
            hint="the store must belong to the user running tether (or root)",
        )


@dataclass(frozen=True)
class SecretStore:
    """Secret values by name; the environment overrides the file."""

    path: Path | None
    file_values: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value if value is not None else self.file_values.get(name)

    def names(self) -> list[str]:
        return sorted(self.file_values)

    def known(self) -> dict[str, str]:
        """Every value tether may need to mask: the file's, and environment overrides of them."""
        return {name: self.get(name) or "" for name in self.file_values}

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:  # never show values
        return f"SecretStore(path={self.path!s}, names={len(self.file_values)})"


def store_path(explicit: Path | None, configured: str) -> Path:
    """--secrets-file (or TETHER_SECRETS_FILE), else the manifest's `secrets.file`; `~` there is
    the home of the user running tether. Every command that reads the store asks here."""
    return (explicit or Path(configured)).expanduser()


def load_store(path: Path | None, environ: Mapping[str, str] | None = None) -> SecretStore:
    """Read the store; a missing file is an empty store (files needing it end up blocked)."""
    env = dict(os.environ if environ is None else environ)
    if path is None:
        return SecretStore(None, {}, env)
    try:
        # O_NONBLOCK: opening a fifo must not wait for a writer (it is refused just below)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return SecretStore(path, {}, env)
    except OSError as exc:
        if path.is_symlink():
            raise SecretError(
                f"{path}: is a symlink", hint="point --secrets-file at the file itself"
            ) from None
        raise SecretError(f"{path}: cannot read the secret store ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(
                f"{path}: not a regular file", hint="point --secrets-file at a plain file"
            )
        check_private(path, st)
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{path}: not UTF-8 text", hint="save the store as UTF-8") from None
    return SecretStore(path, parse_dotenv(text, str(path)), env)


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace the store whole, 0600 from its first byte (see fsutil.write_atomic)."""
    try:
        write_atomic(path, data, 0o600)
    except OSError as exc:
        raise SecretError(
            f"{path}: cannot write the secret store ({exc.strerror})",
            hint="check the folder exists, is writable and the disk is not full",
        ) from None


class StoreConflict(SecretError):
    """A write refused because the store holds other values than the caller may replace."""

    exit_code = ExitCode.ATTENTION


def save_values(
    path: Path,
    values: Mapping[str, str],
    *,
    guard: Callable[[Mapping[str, str]], None] | None = None,
) -> list[str]:
    """Add or update `values` in the store file; return the names whose value changed.

    Never removes a name. Creates the file 0600 (and its folder 0700); an existing value is
    rewritten in place, keeping its `export` and the rest of the file byte for byte. Writers
    take turns (a lock on the store's folder), so a capture and an import never lose each
    other's values; `guard` sees the stored values under that lock and may refuse by raising.
    """
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise SecretError(f"{path.parent}: cannot create ({exc.strerror})") from None
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(path.parent, folder=True))
        except OSError as exc:
            raise SecretError(f"{path.parent}: cannot lock the folder ({exc.strerror})") from None
        return _save_locked(path, values, guard)


def _save_locked(
    path: Path, values: Mapping[str, str], guard: Callable[[Mapping[str, str]], None] | None
) -> list[str]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise SecretError(f"{path}: cannot read the secret store ({exc.strerror})") from None
    else:
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(
                f"{path}: not a regular file", hint="point --secrets-file at a plain file"
            )
        check_private(path, st)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"{path}: not UTF-8 text", hint="save the store as UTF-8") from None
    existing = assignments(text, str(path))
    current = {a.name: a for a in existing}  # the last assignment of a name wins, as in a shell
    if guard is not None:
        guard({name: a.value for name, a in current.items()})
    export = any(a.export for a in existing) or not existing
    changed = sorted(name for name, value in values.items() if _differs(current.get(name), value))
    if not changed:
        return []
    edits = sorted(
        ((current[n].start, current[n].end, n) for n in changed if n in current), reverse=True
    )
    for start, end, name in edits:
        prefix = "export " if current[name].export else ""
        text = f"{text[:start]}{prefix}{name}={shell_quote(values[name])}{text[end:]}"
    added = [n for n in changed if n not in current]
    if added:
        if text and not text.endswith("\n"):
            text += "\n"
        prefix = "export " if export else ""
        text += "".join(f"{prefix}{n}={shell_quote(values[n])}\n" for n in added)
    _write_atomic(path, text.encode("utf-8"))
    return changed


def _differs(current: Assignment | None, value: str) -> bool:
    return current is None or current.value != value
