"""Scale of one host: the plan at 10,000 and 100,000 files, memory and time, beside rsync.

    .venv/bin/python bench/scale_bench.py [--sizes 10000,50000,100000] [--runs 3]

For each size it generates a config repo (`reconcile_bench.generate`: N files of 1-6 KiB, each
listed by name in the allowlist), commits it to a bare git repo, and copies configs/ to the host
folder (TARGET/home/bench) with `cp -a`, so every file is already as desired but tether has
recorded nothing. tether's modules are byte-compiled first, as `pip install` does. Each tether
run is a fresh process of the installed `tether` command, start-up included; wall time and peak
RSS are the child's (`getrusage(RUSAGE_CHILDREN)` in a wrapper process):

  cold plan     `tether reconcile --plan --source REPO` with no ledger: every desired file is
                read, rendered and hashed, every host file read and hashed (nothing is cached)
  cold plan, --repo   the same from the git mirror (`--repo REPO.git`, mirror already cloned)
  no-op plan, full    `tether reconcile --plan --source REPO` after a no-op apply recorded the
                ledger: the first plan, made in full (the stat cache vouches for every file), which
                finds nothing to do and caches itself (one run)
  no-op plan, cached  the same plan again: only the stat signatures of what the plan depended
                on are checked (median of --runs)
  rsync         `rsync -a --checksum --dry-run configs/ TARGET/home/bench/` over the whole
                folder (median of --runs, like the no-op plan)
  Python floor  a Python process that only `lstat`s every allowlisted file on both sides and
                compares their stat signatures (`FLOOR`): the least any no-op check written in
                Python pays, before its imports, its ledger and its checks (median of --runs)

Needs rsync and git on PATH; installs nothing itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconcile_bench import HOME, WRAP, byte_compile_tether, generate

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


# The least a no-op check in Python does: read the allowlist, lstat each file's source and
# destination by path and compare the packed stat signatures (tether compares them with its
# ledger's); no imports beyond the standard library's, no ledger, no confinement, no report.
FLOOR = (
    "import os, struct, sys\n"
    "pack = struct.Struct('<QqQq').pack\n"
    "allow, src, dst = sys.argv[1:]\n"
    "changed = 0\n"
    "for line in open(allow):\n"
    "    path = line.rstrip('\\n')\n"
    "    a, b = os.lstat(f'{src}/{path}'), os.lstat(f'{dst}/{path}')\n"
    "    changed += pack(a.st_size, a.st_mtime_ns, a.st_ino, a.st_ctime_ns)"
    " != pack(b.st_size, b.st_mtime_ns, b.st_ino, b.st_ctime_ns)\n"
    "print(changed)\n"
)


def timed(argv: list[str], *, expect: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one fresh child process, after `sync`."""
    os.sync()
    out = subprocess.run(
        [sys.executable, "-c", WRAP, *argv], capture_output=True, text=True, check=True
    )
    code, seconds, rss = out.stdout.split()
    if int(code) not in expect:
        raise SystemExit(f"{' '.join(argv[:6])} exited {code}")
    return float(seconds), int(rss) // 1024


def median(argv: list[str], runs: int) -> tuple[float, int]:
    results = [timed(argv) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


# The installed `tether` command, as an operator runs it (`python -m tether` adds runpy's start).
SCRIPT = Path(sys.executable).with_name("tether")
TETHER = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "tether"]


def tether(source: list[str], root: Path, state: Path, *args: str) -> list[str]:
    return [
        *TETHER, "reconcile", *args, *source,
        "--target-root", str(root), "--state-dir", str(state),
        "--secrets-file", str(state.parent / "none.env"),
    ]  # fmt: skip


def commit_all(repo: Path, bare: Path) -> None:
    """`repo`'s files as one commit of the bare repo `bare`; `repo` stays a plain folder (a
    --source that is a git clone also gets its uncommitted changes checked, not measured here)."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    where = ["git", "-c", "gc.auto=0", f"--git-dir={bare}", f"--work-tree={repo}"]
    for args in (["add", "-A"], ["commit", "-qm", "bench"], ["gc", "-q"]):
        subprocess.run([*where, *args], env=GIT_ENV, check=True)


def bench(count: int, work: Path, runs: int) -> dict[str, object]:
    repo = work / f"repo{count}"
    generate(repo, count)
    bare = work / f"repo{count}.git"
    commit_all(repo, bare)
    source = repo / "configs"
    root = work / f"t{count}"
    dest = root / HOME.lstrip("/")
    dest.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    mib = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) / 2**20
    row: dict[str, object] = {"files": count, "mib": round(mib, 1)}
    folder, remote = ["--source", str(repo)], ["--repo", str(bare)]
    time.sleep(0.2)  # the stat cache does not trust signatures younger than a clock tick

    # Cold plans: no ledger, so nothing is vouched for; each run gets a fresh state dir.
    for name, src in (("cold", folder), ("cold_repo", remote)):
        results = []
        for n in range(runs):
            state = work / f"s{count}-{name}-{n}"
            if src is remote:  # the clone is not what is measured: fetch into the mirror first
                row["clone_repo"], row["clone_repo_rss"] = timed(
                    tether(src, root, state, "--plan"), expect=(0,)
                )
            results.append(timed(tether(src, root, state, "--plan")))
            shutil.rmtree(state)
        row[name] = statistics.median(r[0] for r in results)
        row[f"{name}_rss"] = max(r[1] for r in results)

    state = work / f"s{count}"
    timed(tether(folder, root, state, "--apply"))  # in sync: records the ledger, writes nothing
    time.sleep(0.2)  # as above: the apply's ledger is younger than a clock tick
    # The first no-op plan is made in full, and cached; the next ones check the cache.
    row["noop_full"], row["noop_full_rss"] = timed(tether(folder, root, state, "--plan"))
    if not (state / "plan-cache").is_file():
        raise SystemExit(f"{count} files: the no-op plan was not cached")
    row["noop"], row["noop_rss"] = median(tether(folder, root, state, "--plan"), runs)
    row["rsync"], _ = median(
        ["rsync", "-a", "--checksum", "--dry-run", f"{source}/", f"{dest}/"], runs
    )
    allow = repo / "inventory" / "include-paths.txt"
    floor = [sys.executable, "-c", FLOOR, str(allow), str(source), str(dest)]
    row["floor"], _ = median(floor, runs)
    for path in (root, state, repo, bare):
        shutil.rmtree(path, ignore_errors=True)
    return row


def report(rows: list[dict[str, object]]) -> str:
    out = [
        "| files | MiB | cold plan | peak RSS | cold plan --repo | peak RSS | no-op plan, full "
        "| peak RSS | no-op plan, cached | peak RSS | rsync --checksum -n | full / rsync "
        "| cached / rsync | Python floor | floor / rsync |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        full, noop, rsync, floor = (
            float(r[k])  # type: ignore[arg-type]
            for k in ("noop_full", "noop", "rsync", "floor")
        )
        out.append(
            f"| {r['files']} | {r['mib']} | {float(r['cold']):.2f} s | {r['cold_rss']} MiB "  # type: ignore[arg-type]
            f"| {float(r['cold_repo']):.2f} s | {r['cold_repo_rss']} MiB "  # type: ignore[arg-type]
            f"| {full:.3f} s | {r['noop_full_rss']} MiB | {noop:.3f} s | {r['noop_rss']} MiB "
            f"| {rsync:.3f} s | {full / rsync:.2f}x | {noop / rsync:.2f}x "
            f"| {floor:.3f} s | {floor / rsync:.2f}x |"
        )
    clones = ", ".join(
        f"{r['files']} files {float(r['clone_repo']):.1f} s / {r['clone_repo_rss']} MiB"  # type: ignore[arg-type]
        for r in rows
    )
    out.append(f"\nfirst run from the repo (clones the mirror, then plans): {clones}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,50000,100000")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    missing = [tool for tool in ("rsync", "git") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not installed (apt-get install -y rsync git)")
    byte_compile_tether()
    rows = []
    with tempfile.TemporaryDirectory(
        prefix="tether-scale-", dir=os.environ.get("BENCH_DIR")
    ) as tmp:
        for count in (int(s) for s in args.sizes.split(",")):
            rows.append(bench(count, Path(tmp), args.runs))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1) if args.json else report(rows))


if __name__ == "__main__":
    main()
