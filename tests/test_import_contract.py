"""The import contract in pyproject.toml is live: each kind of bad import breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
COMMAND_HELPERS = {
    "__init__",
    "errorhandler",
    "findings",
    "progress",
    "reconcilerun",  # the reconcile command's full run, loaded only when a plan is made
    "style",
}  # shared by commands

# (file under src/tether, a line to add, the contract it must break)
BAD_IMPORTS = [
    ("hostfs/fsutil.py", "import tether.reconcile.planner", "layers"),
    ("config/manifest.py", "import dulwich.repo", "dulwich only under tether.git"),
    ("reconcile/planner.py", "import click", "click only in the CLI and the commands"),
    ("secrets/store.py", "import cryptography", "cryptography only in tether.secrets.sealed"),
    ("commands/init.py", "import tether.commands.scan", "no command imports another command"),
]


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
    )


def test_the_contract_holds_on_the_tree() -> None:
    done = lint_imports(ROOT / "src")
    assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.parametrize(("module", "line", "contract"), BAD_IMPORTS)
def test_a_bad_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(ROOT / "src" / "tether", tmp_path / "tether")
    target = tmp_path / "tether" / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate break\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    broken = [row for row in done.stdout.splitlines() if row.endswith("BROKEN")]
    assert len(broken) == 1 and broken[0].startswith(contract), done.stdout[-2000:]


def test_every_secrets_module_but_sealed_is_kept_from_cryptography() -> None:
    (contract,) = [
        c for c in contracts() if c["name"] == "cryptography only in tether.secrets.sealed"
    ]
    listed = set(contract["source_modules"])  # type: ignore[arg-type]
    package = ROOT / "src" / "tether" / "secrets"
    modules = {f"tether.secrets.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {f"tether.secrets.{p.parent.name}" for p in package.glob("*/__init__.py")}
    assert modules - listed == {"tether.secrets.sealed"}


def test_every_command_module_is_in_the_independence_contract() -> None:
    (independence,) = [c for c in contracts() if c["type"] == "independence"]
    listed = set(independence["modules"])  # type: ignore[arg-type]
    modules = {
        f"tether.commands.{p.stem}"
        for p in (ROOT / "src" / "tether" / "commands").glob("*.py")
        if p.stem not in COMMAND_HELPERS
    }
    assert listed == modules
