"""How one tether starts another: the absolute command and the options to pass on.

The systemd units and the foreground agent run `tether reconcile --apply` (and `tether capture`)
with exactly the source, target and state options the user gave to `agent install`/`agent run`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tether.config.options import HostOptions, SourceOptions
from tether.errors import UsageError
from tether.textsafe import mask_url


def tether_command() -> list[str]:
    """The running tether as an absolute command: its console script, else `python -m tether`."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "tether":
        found = shutil.which(argv0) if os.sep not in argv0 else argv0
        if found and os.access(found, os.X_OK):
            return [str(Path(found).absolute())]
    # absolute(), not resolve(): a venv's python is a symlink whose target lacks the venv.
    return [str(Path(sys.executable).absolute()), "-m", "tether"]


def source_args(source: SourceOptions) -> list[str]:
    if source.repo is not None:
        if mask_url(source.repo) != source.repo:
            raise UsageError(
                f"--repo {mask_url(source.repo)}: the URL holds a password or token",
                hint="unit files and process lists are readable by every user; "
                "use an ssh deploy key, or TETHER_GIT_TOKEN in a root-only EnvironmentFile",
            )
        return ["--repo", source.repo, *(["--ref", source.ref] if source.ref else [])]
    assert source.folder is not None
    return ["--source", str(source.folder.absolute())]


def host_args(host: HostOptions) -> list[str]:
    args = ["--target-root", str(host.target_root.absolute())]
    if host.target_home is not None:
        args += ["--target-home", host.target_home]
    args += ["--state-dir", str(host.state_dir.absolute())]
    if host.secrets_file is not None:
        args += ["--secrets-file", str(host.secrets_file.absolute())]
    if host.host_name is not None:
        args += ["--host", host.host_name]
    if not host.report:
        args.append("--no-report")
    return args


def passthrough_args(
    source: SourceOptions, host: HostOptions, metrics_file: Path | None = None
) -> list[str]:
    """The options every run of the agent repeats, all paths absolute."""
    extra = ["--metrics-file", str(metrics_file.absolute())] if metrics_file else []
    return [*source_args(source), *host_args(host), *extra]
