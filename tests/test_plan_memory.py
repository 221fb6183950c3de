"""A plan reads, hashes and drops each file: its peak memory does not grow with file size."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tether.exitcodes import ExitCode

WRAP = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
)
FILES, SIZE = 100, 1 << 20  # 100 MiB of content


def test_peak_rss_of_a_cold_plan_stays_far_below_the_tree_size(tmp_path: Path) -> None:
    repo, root = tmp_path / "repo", tmp_path / "root"
    (repo / "inventory").mkdir(parents=True)
    (repo / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/m\n")
    names = [f"svc/f{i:03d}.conf" for i in range(FILES)]
    (repo / "inventory" / "include-paths.txt").write_text("".join(f"{n}\n" for n in names))
    host = root / "home" / "m" / "svc"
    (repo / "configs" / "svc").mkdir(parents=True)
    host.mkdir(parents=True)
    for i, name in enumerate(names):
        source = repo / "configs" / name
        source.write_bytes(os.urandom(64) * (SIZE // 64) + str(i).encode())
        os.link(source, host / Path(name).name)  # already as desired; no ledger: both read
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WRAP,
            sys.executable,
            "-m",
            "tether",
            "reconcile",
            "--plan",
            "--source",
            str(repo),
            "--target-root",
            str(root),
            "--state-dir",
            str(tmp_path / "state"),
            "--secrets-file",
            str(tmp_path / "none.env"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    code, peak_mib = (int(x) for x in done.stdout.split())
    assert code == ExitCode.OK
    assert peak_mib < 90, (
        f"peak RSS {peak_mib} MiB for a {FILES} MiB tree"
    )  # held whole: 139 measured


# Traced bytes a no-op plan holds for each file it tracks, from the slope between two sizes (the
# fixed cost of imports cancels out), with paths under /tmp/tpXXXXXXXX: 1,750 measured with stat
# signatures as tuples of four ints and unslotted outcomes, 1,460 since; 1,053 since the plan
# observes each file as it reaches it and holds outcomes only for what apply acted on.
NOOP_BYTES_PER_FILE = 1150
TRACED_PLAN = (
    "import sys, tracemalloc\n"
    "tracemalloc.start()\n"
    "code = 0\n"
    "from tether.cli import main\n"
    "sys.argv = ['tether', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "sys.stderr.write(f'{code} {tracemalloc.get_traced_memory()[1]}\\n')\n"
)


def _noop_plan_peak(tmp_path: Path, count: int) -> int:
    """Traced peak bytes of a no-op plan of `count` small files (the ledger recorded)."""
    repo, root, state = tmp_path / f"repo{count}", tmp_path / f"root{count}", tmp_path / f"s{count}"
    (repo / "inventory").mkdir(parents=True)
    (repo / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/m\n")
    names = [f"svc{i % 50}/conf.d/f{i:05d}.conf" for i in range(count)]
    (repo / "inventory" / "include-paths.txt").write_text("".join(f"{n}\n" for n in names))
    for name in names:
        source = repo / "configs" / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"key = {name}\n")
    (root / "home" / "m").mkdir(parents=True)
    args = [
        "reconcile", "--source", str(repo), "--target-root", str(root),
        "--state-dir", str(state), "--secrets-file", str(tmp_path / "none.env"),
    ]  # fmt: skip
    applied = subprocess.run(
        [sys.executable, "-m", "tether", *args, "--apply"], capture_output=True, check=False
    )
    assert applied.returncode == ExitCode.OK
    done = subprocess.run(
        [sys.executable, "-c", TRACED_PLAN, *args, "--plan"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    code, peak = done.stderr.split()[-2:]
    assert code in ("0", "None"), done.stderr
    return int(peak)


def test_a_no_op_plan_holds_little_for_each_file() -> None:
    # Every destination's path is held (ledger key, desired file): a short folder of a fixed
    # length keeps the figure from growing with pytest's temporary folder names.
    with tempfile.TemporaryDirectory(prefix="tp", dir="/tmp") as folder:
        small, large = 500, 4500
        peaks = [_noop_plan_peak(Path(folder), count) for count in (small, large)]
    per_file = (peaks[1] - peaks[0]) / (large - small)
    assert per_file < NOOP_BYTES_PER_FILE, f"{per_file:.0f} bytes a file"


# Modules a plan that saves nothing needs none of: backups are taken by an apply, a plan is
# saved only with --out.
APPLY_ONLY = ("tether.state.backups", "tether.reconcile.savedplan")


def test_a_plan_of_a_plain_folder_imports_neither_dulwich_nor_apply_only_modules(
    tmp_path: Path,
) -> None:
    """dulwich's import is a third of a small plan's start-up; a --source folder that is no git
    clone, with no remote, needs none of it. Nor does it need what only an apply uses."""
    repo = tmp_path / "repo"
    (repo / "inventory").mkdir(parents=True)
    (repo / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/m\n")
    (repo / "inventory" / "include-paths.txt").write_text("a.conf\n")
    (repo / "configs").mkdir()
    (repo / "configs" / "a.conf").write_text("a = 1\n")
    (tmp_path / "root" / "home" / "m").mkdir(parents=True)
    check = (
        "import sys\n"
        "from tether.cli import main\n"
        "sys.argv = ['tether', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"unwanted = {APPLY_ONLY!r}\n"
        "sys.stderr.write(' '.join(m for m in sys.modules\n"
        "                          if m.split('.')[0] == 'dulwich' or m in unwanted))\n"
    )
    args = [
        "reconcile", "--plan", "--source", str(repo), "--target-root", str(tmp_path / "root"),
        "--state-dir", str(tmp_path / "state"), "--secrets-file", str(tmp_path / "none.env"),
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", check, *args], capture_output=True, text=True, check=False
    )
    assert "1 to create" in done.stdout, done.stderr
    assert "dulwich" not in done.stderr, done.stderr
    assert not any(name in done.stderr for name in APPLY_ONLY), done.stderr
