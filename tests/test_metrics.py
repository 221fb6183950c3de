"""Prometheus textfile metrics: format, atomic replacement, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tether.errors import StateError
from tether.exitcodes import ExitCode
from tether.state.metrics import render_metrics, write_metrics
from tether.state.runs import RunRecord

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>-?[0-9.e+]+)$")


def record(code: int = 0) -> RunRecord:
    return RunRecord(
        command="reconcile --apply",
        started=1_764_324_000.25,
        duration=1.5,
        exit_code=code,
        counts={"create": 2, "drift": 1, 'weird"action': 1},
    )


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) tether_[a-z_]+ ", line), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        out[f"{match['name']}{{{match['labels']}}}"] = float(match["value"])
    return out


def test_metrics_text() -> None:
    values = samples(render_metrics(record()))
    job = 'command="reconcile"'
    assert values[f"tether_last_run_timestamp_seconds{{{job}}}"] == 1_764_324_000.25
    assert values[f"tether_last_run_success{{{job}}}"] == 1
    assert values[f"tether_run_duration_seconds{{{job}}}"] == 1.5
    assert values[f'tether_files{{{job},action="create"}}'] == 2
    assert values[f'tether_files{{{job},action="conflict"}}'] == 0
    assert values[f'tether_files{{{job},action="weird\\"action"}}'] == 1


def test_timestamp_keeps_full_precision() -> None:
    assert "1764324000.25" in render_metrics(record())


@pytest.mark.parametrize(
    ("code", "success"),
    [
        (ExitCode.OK, 1),
        (ExitCode.CHANGES, 1),
        (ExitCode.ATTENTION, 1),
        (ExitCode.ERROR, 0),
        (ExitCode.BUG, 0),
    ],
)
def test_success_flag(code: int, success: int) -> None:
    text = render_metrics(record(code))
    assert f'tether_last_run_success{{command="reconcile"}} {success}' in text
    assert f'tether_last_run_exit_code{{command="reconcile"}} {code}' in text


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "tether.prom"
    path.write_text("old\n")
    inode = path.stat().st_ino
    write_metrics(path, record())
    assert path.stat().st_ino != inode  # renamed over, never rewritten in place
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["tether.prom"]
    assert "tether_files" in path.read_text()


def test_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot write metrics"):
        write_metrics(tmp_path / "nope" / "tether.prom", record())
    assert not (tmp_path / "nope").exists()
