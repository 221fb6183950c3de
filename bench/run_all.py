"""Run every benchmark of bench/ in one go, with the settings docs/performance.md quotes.

Run: `make bench` (or `.venv/bin/python bench/run_all.py`); `--quick` uses small sizes to check
that each benchmark still runs (what the slow test tier does), `--only NAME` runs some of them,
`--list` prints the commands without running them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

PEERS = ("rsync", "git")  # programs the benchmarks measure beside tether

# name -> (script, arguments as docs/performance.md quotes them, arguments for --quick)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "agent": ("bench_agent.py", [], []),
    "git": ("git_bench.py", ["--runs", "5"], ["--runs", "1", "--files", "200"]),
    "redact": ("redact_bench.py", ["--files", "1000"], ["--files", "100"]),
    "scan": (
        "scan_bench.py",
        [],  # its defaults: --files 1000 --runs 3
        ["--files", "100", "--runs", "1"],
    ),
    "realworld": ("realworld_bench.py", [], ["--runs", "1"]),  # its default: --runs 3
    "reconcile": (
        "reconcile_bench.py",
        ["--sizes", "1000,10000,50000", "--loop-max", "10000", "--runs", "5"],
        ["--sizes", "200", "--loop-max", "200", "--runs", "1"],
    ),
    "scale": (
        "scale_bench.py",
        ["--sizes", "10000,50000,100000", "--runs", "5"],
        ["--sizes", "300", "--runs", "1"],
    ),
    "fleet": (
        "fleet_bench.py",
        ["--hosts", "200", "--workers", "8"],
        ["--hosts", "4", "--workers", "2"],
    ),
    "capture": (
        "capture_bench.py",
        ["--files", "10000", "--runs", "3"],
        ["--files", "200", "--runs", "1"],
    ),
}


def commands(quick: bool, only: list[str]) -> list[tuple[str, list[str]]]:
    unknown = sorted(set(only) - set(BENCHES))
    if unknown:
        raise SystemExit(
            f"run_all: unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHES)}"
        )
    chosen = only or list(BENCHES)
    return [
        (name, [sys.executable, str(HERE / script), *(fast if quick else full)])
        for name, (script, full, fast) in BENCHES.items()
        if name in chosen
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: does each still run?")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", choices=BENCHES)
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    missing = [peer for peer in PEERS if shutil.which(peer) is None]
    if missing and not args.list:
        print(f"run_all: {', '.join(missing)} not found; install it (the peers run beside tether)")
        return 1
    failed = []
    for name, argv in commands(args.quick, args.only):
        shown = " ".join(["python", *(a.replace(str(HERE.parent) + "/", "") for a in argv[1:])])
        if args.list:
            print(shown)
            continue
        print(f"\n== {name}: {shown}", flush=True)
        start = time.monotonic()
        done = subprocess.run(argv, check=False, cwd=HERE.parent)
        print(f"== {name}: exit {done.returncode} in {time.monotonic() - start:.1f} s", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
