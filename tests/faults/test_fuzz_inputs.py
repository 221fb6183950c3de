"""Fuzzed inputs: tether.yaml, the allowlist, the secret store, saved plans and state files.

Whatever the bytes, a command ends with a documented exit code and at most one error line:
never exit 70, never a traceback, never a hang. A small budget runs in the fast tier; the slow
tier runs 1,000 cases per input (`FUZZ_CASES`), and prints the exit-code histogram.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.reconcile import Site, make_site
from tether.cli import main
from tether.exitcodes import ExitCode

FAST_CASES = 15
FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "1000"))
CASE_TIMEOUT = 20  # seconds: a case that takes longer is a hang
ALLOWED = {ExitCode.OK, ExitCode.ERROR, ExitCode.CHANGES, ExitCode.ATTENTION, ExitCode.USAGE}
HISTOGRAM: collections.Counter[tuple[str, int]] = collections.Counter()

# Every section a mutation can land in: files, secrets.map, services (run only by an apply of
# the good manifest: a fuzzed one is only validated and planned) and host profiles.
GOOD_MANIFEST = """version: 1
target:
  home: /home/u
files:
  app/a.conf:
    mode: '0600'
  app/*.env:
    hosts: [nas]
secrets:
  map:
    app/a.conf:
      a: APP_A
services:
  - name: app
    paths: [app/**]
    on_change: ['true']
    timeout: 30
  - name: late
    after: [app]
hosts:
  nas:
    include: [app/**]
    services: [app]
  pi:
    home: /home/pi
"""
HOST = ["--host", "nas"]
GOOD_INVENTORY = "app/a.conf\napp/*.env\n"

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=30), st.floats()
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _mutated(good: str) -> st.SearchStrategy[bytes]:
    """A valid file with bytes inserted, deleted or replaced somewhere."""

    def mutate(args: tuple[int, int, bytes]) -> bytes:
        where, cut, insert = args
        data = good.encode()
        where %= len(data) + 1
        return data[:where] + insert + data[where + cut :]

    return st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.binary(max_size=12)).map(mutate)


def _inputs(good: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(str.encode),
        _documents.map(lambda d: yaml.safe_dump(d).encode()),
        _documents.map(lambda d: json.dumps(d, default=str).encode()),
        _mutated(good),
    )


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def hang(*_: object) -> None:
        raise TimeoutError(f"a case took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(kind: str, argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with _deadline(CASE_TIMEOUT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    HISTOGRAM[(kind, code)] += 1
    text = err.getvalue()
    assert code != ExitCode.BUG, text
    assert code in ALLOWED, (code, text)
    assert "Traceback" not in text and "Traceback" not in out.getvalue()
    if argv[0] != "validate":  # validate lists every problem; the rest stop at the first
        errors = [
            line
            for line in text.splitlines()
            if line.startswith("tether: ") and "warning" not in line and "took over" not in line
        ]
        assert len(errors) <= 1, text


@contextlib.contextmanager
def fresh_site() -> Iterator[Site]:
    tmp = Path(tempfile.mkdtemp(prefix="tether-fuzz-"))
    try:
        yield make_site(
            tmp,
            {"app/a.conf": "a = __REDACTED_APP_A__\n", "app/b.env": "B=1\n"},
            manifest=GOOD_MANIFEST,
            inventory=GOOD_INVENTORY,
            secrets="APP_A=value-a\n",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_manifest(data: bytes) -> None:
    with fresh_site() as site:
        (site.repo / "tether.yaml").write_bytes(data)
        run("tether.yaml", ["validate", "--source", str(site.repo)])
        run("tether.yaml", ["reconcile", *site.host_args(), *HOST])


def check_inventory(data: bytes) -> None:
    with fresh_site() as site:
        (site.repo / "inventory" / "include-paths.txt").write_bytes(data)
        run("inventory", ["validate", "--source", str(site.repo)])
        run("inventory", ["reconcile", *site.host_args(), *HOST])


def check_store(data: bytes) -> None:
    with fresh_site() as site:
        site.secrets.write_bytes(data)
        run("secret store", ["reconcile", *site.host_args(), *HOST])


def check_saved_plan(data: bytes) -> None:
    with fresh_site() as site:
        plan = site.repo.parent / "plan.json"
        plan.write_bytes(data)
        run("saved plan", ["apply", str(plan), "--state-dir", str(site.state)])


STATE_FILES = (
    "ledger.json",
    "runs.jsonl",
    "key",
    "lock.info",
    "applying.json",
    "capturing.json",
    "services.json",
    "backups/index.jsonl",
)


def check_state(data: bytes, name: str) -> None:
    with fresh_site() as site:
        host = [*site.host_args(), *HOST]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["reconcile", "--apply", *host]) == ExitCode.OK
        (site.state / name).parent.mkdir(exist_ok=True)
        (site.state / name).write_bytes(data)
        run(f"state {name}", ["reconcile", *host])
        run(f"state {name}", ["reconcile", "--apply", *host])
        run(f"state {name}", ["status", "--state-dir", str(site.state)])
        run(f"state {name}", ["services", *host])
        run(f"state {name}", ["backups", "--state-dir", str(site.state)])


CHECKS: dict[str, tuple[Callable[..., None], st.SearchStrategy[object]]] = {
    "manifest": (check_manifest, _inputs(GOOD_MANIFEST)),
    "inventory": (check_inventory, _inputs(GOOD_INVENTORY)),
    "store": (check_store, _inputs("APP_A=value-a\nOTHER='x y'\n")),
    "saved_plan": (check_saved_plan, _inputs('{"format": "tether-plan/1", "context": {}}')),
    "state": (
        lambda args: check_state(*args),
        st.tuples(_inputs('{"version": 1, "entries": {}}'), st.sampled_from(STATE_FILES)),
    ),
}


def _fuzz(name: str, cases: int) -> None:
    check, strategy = CHECKS[name]

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def case(value: object) -> None:
        check(value)

    case()


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_fuzzed_inputs_end_in_a_documented_exit_code(name: str) -> None:
    _fuzz(name, FAST_CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_fuzzed_inputs_large_budget(name: str) -> None:
    HISTOGRAM.clear()
    _fuzz(name, FUZZ_CASES)
    counts = ", ".join(f"{kind} exit {code}: {n}" for (kind, code), n in sorted(HISTOGRAM.items()))
    print(f"\n{name}: {FUZZ_CASES} cases; {counts}")
