"""`make bench` runs every benchmark of bench/; the slow tier checks each still runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "bench" / "run_all.py"


def test_make_bench_runs_run_all_over_every_benchmark_script() -> None:
    assert re.search(r"^bench:.*\n\t.*bench/run_all\.py", (ROOT / "Makefile").read_text(), re.M)
    listed = subprocess.run(
        [sys.executable, str(RUN_ALL), "--list"], capture_output=True, text=True, check=True
    ).stdout
    scripts = {line.split()[1] for line in listed.splitlines()}
    expected = {
        f"bench/{p.name}"
        for p in (ROOT / "bench").glob("*.py")
        if "def main" in p.read_text() and p.name not in {"run_all.py", "labeled_tree.py"}
    }
    assert scripts == expected  # a new benchmark must be added to run_all.BENCHES


def test_the_quoted_commands_are_the_ones_in_performance_md() -> None:
    listed = subprocess.run(
        [sys.executable, str(RUN_ALL), "--list"], capture_output=True, text=True, check=True
    ).stdout
    doc = (ROOT / "docs" / "performance.md").read_text()
    for line in listed.splitlines():
        assert line.replace("python ", ".venv/bin/python ", 1) in doc, line


@pytest.mark.slow
def test_every_benchmark_still_runs_at_small_sizes() -> None:
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_timed_benches_byte_compile_tether_first(tmp_path: Path) -> None:
    """A timed run must not compile tether's modules (pip installs them compiled): the helper
    writes every module's bytecode, even where PYTHONDONTWRITEBYTECODE is set."""
    package = tmp_path / "tether"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("X = 1\n")
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from reconcile_bench import byte_compile_tether\n"
        "byte_compile_tether()\n"
    )
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(ROOT / "bench")], env=env, check=True
    )
    compiled = sorted(p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc"))
    assert compiled == ["__init__", "mod"]
