"""`tether redact PATH...`: secrets in files become named placeholders; values go to the store.

The store is written first (atomically), then each file (atomically, mode kept), so a crash
never leaves a placeholder whose value is nowhere. `--check` writes nothing and lists what it
would redact (the pre-commit mode). Output names secrets, never shows a value.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from tether.config.manifest import DEFAULT_SECRETS_FILE, MANIFEST_NAME, load_manifest
from tether.errors import SecretError, TetherError, UsageError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import write_atomic
from tether.secrets.redact import placeholders_in, redact_files
from tether.secrets.scan import store_value_spans, store_values
from tether.secrets.store import load_store, save_values, store_path
from tether.textsafe import counted, looks_binary

_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules"})


@dataclass(frozen=True)
class RepoContext:
    """Where names come from: the config repo (if any) holding the files."""

    root: Path | None
    source: str = "configs"
    secrets_file: str = DEFAULT_SECRETS_FILE

    def name_path(self, path: Path) -> str:
        """The path a file's secret names derive from (its inventory path when in the repo)."""
        resolved = path.resolve()
        if self.root is not None:
            for base in (self.root / self.source, self.root):
                if resolved.is_relative_to(base):
                    return resolved.relative_to(base).as_posix()
        try:
            return resolved.relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return path.as_posix().lstrip("/")


def find_repo(start: Path) -> RepoContext:
    """The nearest folder at or above `start` holding tether.yaml (read leniently)."""
    folder = start.resolve()
    folder = folder if folder.is_dir() else folder.parent
    for candidate in (folder, *folder.parents):
        manifest = candidate / MANIFEST_NAME
        if manifest.is_file():
            parsed = load_manifest(manifest)
            return RepoContext(candidate, parsed.source, parsed.secrets_file)
    return RepoContext(None)


def walk(paths: Sequence[Path]) -> Iterator[Path]:
    """The files named and the files in the folders named (sorted; no links, no VCS dirs)."""
    for path in paths:
        if path.is_symlink():
            continue  # a link's target is redacted where it lives, not through the link
        if path.is_dir():
            found: list[Path] = []
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                found += [Path(folder, f) for f in files]
            for file in sorted(found):
                if not file.is_symlink() and file.is_file():
                    yield file
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{path}: no such file or folder", hint="check the path")


def read_text(path: Path) -> str | None:
    """The file as text; None when it is binary or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TetherError(
            f"{path}: cannot read ({exc.strerror})", hint="check permissions"
        ) from None
    if looks_binary(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # not text: nothing tether could redact byte-exactly


def write_text(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its mode."""
    try:
        write_atomic(path, text.encode("utf-8"), stat.S_IMODE(path.stat().st_mode))
    except OSError as exc:
        raise TetherError(
            f"{path}: cannot write ({exc.strerror})", hint="check permissions and free space"
        ) from None


def _repo_texts(context: RepoContext, skip: set[Path]) -> dict[Path, str]:
    """The other files of the config repo, for the names their placeholders already use."""
    if context.root is None or not (context.root / context.source).is_dir():
        return {}
    skip = {p.resolve() for p in skip}
    out: dict[Path, str] = {}
    for path in walk([context.root / context.source]):
        if path.resolve() not in skip and (text := read_text(path)) is not None:
            out[path.resolve()] = text
    return out


def run(
    paths: Sequence[Path],
    *,
    check: bool,
    secrets_file: Path | None,
    environ: Mapping[str, str] | None = None,
) -> int:
    if not paths:
        raise UsageError("no PATH given", hint="name the files or folders to redact")
    context = find_repo(paths[0])
    store_file = store_path(secrets_file, context.secrets_file)
    try:
        stored = dict(load_store(store_file, environ or {}).file_values)
    except SecretError:
        if not check:
            raise
        stored = {}  # --check names what it would redact; it needs no value
    texts = {p: t for p in walk(paths) if (t := read_text(p)) is not None}
    by_name = {context.name_path(p): p for p in texts}
    repo_names = {
        context.name_path(p): [n for n, _line in placeholders_in(t)]
        for p, t in _repo_texts(context, set(texts)).items()
    }
    redacted = redact_files({name: texts[p] for name, p in by_name.items()}, stored, repo_names)
    results = [(by_name[n], r) for n, r in sorted(redacted.items()) if r.secrets]
    for path, result in results:
        for secret in result.secrets:
            click.echo(f"{path}:{secret.line}: {secret.name}")
    count = sum(len(r.secrets) for _, r in results)
    known = store_values([*stored.values(), *(s.value for _, r in results for s in r.secrets)])
    left = [
        (by_name[n], line)
        for n, r in sorted(redacted.items())
        for _start, _end, line in store_value_spans(r.text, known)
    ]
    for path, line in left:  # where no rule recognises the value: a comment, a neutral key
        click.echo(f"{path}:{line}: a value of the secret store, in plain text", err=True)
    if left:
        click.echo(
            f"{counted(len(left), 'value')} of the secret store left in plain text that no rule "
            "recognises: replace each with its placeholder by hand",
            err=True,
        )
    if check:
        if count or left:
            click.echo(
                f"{counted(count, 'secret')} in {counted(len(results), 'file')} "
                f"{'needs' if count == 1 else 'need'} redaction: "
                f"run `tether redact {' '.join(str(p) for p in paths)}`",
                err=True,
            )
            return int(ExitCode.ATTENTION)
        return int(ExitCode.OK)
    if results:
        updates = {s.name: s.value for _, r in results for s in r.secrets}
        changed = save_values(store_file, updates)
        for path, result in results:
            write_text(path, result.text)
        click.echo(
            f"redacted {counted(count, 'secret')} in {counted(len(results), 'file')}; "
            f"{counted(len(changed), 'value')} added or updated in {store_file}",
            err=True,
        )
    elif not left:
        click.echo("nothing to redact", err=True)
    return int(ExitCode.ATTENTION if left else ExitCode.OK)
