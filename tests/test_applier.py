from __future__ import annotations

from pathlib import Path

from testing.reconcile import make_site
from tether.config.options import HostOptions, SourceOptions
from tether.hostfs.host import RealHost
from tether.reconcile.applier import apply_plan
from tether.reconcile.engine import prepare


def test_a_source_gone_between_plan_and_write_fails_that_file_only(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"a": "a\n", "b": "b\n"})
    host = HostOptions(site.root, None, site.state, site.secrets)
    run = prepare(SourceOptions(folder=site.repo), host, explicit_root=True)
    plan = run.make_plan(overwrite=False, prune=False)
    site.source("a").unlink()
    run.desired.cache.clear()  # as past the cache budget: the bytes are read again to write
    report = apply_plan(run, plan, RealHost(run.confinement))
    failed = {o.item.path: o.error for o in report.failed}
    assert list(failed) == ["a"] and "not written" in str(failed["a"])
    assert site.dest("b").read_text() == "b\n" and not site.dest("a").exists()
    assert set(run.ledger) == {str(site.dest("b"))}
