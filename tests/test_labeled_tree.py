"""The bench's labeled tree: labels point at the planted values (the scanner bench reuses it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from labeled_tree import generate


def test_labels_point_at_values(tmp_path: Path) -> None:
    labels = generate(tmp_path, files=60, seed=3)
    assert json.loads((tmp_path / "labels.json").read_text())["files"] == 60
    assert len(list((tmp_path / "configs").rglob("*"))) > 60
    values = [str(s["value"]) for s in labels.secrets]
    assert len(values) == len(set(values))  # unique, so "still there" is a substring test
    for label in labels.secrets + labels.decoys:
        text = (tmp_path / str(label["path"])).read_text()
        part = str(label.get("value", label.get("text")))
        line = text.splitlines()[int(str(label["line"])) - 1]
        assert part.split("\n", maxsplit=1)[0] in line
    inventory = (tmp_path / "inventory" / "include-paths.txt").read_text().splitlines()
    assert len(inventory) == 60
