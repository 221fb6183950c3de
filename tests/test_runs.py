"""The run history: append, bound, survive bad lines and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from tether.errors import StateError
from tether.exitcodes import ExitCode
from tether.state.runlog import recording
from tether.state.runs import RunRecord, load_runs, record_run, runs_path


def run(n: int, code: int = 0, **extra: object) -> RunRecord:
    return RunRecord(
        command="reconcile --apply",
        started=1_700_000_000.0 + n,
        duration=0.5,
        exit_code=code,
        counts={"create": n, "in_sync": 2},
        **extra,  # type: ignore[arg-type]
    )


def test_round_trip(tmp_path: Path) -> None:
    first = run(1, revision_attempted="abc", revision_applied="abc")
    record_run(tmp_path, first)
    assert load_runs(tmp_path) == [first]
    assert load_runs(tmp_path)[0].result == "ok"


def test_no_history_is_empty(tmp_path: Path) -> None:
    assert load_runs(tmp_path / "missing") == []


def test_bounded_to_the_last_runs(tmp_path: Path) -> None:
    for n in range(8):
        record_run(tmp_path, run(n), keep=5)
    assert [r.counts["create"] for r in load_runs(tmp_path)] == [3, 4, 5, 6, 7]
    assert len(runs_path(tmp_path).read_text().splitlines()) == 5


def test_private_file_and_no_temp_left(tmp_path: Path) -> None:
    record_run(tmp_path, run(1))
    assert runs_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".runs.jsonl.lock", "runs.jsonl"]


def test_a_temp_file_a_killed_run_left_is_removed(tmp_path: Path) -> None:
    left = tmp_path / ".runs.jsonl.k1ll3d00.tmp"
    left.write_text("half a line")
    record_run(tmp_path, run(1))
    assert not left.exists()
    assert [r.to_json() for r in load_runs(tmp_path)] == [run(1).to_json()]


def test_bad_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    record_run(tmp_path, run(1))
    with runs_path(tmp_path).open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"command": "x"}) + "\n")
        f.write("\n")
    record_run(tmp_path, run(2))
    assert [r.counts["create"] for r in load_runs(tmp_path)] == [1, 2]


def test_result_words() -> None:
    assert run(0, ExitCode.CHANGES).result == "changes"
    assert run(0, ExitCode.ATTENTION).result == "attention"
    assert run(0, ExitCode.ERROR).failed
    assert not run(0, ExitCode.ATTENTION).failed
    assert run(0, 99).result == "unknown"
    assert run(0, 99).failed


def _writer(state: str, start: int) -> None:
    for n in range(start, start + 20):
        record_run(Path(state), run(n))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), k * 100)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert len(load_runs(tmp_path)) == 60


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_history_is_a_state_error(tmp_path: Path) -> None:
    record_run(tmp_path, run(1))
    runs_path(tmp_path).chmod(0)
    with pytest.raises(StateError, match="cannot read the run history"):
        load_runs(tmp_path)


def test_unwritable_state_dir_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="cannot record the run"):
        record_run(blocker / "state", run(1))


def test_history_that_is_a_folder_is_a_state_error(tmp_path: Path) -> None:
    runs_path(tmp_path).mkdir()
    with pytest.raises(StateError, match="cannot read the run history"):
        load_runs(tmp_path)


def test_history_written_before_the_renumbering_keeps_its_meaning(tmp_path: Path) -> None:
    old = [  # as tether wrote them when 1 meant changes pending, 2 usage and 4 error
        {"command": "reconcile --plan", "started": 1.0, "duration": 0.1, "exitCode": code}
        for code in (1, 2, 3, 4)
    ]
    runs_path(tmp_path).write_text("".join(json.dumps(r) + "\n" for r in old))
    record_run(tmp_path, run(5, ExitCode.ERROR))
    codes = [r.exit_code for r in load_runs(tmp_path)]
    assert codes == [
        ExitCode.CHANGES,
        ExitCode.USAGE,
        ExitCode.ATTENTION,
        ExitCode.ERROR,
        ExitCode.ERROR,  # written now: read as written
    ]


def test_ctrl_c_is_recorded_as_interrupted_not_as_a_bug(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), recording(tmp_path, "reconcile --apply"):
        raise KeyboardInterrupt
    (last,) = load_runs(tmp_path)
    assert last.exit_code == ExitCode.INTERRUPTED
    assert last.failed


def test_a_history_line_that_is_json_but_not_an_object_is_skipped(tmp_path: Path) -> None:
    runs_path(tmp_path).write_text('null\n[1, 2]\n"text"\n')  # found by the input fuzzer
    record_run(tmp_path, run(1))
    assert [r.started for r in load_runs(tmp_path)] == [run(1).started]


def test_history_with_camel_case_keys_is_still_read(tmp_path: Path) -> None:
    """Histories written before every JSON key was snake_case (exitCode, revisionApplied)."""
    old = {"command": "reconcile --apply", "started": 1.0, "duration": 0.1, "exitCode": 0,
           "codes": 2, "revisionAttempted": "abc", "revisionApplied": "abc"}  # fmt: skip
    runs_path(tmp_path).write_text(json.dumps(old) + "\n")
    (loaded,) = load_runs(tmp_path)
    assert (loaded.exit_code, loaded.revision_attempted, loaded.revision_applied) == (
        0,
        "abc",
        "abc",
    )
    record_run(tmp_path, loaded)
    written = json.loads(runs_path(tmp_path).read_text().splitlines()[-1])
    assert "exit_code" in written and "exitCode" not in written
