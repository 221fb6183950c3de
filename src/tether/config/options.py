"""The options many commands share, resolved once into one frozen value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import UsageError
from tether.textsafe import mask_url

if TYPE_CHECKING:
    from tether.config.sourcetree import SourceTree

_REMOTE_FORMS = re.compile(
    r"^(?:(?:file|git|http|https|ssh|git\+ssh)://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^\s]*)$"
)


_TRUE_WORDS = ("true", "1", "yes")
_FALSE_WORDS = ("false", "0", "no")


@dataclass(frozen=True)
class EnvFlag:
    """A true/false environment variable as read: which name set it, and to what."""

    name: str  # NAME or TETHER_NAME
    value: bool

    def __str__(self) -> str:
        return f"{self.name}={'true' if self.value else 'false'}"


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> EnvFlag | None:
    """$TETHER_<name> or $<name> (the article's spelling): true/false, 1/0, yes/no in any case;
    unset or empty is None; anything else, or the two names disagreeing, is a usage error."""
    env = os.environ if environ is None else environ
    found: list[EnvFlag] = []
    for var in (f"TETHER_{name}", name):
        raw = env.get(var, "").strip()
        if not raw:
            continue
        word = raw.lower()
        if word not in _TRUE_WORDS + _FALSE_WORDS:
            shown = raw if len(raw) <= 20 and raw.isprintable() else "(an unexpected value)"
            raise UsageError(
                f"{var}={shown}: not true or false",
                hint="use true/false, 1/0 or yes/no (any case), or unset it",
            )
        found.append(EnvFlag(var, word in _TRUE_WORDS))
    if len(found) == 2 and found[0].value != found[1].value:
        raise UsageError(f"{found[0]} and {found[1]} disagree", hint=f"set only {found[0].name}")
    return found[0] if found else None


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/tether")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tether"


def check_remote(repo: str) -> str:
    """Accept a local path or a URL git understands; say what is wrong otherwise."""
    if _REMOTE_FORMS.match(repo):
        return repo
    if "://" in repo:
        scheme = repo.split("://", 1)[0]
        raise UsageError(
            f"--repo {mask_url(repo)}: unsupported scheme {scheme!r}",
            hint="use a path, file://, git://, http(s)://, ssh:// or user@host:path",
        )
    if not Path(repo).exists():
        raise UsageError(
            f"--repo {repo}: no such path", hint="give an existing repo folder or a URL"
        )
    return repo


@dataclass(frozen=True)
class SourceOptions:
    """Where the desired state comes from: a folder, or a git remote and a ref."""

    folder: Path | None = None
    repo: str | None = None
    ref: str | None = None

    @classmethod
    def resolve(cls, source: Path | None, repo: str | None, ref: str | None) -> SourceOptions:
        if source is not None and repo is not None:
            raise UsageError("--source and --repo name two config repos", hint="give only one")
        if ref is not None and repo is None:
            raise UsageError("--ref needs --repo", hint="a --source folder has no refs")
        if repo is not None:
            return cls(repo=check_remote(repo), ref=ref)
        if source is None:
            from tether.config.manifest import MANIFEST_NAME  # noqa: PLC0415 (see folder_tree)

            here = Path.cwd()
            if not (here / MANIFEST_NAME).is_file():
                raise UsageError(
                    f"no config repo: {here} holds no {MANIFEST_NAME}",
                    hint="pass --source DIR or --repo URL, or run inside a config repo",
                )
            source = here
        if not source.is_dir():
            raise UsageError(f"--source {source}: not a folder", hint="give a config repo folder")
        return cls(folder=source.resolve())

    def folder_tree(self) -> SourceTree:
        # Loaded on use: every command parses its options, a cached plan reads no tree.
        from tether.config.sourcetree import FolderTree  # noqa: PLC0415

        assert self.folder is not None, "folder_tree() on a --repo source"
        return FolderTree(self.folder)


@dataclass(frozen=True)
class HostOptions:
    """Where the desired state is written, and where tether keeps its own state."""

    target_root: Path
    target_home: str | None
    state_dir: Path
    secrets_file: Path | None
    host_name: str | None = None  # --host / TETHER_HOST: the profile of `hosts:` to apply
    report: bool = True  # push refs/tether/status/<host> after the run (--no-report: off)


def resolve_host_options(
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    *,
    host_name: str | None = None,
    report: bool = True,
) -> HostOptions:
    root = target_root if target_root is not None else Path("/")
    if target_home is not None and not target_home.startswith("/"):
        raise UsageError(
            f"--target-home {target_home}: not absolute", hint="write it as /home/NAME"
        )
    return HostOptions(
        target_root=root.resolve() if root != Path("/") else root,
        target_home=target_home.rstrip("/") or "/" if target_home else None,
        state_dir=(state_dir or default_state_dir()).expanduser(),
        secrets_file=secrets_file.expanduser() if secrets_file else None,
        host_name=host_name,
        report=report,
    )
