"""Agent bookkeeping costs: recording a run into a full history, building status, rendering units.

Run: .venv/bin/python bench/bench_agent.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tether.agent.health import build_status
from tether.agent.units import UnitSpec, render_units
from tether.state.metrics import write_metrics
from tether.state.runs import MAX_RUNS, RunRecord, record_run


def best(label: str, fn: object, repeat: int = 50) -> None:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    times.sort()
    print(
        f"{label:<44} median {times[len(times) // 2] * 1e3:7.2f} ms  best {times[0] * 1e3:7.2f} ms"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        run = RunRecord(
            "reconcile --apply",
            time.time(),
            1.0,
            0,
            {"in_sync": 900, "create": 3, "drift": 1},
            "a" * 40,
            "a" * 40,
        )
        for _ in range(MAX_RUNS):
            record_run(state, run)
        best(f"record_run into a full history ({MAX_RUNS} runs)", lambda: record_run(state, run))
        best("build_status (load + conditions)", lambda: build_status(state))
        best("write_metrics", lambda: write_metrics(state / "t.prom", run))
        spec = UnitSpec(
            (sys.executable, "-m", "tether"),
            ("--source", "/srv/cfg"),
            state,
            (state,),
            capture="daily",
        )
        best("render_units (reconcile + capture)", lambda: render_units(spec), repeat=500)
    # what every agent tick pays before reconcile starts: a fresh interpreter importing tether
    tick = [sys.executable, "-m", "tether", "--version"]
    best(
        "tick start: python -m tether --version",
        lambda: subprocess.run(tick, check=True, capture_output=True),
        repeat=10,
    )


if __name__ == "__main__":
    main()
