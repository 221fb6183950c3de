"""A config repo, a target root, a state dir and a secret store in temp folders, and a way to
run `tether` on them in-process (stdout and stderr captured)."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testing.repos import make_config_repo
from tether.cli import main
from tether.exitcodes import ExitCode

HOME = "/home/demo"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Site:
    repo: Path
    root: Path
    state: Path
    secrets: Path

    def host_args(self) -> list[str]:
        return [
            "--source", str(self.repo),
            "--target-root", str(self.root),
            "--state-dir", str(self.state),
            "--secrets-file", str(self.secrets),
        ]  # fmt: skip

    def tether(self, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return Result(code, out.getvalue(), err.getvalue())

    def reconcile(self, *args: str) -> Result:
        return self.tether("reconcile", *self.host_args(), *args)

    def plan(self, *args: str) -> dict[str, str]:
        """dest-relative path -> action, from `--json`."""
        result = self.reconcile("--json", *args)
        assert result.code in (ExitCode.OK, ExitCode.ATTENTION), result.err
        return {f["path"]: f["action"] for f in result.json()["files"]}

    def dest(self, path: str) -> Path:
        return self.root / HOME.lstrip("/") / path

    def source(self, path: str) -> Path:
        return self.repo / "configs" / path

    def set_source(self, path: str, text: str) -> None:
        target = self.source(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def make_site(
    tmp: Path,
    files: dict[str, str],
    *,
    manifest: str | None = None,
    inventory: str | None = None,
    secrets: str = "",
) -> Site:
    kwargs: dict[str, Any] = {"inventory": inventory}
    if manifest is not None:
        kwargs["manifest"] = manifest
    repo = make_config_repo(tmp / "repo", files, **kwargs)
    root = tmp / "root"
    root.mkdir()
    store = tmp / "secrets.env"
    store.write_text(secrets)
    store.chmod(0o600)
    return Site(repo, root, tmp / "state", store)
