"""`tether scan`: look for secrets in files, the index, a commit range or a push.

Modes (one at a time): PATH... (files and folders; default the config repo's source folder,
else `.`), `--staged` (index blobs that differ from HEAD), `--commits A..B` (what each commit
adds), `--pre-push` (the commits a `git push` sends, from git's stdin or pre-commit's
environment) and `--hook` (a pre-commit framework hook: the commits being pushed at the
pre-push stage, else the files pre-commit passes).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from tether.config.inventory import matches
from tether.config.manifest import MANIFEST_NAME, Manifest, load_manifest
from tether.errors import TetherError, UsageError
from tether.exitcodes import ExitCode
from tether.hostfs.fsutil import git_work_tree
from tether.secrets.baseline import BASELINE_NAME, load_baseline, new_salt, write_baseline
from tether.secrets.scan import MAX_SIZE, RuleSet, Scanner, ScanResult, default_rules
from tether.secrets.scanreport import render
from tether.secrets.store import load_store, store_path
from tether.textsafe import printable

if TYPE_CHECKING:
    from tether.git.read import CommitId, WorkRepo

_SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
UNREADABLE = ""  # the walk's path for a folder it could not list


@dataclass(frozen=True)
class ScanRequest:
    paths: tuple[Path, ...] = ()
    staged: bool = False
    commits: str | None = None
    pre_push: bool = False
    hook: bool = False
    fmt: str = "text"
    baseline: Path | None = None
    update_baseline: bool = False
    max_size: int = MAX_SIZE
    exclude: tuple[str, ...] = ()
    remote: str | None = None

    def check(self) -> None:
        modes = [
            name
            for name, on in (
                ("PATH", bool(self.paths) and not self.hook),
                ("--staged", self.staged),
                ("--commits", self.commits is not None),
                ("--pre-push", self.pre_push),
                ("--hook", self.hook),
            )
            if on
        ]
        if len(modes) > 1:
            raise UsageError(f"{' and '.join(modes)} name two things to scan", hint="give one")
        if self.remote is not None and not self.pre_push:
            raise UsageError("--remote goes with --pre-push")
        if self.max_size <= 0:
            raise UsageError("--max-size must be positive")
        for pattern in self.exclude:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UsageError(
                    f"--exclude {pattern!r}: not a regular expression ({exc})"
                ) from None


def _display(path: Path, root: Path) -> str:
    """Paths are shown (and fingerprinted) relative to the repo root, so they are stable."""
    absolute = path.absolute()
    for base in (root, Path.cwd()):
        try:
            return absolute.relative_to(base).as_posix()
        except ValueError:
            continue
    return absolute.as_posix()


def default_targets(cwd: Path) -> list[Path]:
    """The config repo's source folder when run in one, else the current folder."""
    from tether.config.manifest import MANIFEST_NAME, load_manifest  # noqa: PLC0415 (start-up)

    manifest = cwd / MANIFEST_NAME
    if not manifest.is_file():
        return [cwd]
    parsed = load_manifest(manifest)
    return [cwd / parsed.source]


IgnoreFn = Callable[[str], bool]


def _nothing_ignored(relpath: str) -> bool:
    return False


def git_ignored(root: Path) -> IgnoreFn:
    """What `.gitignore` (and info/exclude) leave out of the work tree at `root`."""
    if not (root / ".git").exists():
        return _nothing_ignored
    from tether.git.read import git_ignored as read_ignores  # noqa: PLC0415 (dulwich, walks only)

    return read_ignores(root) or _nothing_ignored


def walk(
    targets: Sequence[Path], root: Path, baseline: Path, ignored: IgnoreFn | None = None
) -> Iterator[tuple[str, str]]:
    """(shown path, path to open) of files named and files below folders named.

    Folders skip what git ignores, `.git`, symlinks (a link's target is scanned where it
    lives) and the baseline file. Strings, not Path objects: walks cover thousands of files.
    """
    skip_file = str(baseline.absolute())
    for target in targets:
        if target.is_symlink() and not target.exists():
            continue
        if target.is_file():
            yield _display(target, root), str(target)
            continue
        if not target.is_dir():
            raise UsageError(f"{target}: no such file or folder", hint="check the path")
        top = _display(target, root)
        is_ignored = ignored or git_ignored(root)
        if is_ignored(top.rstrip("/") + "/"):
            is_ignored = _nothing_ignored  # a folder named on purpose is scanned whole
        stack = [(str(target.absolute()), "" if top == "." else top.rstrip("/") + "/")]
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=lambda e: e.name)
            except OSError:
                yield prefix or top, UNREADABLE  # counted as skipped, the walk goes on
                continue
            subfolders = []
            for entry in entries:
                shown = prefix + entry.name
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    if entry.name not in _SKIP_DIRS and not is_ignored(shown + "/"):
                        subfolders.append((entry.path, shown + "/"))
                elif entry.is_file() and entry.path != skip_file and not is_ignored(shown):
                    yield shown, entry.path
            stack.extend(reversed(subfolders))


def _file_items(scanner: Scanner, targets: Sequence[Path], root: Path, baseline: Path) -> None:
    limit = scanner.max_size
    for shown, path in walk(targets, root, baseline):
        if not scanner.path_filter(shown):
            continue
        if path == UNREADABLE:
            scanner.skip(shown, "unreadable folder")
            continue
        try:
            with open(path, "rb") as handle:  # noqa: PTH123 (a str path from the walk)
                data = handle.read(limit + 1)
        except OSError as exc:
            scanner.skip(shown, f"unreadable ({exc.strerror})")
            continue
        if len(data) > limit:
            scanner.skip(shown, f"larger than {limit} bytes")
            continue
        scanner.scan_bytes(shown, data)


def _pre_push_commits(
    repo: WorkRepo, stdin: TextIO, environ: Mapping[str, str], remote: str | None
) -> list[CommitId]:
    framework_remote = environ.get("PRE_COMMIT_REMOTE_NAME")
    if framework_remote is not None:
        # pre-commit read git's stdin itself and passes the push in its environment.
        exclude = repo.remote_tips(framework_remote)
        from_ref, to_ref = environ.get("PRE_COMMIT_FROM_REF"), environ.get("PRE_COMMIT_TO_REF")
        if to_ref:
            if from_ref and repo.has(from_ref):
                exclude.append(repo.resolve(from_ref))
            return repo.commits([repo.resolve(to_ref)], exclude)
        # A push from a root commit: pre-commit sets no refs; scan the whole new history.
        tip = repo.resolve(environ.get("PRE_COMMIT_LOCAL_BRANCH") or "HEAD")
        return repo.commits([tip], exclude)
    if stdin.isatty():
        raise UsageError(
            "--pre-push reads git's pre-push lines on stdin",
            hint="run it from a pre-push hook, or use --commits A..B",
        )
    return repo.pushed_commits(stdin.read().splitlines(), remote)


def _git_items(
    scanner: Scanner, request: ScanRequest, root: Path, stdin: TextIO, environ: Mapping[str, str]
) -> None:
    from tether.git.read import WorkRepo  # noqa: PLC0415 (dulwich only when git is read)

    with WorkRepo(root) as repo:
        if request.staged:
            for blob in repo.staged(environ.get("GIT_INDEX_FILE")):
                scanner.scan_bytes(blob.path, blob.data)
            return
        if request.commits is not None:
            commits = repo.commit_range(request.commits)
        else:
            commits = _pre_push_commits(repo, stdin, environ, request.remote)
        for sha in commits:
            for blob in repo.changed(sha):
                scanner.scan_bytes(blob.path, blob.data, blob.commit)


def _repo_manifest(root: Path) -> Manifest | None:
    """The config repo's manifest when the scanned repo is one (and it reads cleanly)."""
    try:
        return load_manifest(root / MANIFEST_NAME)
    except TetherError:
        return None


def _store_values(manifest: Manifest | None, environ: Mapping[str, str]) -> list[str]:
    """The values of this host's secret store (TETHER_SECRETS_FILE, else the config repo's
    `secrets.file`), so that one written where no rule looks is still stopped. No store, or
    none that can be read here (a clone on another machine): nothing to add."""
    explicit = environ.get("TETHER_SECRETS_FILE")
    if not explicit and manifest is None:
        return []
    configured = manifest.secrets_file if manifest is not None else ""
    try:
        store = load_store(store_path(Path(explicit) if explicit else None, configured), environ)
    except TetherError:
        return []
    return list(store.known().values())


def run_scan(
    request: ScanRequest,
    *,
    rules: RuleSet | None = None,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[ScanResult, Path, bytes]:
    """Scan as asked; returns the result, the baseline path and the salt used."""
    request.check()
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    git_root = git_work_tree(cwd)
    root = git_root or cwd
    baseline_path = request.baseline or root / BASELINE_NAME
    baseline = load_baseline(baseline_path)
    salt = baseline.salt if baseline else new_salt()
    accepted = baseline.fingerprints if baseline and not request.update_baseline else frozenset()
    scanner = Scanner(rules or default_rules(), salt, accepted, request.max_size)
    manifest = _repo_manifest(root)
    scanner.use_store(_store_values(manifest, environ))
    # The baseline holds a salt and fingerprints (random-looking by design), never secrets.
    patterns = [f"(?:^|/){re.escape(BASELINE_NAME)}$", *request.exclude]
    excluded = re.compile("|".join(f"(?:{p})" for p in patterns))
    scanner.path_filter = lambda path: excluded.search(path) is None
    hook_push = request.hook and "PRE_COMMIT_REMOTE_NAME" in environ
    scanner.strict = request.hook or request.staged or request.commits is not None
    scanner.strict = scanner.strict or request.pre_push
    allowed = manifest.allow_unscanned if manifest is not None else ()
    scanner.allow_unscanned = lambda path: any(matches(g, path) for g in allowed)
    if request.staged or request.commits is not None or request.pre_push or hook_push:
        if git_root is None:
            raise TetherError(f"{cwd}: not inside a git repository", hint="run it in a work tree")
        if hook_push:
            request = ScanRequest(pre_push=True, exclude=request.exclude)
        _git_items(scanner, request, root, stdin or sys.stdin, environ)
    elif request.hook:
        # pre-commit stage: pre-commit stashed unstaged changes, so the files are the index's.
        _file_items(scanner, [cwd / p for p in request.paths], root, baseline_path)
    else:
        targets = [cwd / p for p in request.paths] or default_targets(cwd)
        _file_items(scanner, targets, root, baseline_path)
    return scanner.result, baseline_path, salt


def scan(request: ScanRequest, *, rules: RuleSet | None = None) -> int:
    result, baseline_path, salt = run_scan(request, rules=rules)
    if request.update_baseline:
        write_baseline(baseline_path, salt, result.findings)
        click.echo(
            f"wrote {baseline_path} ({len(result.findings)} accepted findings); commit it",
            err=True,
        )
        return int(ExitCode.OK)
    output = render(result, request.fmt)
    if output:
        click.echo(output, nl=False)
    binaries = 0
    for path, reason in result.skipped:
        if reason == "binary":
            binaries += 1  # expected (images, archives): counted, not listed
        else:
            click.echo(f"{path}: skipped ({reason})", err=True)
    skipped = f"skipped {result.files_skipped}"
    if binaries:
        skipped += f" ({binaries} binary)"
    summary = (
        f"scanned {result.files_scanned} files, {skipped}: {len(result.findings)} possible secrets"
    )
    if result.baselined:
        summary += f" ({result.baselined} more accepted by the baseline)"
    click.echo(summary, err=True)
    for path in result.unscanned:
        click.echo(
            printable(
                f"{path}: not scanned (larger than {request.max_size} bytes): the hook cannot "
                "vouch for it; list it under scan.allow_unscanned in tether.yaml, or raise "
                "--max-size"
            ),
            err=True,
        )
    if result.findings:
        click.echo(
            "replace each with a placeholder (`tether redact`), mark the line `tether:allow`, "
            "or accept them with `tether scan --update-baseline`",
            err=True,
        )
    if result.findings or result.unscanned:
        return int(ExitCode.ATTENTION)
    return int(ExitCode.OK)
