"""Properties of the handler order and of failure isolation, over random `after` graphs: the
order respects every `after` and otherwise keeps manifest order; a failed service stops exactly
the services after it (directly or through others), every other one runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.config.manifest import Service
from tether.reconcile.services import HandlerEnv, order, run_selected, select


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[Service], set[str]]:
    """Services in a random manifest order, each after some of those created before it (no
    cycle), and the names whose handler fails."""
    count = draw(st.integers(1, 7))
    names = [f"s{i}" for i in range(count)]
    after = {n: tuple(draw(st.sets(st.sampled_from(names[:i])))) if i else () for i, n in
             enumerate(names)}  # fmt: skip
    failing = draw(st.sets(st.sampled_from(names)))
    listed = draw(st.permutations(names))
    services = [
        Service(n, ("x",), tuple(sorted(after[n])), ("false" if n in failing else "true",))
        for n in listed
    ]
    return services, failing


def _after_closure(services: list[Service]) -> dict[str, set[str]]:
    direct = {s.name: set(s.after) for s in services}
    closure: dict[str, set[str]] = {}
    for name, firsts in direct.items():
        seen: set[str] = set()
        todo = list(firsts)
        while todo:
            first = todo.pop()
            if first not in seen:
                seen.add(first)
                todo.extend(direct[first])
        closure[name] = seen
    return closure


@settings(max_examples=60)
@given(graphs())
def test_order_respects_after_and_otherwise_manifest_order(
    graph: tuple[list[Service], set[str]],
) -> None:
    services, _ = graph
    ordered = [s.name for s in order(services)]
    assert sorted(ordered) == sorted(s.name for s in services)
    index = {s.name: i for i, s in enumerate(services)}
    for service in services:
        for first in service.after:
            assert ordered.index(first) < ordered.index(service.name)
    # each pick is the earliest in the manifest of those whose `after` are all done
    for step, name in enumerate(ordered):
        done = set(ordered[:step])
        ready = [s.name for s in services if s.name not in done and set(s.after) <= done]
        assert name == min(ready, key=index.__getitem__)


@settings(max_examples=20, deadline=None)
@given(graphs())
def test_a_failure_stops_exactly_the_services_after_it(
    graph: tuple[list[Service], set[str]],
) -> None:
    services, failing = graph
    closure = _after_closure(services)
    with tempfile.TemporaryDirectory() as tmp:
        env = HandlerEnv(Path(tmp), "rev", lambda _s, _p: Path(tmp), lambda text: text)
        chosen = select(services, {s.name: ("x",) for s in services}, {})
        results = {r.name: r.result for r in run_selected(chosen, env)}
    for service in services:
        stopped = closure[service.name] & failing
        if stopped:
            assert results[service.name] == "not-run", (service, failing)
        elif service.name in failing:
            assert results[service.name] == "failed"
        else:
            assert results[service.name] == "ok"
