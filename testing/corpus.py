"""The real-world secrets corpus (tests/corpus/realworld): files, hand labels, sources, scores.

Paths are relative to the corpus root and start with `files/` (labels.tsv, SOURCES.tsv and
every scorer use the same form). A scanner is scored by (file, line): a labelled line it
reports is a true positive, a reported line with no label a false positive, a labelled line
it misses a false negative; whole-file secrets count at line 1. Raw values live only in
labels.tsv: helpers here never put a value into a message or a repr.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "realworld"
FILES = "files"
KINDS = ("inline", "whole-file")

Pair = tuple[str, int]


@dataclass(frozen=True)
class Label:
    path: str
    line: int
    value: str = field(repr=False)
    kind: str = "inline"


@dataclass(frozen=True)
class Source:
    path: str
    repo: str
    commit: str
    original: str
    licence: str


@dataclass(frozen=True)
class Score:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def recall(self) -> float:
        found = self.true_positives + self.false_negatives
        return self.true_positives / found if found else 1.0

    @property
    def precision(self) -> float:
        reported = self.true_positives + self.false_positives
        return self.true_positives / reported if reported else 1.0

    @property
    def f1(self) -> float:
        total = self.recall + self.precision
        return 2 * self.recall * self.precision / total if total else 0.0

    def summary(self) -> str:
        """Counts and ratios only: safe for assertion messages and xfail reasons."""
        return (
            f"recall {self.recall:.3f} precision {self.precision:.3f} f1 {self.f1:.3f} "
            f"(tp {self.true_positives}, fp {self.false_positives}, "
            f"fn {self.false_negatives})"
        )


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        for row in reader:
            if len(row) != len(header):
                raise ValueError(f"{path.name}: row {reader.line_num} has {len(row)} columns")
            yield row


def load_labels(root: Path = ROOT) -> list[Label]:
    return [Label(p, int(line), value, kind) for p, line, value, kind in _rows(root / "labels.tsv")]


def load_sources(root: Path = ROOT) -> dict[str, Source]:
    return {row[0]: Source(*row) for row in _rows(root / "SOURCES.tsv")}


def corpus_files(root: Path = ROOT) -> list[str]:
    """Every corpus file, as `files/...` paths, sorted."""
    base = root / FILES
    return sorted(
        f"{FILES}/{p.relative_to(base).as_posix()}" for p in base.rglob("*") if p.is_file()
    )


def expected(labels: Iterable[Label]) -> set[Pair]:
    return {(label.path, label.line) for label in labels}


def score(found: Iterable[Pair], labels: Iterable[Label]) -> Score:
    want = expected(labels)
    got = set(found)
    return Score(len(got & want), len(got - want), len(want - got))


def misses(found: Iterable[Pair], labels: Iterable[Label]) -> tuple[list[Pair], list[Pair]]:
    """(missed labelled lines, reported unlabelled lines), sorted: paths and lines only."""
    want = expected(labels)
    got = set(found)
    return sorted(want - got), sorted(got - want)


def values_by_file(labels: Iterable[Label]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for label in labels:
        out.setdefault(label.path, set()).add(label.value)
    return out


def copy_files(dest: Path, root: Path = ROOT) -> Path:
    """Copy the corpus files under `dest` (outside any git repo); returns the copy's root,
    whose relative paths are the corpus paths."""
    shutil.copytree(root / FILES, dest / FILES, symlinks=True)
    return dest


def tether_scan(tree: Path, tether: str | None = None) -> set[Pair]:
    """Findings of `tether scan --format json files` run in `tree` (a copy_files root)."""
    exe = tether or str(Path(sys.executable).parent / "tether")
    result = subprocess.run(
        [exe, "scan", "--format", "json", FILES],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if not result.stdout.strip():
        raise RuntimeError(f"tether scan printed no JSON (exit {result.returncode})")
    return {(f["path"], int(f["line"])) for f in json.loads(result.stdout)["findings"]}
