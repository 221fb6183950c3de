"""Prometheus textfile-collector metrics for the last run, written atomically.

node_exporter's textfile collector reads `*.prom` files; the file is replaced by rename, so a
scrape sees the previous run or this one, never half of either.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tether.errors import StateError
from tether.hostfs.fsutil import write_atomic
from tether.state.runs import RunRecord
from tether.state.services import ServiceRecord

ACTIONS = (
    "in_sync",
    "create",
    "update",
    "drift",
    "conflict",
    "preexisting",
    "blocked",
    "prune",
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return _label(value)


def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    """One metric family in the text exposition format; samples are (labels, value)."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{{{labels}}} {_number(value)}" for labels, value in samples)
    return lines


def render_metrics(run: RunRecord, services: Mapping[str, ServiceRecord] | None = None) -> str:
    job = f'command="{_label(run.kind)}"'
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.extend(family(name, kind, help_text, samples))

    metric(
        "tether_last_run_timestamp_seconds",
        "gauge",
        "When the last run started (unix time).",
        [(job, round(run.started, 3))],
    )
    metric(
        "tether_last_run_success",
        "gauge",
        "1 when the last run did its job (outcome 0, 2 or 3), else 0.",
        [(job, 0.0 if run.failed else 1.0)],
    )
    metric(
        "tether_last_run_exit_code", "gauge", "Exit code of the last run.", [(job, run.exit_code)]
    )
    metric(
        "tether_run_duration_seconds",
        "gauge",
        "How long the last run took.",
        [(job, round(run.duration, 3))],
    )
    actions = list(ACTIONS) + sorted(set(run.counts) - set(ACTIONS))
    metric(
        "tether_files",
        "gauge",
        "Files per plan action in the last run.",
        [(f'{job},action="{_label(a)}"', run.counts.get(a, 0)) for a in actions],
    )
    if services:
        metric(
            "tether_service_pending",
            "gauge",
            "1 while the service's handlers still owe a run (pending or failed), else 0.",
            [
                (f'service="{_label(n)}"', 1.0 if r.pending else 0.0)
                for n, r in sorted(services.items())
            ],
        )
        succeeded = [(n, r.last_success) for n, r in sorted(services.items()) if r.last_success]
        metric(
            "tether_service_last_success_timestamp_seconds",
            "gauge",
            "When the service's handlers last all succeeded (unix time).",
            [(f'service="{_label(n)}"', round(when, 3)) for n, when in succeeded if when],
        )
    return "\n".join(lines) + "\n"


def write_metrics(
    path: Path, run: RunRecord, services: Mapping[str, ServiceRecord] | None = None
) -> None:
    """Replace `path` with the metrics of `run` and the services (0644, for node_exporter)."""
    try:
        write_atomic(path, render_metrics(run, services).encode("utf-8"), 0o644)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot write metrics ({exc.strerror})",
            hint="check --metrics-file points into an existing, writable folder",
        ) from None
