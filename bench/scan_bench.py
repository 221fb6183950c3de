"""Scan benchmark: tether scan against detect-secrets on a labeled homelab tree.

Setup (once; detect-secrets is a bench-only tool, not a tether dependency):
    make .venv/.dev && .venv/bin/pip install detect-secrets
Run:
    .venv/bin/python bench/scan_bench.py [--files 1000] [--runs 3]

Trees: `bench/labeled_tree.py` (the redaction benchmark's generator) and `bench/scan_tree.py`
(a second generator written for this benchmark); each tool scans the folder holding the
files (`configs/` and `.`). Also two corpora with no real secrets, where every finding is a
false positive: installed library source, and the repo's own `configs/` when present.
A planted secret counts as found when a tool
reports its file and line; precision is the share of reported (file, line) pairs that hold a
planted secret. Both tools run as subprocesses (start-up included) with no network:
`tether scan --format json DIR` and `detect-secrets scan --all-files DIR` (its verification
plugins are not called by `scan`). Also timed: `tether scan` of 20 files, the size of a
typical commit.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

Pairs = set[tuple[str, int]]


def labeled_tree(root: Path, files: int) -> tuple[Pairs, str]:
    """bench/labeled_tree.py (the redaction benchmark's tree): (planted pairs, target)."""
    labels = importlib.import_module("labeled_tree").generate(root, files)
    planted = {(str(s["path"]), int(s["line"])) for s in labels.secrets}
    return planted, "configs"  # not the root: labels.json beside configs/ lists every value


def scan_tree(root: Path, files: int) -> tuple[Pairs, str]:
    """bench/scan_tree.py, a second generator written for this benchmark."""
    labels = importlib.import_module("scan_tree").generate(root, files)
    return {(path, line) for path, lines in labels.items() for line in lines}, "."


TREES = {"bench/labeled_tree.py": labeled_tree, "bench/scan_tree.py": scan_tree}


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def tether_scan(root: Path, target: str, runs: int) -> tuple[float, Pairs]:
    times, found = [], set()
    for _ in range(runs):
        seconds, result = timed([str(BIN / "tether"), "scan", "--format", "json", target], root)
        if result.returncode not in (0, 3):
            sys.exit(f"tether scan failed: {result.stderr}")
        times.append(seconds)
        found = {(f["path"], f["line"]) for f in json.loads(result.stdout)["findings"]}
    return statistics.median(times), found


def detect_secrets_scan(root: Path, target: str) -> tuple[float, Pairs] | None:
    exe = shutil.which("detect-secrets", path=str(BIN)) or shutil.which("detect-secrets")
    if exe is None:
        return None
    seconds, result = timed([exe, "scan", "--all-files", target], root)
    if result.returncode != 0:
        sys.exit(f"detect-secrets failed: {result.stderr}")
    data = json.loads(result.stdout)
    found = {
        (path, item["line_number"]) for path, items in data["results"].items() for item in items
    }
    return seconds, found


def score(found: Pairs, planted: Pairs) -> tuple[float, float]:
    hits = len(found & planted)
    recall = hits / len(planted) if planted else 1.0
    precision = hits / len(found) if found else 1.0
    return recall, precision


CORPUS_PACKAGES = ("pre_commit", "detect_secrets", "dulwich", "click", "yaml", "jsonschema")


def clean_corpus(dest: Path) -> tuple[int, int]:
    """Copy installed libraries' text files: real code and docs that hold no secrets."""
    site = Path(sysconfig.get_paths()["purelib"])
    files = size = 0
    for package in CORPUS_PACKAGES:
        for path in sorted((site / package).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".so", ".pyc"):
                continue
            target = dest / path.relative_to(site)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files += 1
            size += path.stat().st_size
    return files, size


def corpus_rows(root: Path) -> list[tuple[str, float, int]]:
    """(tool, seconds, findings) on the clean corpus: every finding is a false positive."""
    rows = []
    seconds, result = timed([str(BIN / "tether"), "scan", "--format", "json", "."], root)
    rows.append(("tether scan", seconds, len(json.loads(result.stdout)["findings"])))
    exe = shutil.which("detect-secrets", path=str(BIN))
    if exe:
        seconds, result = timed([exe, "scan", "--all-files"], root)
        found = sum(len(v) for v in json.loads(result.stdout)["results"].values())
        rows.append(("detect-secrets 1.5 --all-files", seconds, found))
    return rows


def worst_cases(folder: Path) -> list[tuple[str, float]]:
    """Files that make regex scanners slow: ~1 MB on one line, and ~1 MB of short lines."""
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits

    def word(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    pairs = ",".join(f'"k{i}":"{word(30)}"' for i in range(25_000))
    (folder / "one-line.json").write_text("{" + pairs[:999_000] + "}")
    lines = "\n".join(f"key_{i}: {word(rng.randint(5, 60))}" for i in range(25_000))
    (folder / "many-lines.yaml").write_text(lines[:1_000_000])
    out = []
    for name in ("one-line.json", "many-lines.yaml"):
        seconds, _ = timed([str(BIN / "tether"), "scan", "--format", "json", name], folder)
        out.append((name, seconds))
    return out


def commit_sized_scan(root: Path, target: str, runs: int) -> float:
    files = sorted(str(p.relative_to(root)) for p in (root / target).rglob("*") if p.is_file())
    files = files[:20]
    times = [timed([str(BIN / "tether"), "scan", *files], root)[0] for _ in range(runs)]
    return statistics.median(times)


def bench_tree(source: str, files: int, runs: int, show: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tether-scan-bench-") as tmp:
        root = Path(tmp)
        planted, target = TREES[source](root, files)
        scanned = [p for p in (root / target).rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in scanned)
        print(
            f"\ntree {source}: {len(scanned)} files, {size / 1e6:.2f} MB, "
            f"{len(planted)} planted secrets"
        )
        rows = []
        t_time, t_found = tether_scan(root, target, runs)
        rows.append(("tether scan", t_time, *score(t_found, planted)))
        print(f"tether: {len(t_found)} (file, line) findings, {len(t_found & planted)} planted")
        if show:
            for pair in sorted(planted - t_found)[:30]:
                print("  missed", *pair)
            for pair in sorted(t_found - planted)[:30]:
                print("  false positive", *pair)
        ds = detect_secrets_scan(root, target)
        if ds is not None:
            rows.append(("detect-secrets 1.5 --all-files", ds[0], *score(ds[1], planted)))
            print(f"detect-secrets: {len(ds[1])} findings, {len(ds[1] & planted)} planted")
        print(f"{'tool':34} {'wall s':>8} {'recall':>7} {'precision':>9}")
        for name, seconds, recall, precision in rows:
            print(f"{name:34} {seconds:8.2f} {recall:7.3f} {precision:9.3f}")
        if ds is not None:
            print(f"speed-up: {ds[0] / t_time:.1f}x")
        commit = commit_sized_scan(root, target, 5)
        print(f"tether scan of 20 files (typical commit, incl. start-up): {commit * 1000:.0f} ms")
        return {
            "files": len(scanned),
            "bytes": size,
            "planted": len(planted),
            "rows": rows,
            "commit_20_files_s": commit,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", choices=[*TREES, "all"], default="all")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {"cpu": os.cpu_count()}
    for source in TREES if args.tree == "all" else [args.tree]:
        report[source] = bench_tree(source, args.files, args.runs, args.show_misses)
    with tempfile.TemporaryDirectory(prefix="tether-scan-corpus-") as tmp:
        corpus = Path(tmp)
        c_files, c_size = clean_corpus(corpus)
        print(
            f"\nclean corpus ({', '.join(CORPUS_PACKAGES)} as installed): {c_files} files, "
            f"{c_size / 1e6:.2f} MB; every finding is a false positive"
        )
        c_rows = corpus_rows(corpus)
        for name, seconds, count in c_rows:
            print(f"{name:34} {seconds:8.2f} s {count:5d} findings")
        report["corpus"] = {"files": c_files, "bytes": c_size, "rows": c_rows}
    with tempfile.TemporaryDirectory(prefix="tether-scan-worst-") as tmp:
        print("\nworst cases (1 MB files, start-up included):")
        worst = worst_cases(Path(tmp))
        report["worst"] = worst
        for name, seconds in worst:
            print(f"  tether scan {name:20} {seconds:6.2f} s")
    example = HERE.parent / "configs"
    if example.is_dir():
        # The repo's own example homelab: every secret is a placeholder, so 0 is right.
        e_rows = corpus_rows(example)
        e_files = sum(1 for p in example.rglob("*") if p.is_file())
        print(f"\nexample config repo (configs/, {e_files} files, placeholders only):")
        for name, seconds, count in e_rows:
            print(f"{name:34} {seconds:8.2f} s {count:5d} findings")
        report["example_configs"] = e_rows
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "scan.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
