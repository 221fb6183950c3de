"""Real-world corpus benchmark: tether scan, detect-secrets and whispers on hand-labelled files.

Setup (once; the peers are bench-only tools, not tether dependencies):
    make .venv/.dev && .venv/bin/pip install detect-secrets whispers
Run:
    .venv/bin/python bench/realworld_bench.py [--runs 3]

The corpus is tests/corpus/realworld (see its README.md for the labelling rules). Each tool
scans a copy of its `files/` folder (outside any git repo) as a subprocess, start-up included:
`tether scan --format json files`, `detect-secrets scan --all-files files` and
`whispers -o OUT files`. A finding counts by (file, line); a labelled line reported is a true
positive, a reported line with no label a false positive. Whole-file secrets are labelled at
line 1; whispers' file-level findings (line 0) count at line 1. Tools print values in their
output: the bench parses it and prints only counts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from testing import corpus  # noqa: E402

BIN = Path(sys.executable).parent
Pairs = set[tuple[str, int]]


def _exe(name: str) -> str | None:
    return shutil.which(name, path=str(BIN)) or shutil.which(name)


def _run(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def tether(tree: Path) -> tuple[float, Pairs] | None:
    seconds, result = _run([str(BIN / "tether"), "scan", "--format", "json", corpus.FILES], tree)
    if result.returncode not in (0, 3) or not result.stdout.strip():
        sys.exit(f"tether scan failed (exit {result.returncode})")
    found = {(f["path"], int(f["line"])) for f in json.loads(result.stdout)["findings"]}
    return seconds, found


def detect_secrets(tree: Path) -> tuple[float, Pairs] | None:
    exe = _exe("detect-secrets")
    if exe is None:
        return None
    seconds, result = _run([exe, "scan", "--all-files", corpus.FILES], tree)
    if result.returncode != 0:
        sys.exit(f"detect-secrets failed (exit {result.returncode})")
    data = json.loads(result.stdout)["results"]
    return seconds, {
        (path, int(item["line_number"])) for path, items in data.items() for item in items
    }


def whispers(tree: Path) -> tuple[float, Pairs] | None:
    exe = _exe("whispers")
    if exe is None:
        return None
    out = tree / "whispers.json"
    seconds, result = _run([exe, "-o", str(out), corpus.FILES], tree)
    if result.returncode != 0 or not out.is_file():
        sys.exit(f"whispers failed (exit {result.returncode})")
    text = out.read_text(encoding="utf-8").strip()
    items = json.loads(text) if text else []
    out.unlink()
    return seconds, {(item["file"], max(1, int(item["line"]))) for item in items}


TOOLS: dict[str, Callable[[Path], tuple[float, Pairs] | None]] = {
    "tether scan": tether,
    "detect-secrets 1.5 --all-files": detect_secrets,
    "whispers 2.4": whispers,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool (median)")
    args = parser.parse_args()
    labels = corpus.load_labels()
    files = corpus.corpus_files()
    print(
        f"corpus: {len(files)} files, {len(corpus.expected(labels))} labelled lines "
        f"({len(labels)} labels) from {len({s.repo for s in corpus.load_sources().values()})} "
        "repositories"
    )
    print()
    print(f"| tool | recall | precision | F1 | TP | FP | FN | seconds (median of {args.runs}) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tree = corpus.copy_files(Path(tmp))
        for name, tool in TOOLS.items():
            times: list[float] = []
            found: Pairs = set()
            for _ in range(args.runs):
                measured = tool(tree)
                if measured is None:
                    break
                times.append(measured[0])
                found = measured[1]
            if not times:
                print(f"| {name} | not installed | | | | | | |")
                continue
            s = corpus.score(found, labels)
            print(
                f"| {name} | {s.recall:.3f} | {s.precision:.3f} | {s.f1:.3f} | "
                f"{s.true_positives} | {s.false_positives} | {s.false_negatives} | "
                f"{statistics.median(times):.2f} |"
            )


if __name__ == "__main__":
    main()
