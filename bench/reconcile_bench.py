"""Reconcile speed, side by side with rsync and the article's shell loop, on one generated tree.

    .venv/bin/python bench/reconcile_bench.py [--sizes 1000,10000,50000] [--loop-max 10000]

For each size it generates a config repo (N files of 1-6 KB under realistic nesting, listed
one by one in the allowlist) and measures, each as a fresh subprocess (start-up included):
  first apply  `tether reconcile --apply` into an empty target
               vs `rsync -a --files-from=ALLOWLIST` and the article's loop (`mkdir -p` + `cp -f`
               per allowlisted file, in one `sh`)
  no-op plan   `tether reconcile --plan` on the applied target
               vs `rsync -a --checksum --dry-run --files-from=ALLOWLIST`
  peak RSS     of each tether process (getrusage of a wrapper's children)
Every measurement starts after `sync`, so no contender pays for flushing another's writes.
tether's modules are byte-compiled first, as `pip install` does (`byte_compile_tether`).
tether makes its writes durable (syncfs) before it renames; rsync and cp do not.
Needs rsync on PATH (apt-get install -y rsync); installs nothing itself.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOME = "/home/bench"
WRAP = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "t = time.perf_counter() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(code, t, rss)\n"
)
SERVICES = ["traefik", "authentik", "pihole", "plex", "sonarr", "radarr", "homepage", "immich"]
WORDS = ("server", "port", "host", "path", "enabled", "timeout", "retries", "level", "token")


def generate(repo: Path, count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    (repo / "inventory").mkdir(parents=True)
    (repo / "tether.yaml").write_text(f"version: 1\ntarget:\n  home: {HOME}\n")
    paths = []
    for i in range(count):
        service = f"{SERVICES[i % len(SERVICES)]}{i // 400}"
        depth = rng.choice(["", "config/", "config/conf.d/", "data/templates/", "etc/app/sub/"])
        paths.append(f"{service}/{depth}file{i:06d}.conf")
    for path in paths:
        lines = [
            f"{rng.choice(WORDS)}_{j} = {rng.randrange(10**9)}\n"
            for j in range(rng.randrange(40, 240))
        ]
        target = repo / "configs" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(lines))
    (repo / "inventory" / "include-paths.txt").write_text("".join(f"{p}\n" for p in paths))
    return paths


def timed(argv: list[str]) -> tuple[float, int]:
    # Start each contender with no dirty data: tether's durable writes would otherwise also
    # flush what the generator (or the previous contender) left in the page cache.
    os.sync()
    out = subprocess.run(
        [sys.executable, "-c", WRAP, *argv], capture_output=True, text=True, check=True
    )
    code, seconds, rss = out.stdout.split()
    if int(code) not in (0, 1):
        raise SystemExit(f"{argv[:4]} exited {code}")
    return float(seconds), int(rss) // 1024


def median(argv: list[str], runs: int) -> tuple[float, int]:
    results = [timed(argv) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def tether(repo: Path, root: Path, state: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "tether", "reconcile", *args,
        "--source", str(repo), "--target-root", str(root), "--state-dir", str(state),
        "--secrets-file", str(state.parent / "none.env"),
    ]  # fmt: skip


def bench(count: int, work: Path, loop_max: int, runs: int) -> dict[str, object]:
    repo = work / f"repo{count}"
    generate(repo, count)
    source, allow = repo / "configs", repo / "inventory" / "include-paths.txt"
    row: dict[str, object] = {"files": count}
    mb = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) / 2**20
    row["mib"] = round(mb, 1)

    root, state = work / f"t{count}", work / f"s{count}"
    root.mkdir()
    row["tether_apply"], row["tether_apply_rss"] = timed(tether(repo, root, state, "--apply"))
    rsync_dest = work / f"r{count}" / HOME.lstrip("/")
    rsync_dest.mkdir(parents=True)
    row["rsync_apply"], _ = timed(
        ["rsync", "-a", f"--files-from={allow}", f"{source}/", f"{rsync_dest}/"]
    )
    if count <= loop_max:
        loop_dest = work / f"l{count}" / HOME.lstrip("/")
        script = (
            'while IFS= read -r p; do mkdir -p "$2/$(dirname "$p")"; cp -f "$1/$p" "$2/$p"; '
            'done < "$3"'
        )
        row["loop_apply"], _ = timed(
            ["sh", "-c", script, "sh", str(source), str(loop_dest), str(allow)]
        )

    time.sleep(0.2)  # the stat cache does not trust signatures younger than a clock tick
    timed(tether(repo, root, state, "--apply"))  # a no-op apply records them
    row["tether_plan"], row["tether_plan_rss"] = median(tether(repo, root, state, "--plan"), runs)
    row["rsync_checksum"], _ = median(
        [
            "rsync",
            "-a",
            "--checksum",
            "--dry-run",
            f"--files-from={allow}",
            f"{source}/",
            f"{rsync_dest}/",
        ],
        runs,
    )
    for path in (root, state, rsync_dest.parents[1], repo):
        shutil.rmtree(path, ignore_errors=True)
    if count <= loop_max:
        shutil.rmtree(work / f"l{count}", ignore_errors=True)
    return row


def report(rows: list[dict[str, object]]) -> str:
    head = (
        "| files | MiB | no-op plan | rsync --checksum -n | ratio | first apply | rsync -a | ratio "
        "| shell loop | loop / tether | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    out = [head]
    for r in rows:
        plan, rck = float(r["tether_plan"]), float(r["rsync_checksum"])  # type: ignore[arg-type]
        apply, ra = float(r["tether_apply"]), float(r["rsync_apply"])  # type: ignore[arg-type]
        loop = r.get("loop_apply")
        loop_s = f"{float(loop):.2f} s | {float(loop) / apply:.0f}x" if loop else "not run | -"  # type: ignore[arg-type]
        rss = max(int(r["tether_apply_rss"]), int(r["tether_plan_rss"]))  # type: ignore[call-overload]
        out.append(
            f"| {r['files']} | {r['mib']} | {plan:.3f} s | {rck:.3f} s | {plan / rck:.2f}x "
            f"| {apply:.3f} s | {ra:.3f} s | {apply / ra:.2f}x | {loop_s} | {rss} MiB |"
        )
    return "\n".join(out)


def byte_compile_tether() -> None:
    """Compile tether's modules to bytecode before timing it, as `pip install` does. An editable
    install run with PYTHONDONTWRITEBYTECODE set (as some shells and CI set it) would otherwise
    compile every module again in every timed run: about 60 ms a start that no user pays."""
    import tether  # noqa: PLC0415 (the bench's own interpreter finds the package under test)

    if not compileall.compile_dir(Path(tether.__file__).parent, quiet=1):
        raise SystemExit("bench: cannot byte-compile tether's modules")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument(
        "--loop-max", type=int, default=10000, help="largest size the shell loop runs on"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per no-op measurement (median)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("rsync") is None:
        raise SystemExit("rsync is not installed (apt-get install -y rsync)")
    byte_compile_tether()
    rows = []
    with tempfile.TemporaryDirectory(
        prefix="tether-bench-", dir=os.environ.get("BENCH_DIR")
    ) as tmp:
        for count in (int(s) for s in args.sizes.split(",")):
            rows.append(bench(count, Path(tmp), args.loop_max, args.runs))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1) if args.json else report(rows))


if __name__ == "__main__":
    main()
