from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import tether.commands.reconcilerun
import tether.config.options
import tether.reconcile.desired
import tether.reconcile.engine
from testing.reconcile import Site, make_site
from testing.state import ledger_file
from tether.cli import main
from tether.exitcodes import ExitCode
from tether.hostfs.host import TEMP_PREFIX
from tether.state.ledger import load_ledger

SECRET = "hunter2-very-secret"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(
        tmp_path,
        {
            "app/a.conf": "a=1\n",
            "app/b.conf": "b=1\n",
            "app/.env": "PASSWORD=__REDACTED_APP_PASSWORD__\n",
        },
        secrets=f"APP_PASSWORD='{SECRET}'\n",
    )


def test_plan_changes_nothing_then_apply_then_all_in_sync(site: Site) -> None:
    first = site.reconcile("--detailed-exitcode")
    assert first.code == ExitCode.CHANGES, first.err
    assert "Plan: 3 to create" in first.out
    assert not any(site.root.iterdir())
    applied = site.reconcile("--apply")
    assert applied.code == ExitCode.OK, applied.out + applied.err
    assert site.dest("app/a.conf").read_text() == "a=1\n"
    assert site.dest("app/.env").read_text() == f"PASSWORD={SECRET}\n"
    assert stat.S_IMODE(site.dest("app/.env").stat().st_mode) == 0o600
    assert stat.S_IMODE(site.dest("app/a.conf").stat().st_mode) == 0o644
    assert set(site.plan().values()) == {"in_sync"}
    again = site.reconcile()
    assert again.code == ExitCode.OK and "Nothing to do" in again.out
    assert stat.S_IMODE(site.state.stat().st_mode) == 0o700


def test_json_shape(site: Site) -> None:
    doc = site.reconcile("--json").json()
    assert doc["revision"] is None
    assert set(doc["summary"]) == {
        "create", "update", "in_sync", "drift", "conflict", "preexisting", "blocked", "prune",
    }  # fmt: skip
    assert doc["summary"]["create"] == 3
    row = doc["files"][0]
    assert {"path", "dest", "action", "reason"} <= set(row)


def test_env_variables_of_the_article(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRY_RUN", "false")
    assert site.reconcile().code == ExitCode.OK
    assert site.dest("app/a.conf").exists()
    site.dest("app/a.conf").write_text("host edit\n")
    monkeypatch.setenv("OVERWRITE", "true")
    assert site.reconcile().code == ExitCode.OK
    assert site.dest("app/a.conf").read_text() == "a=1\n"


def test_target_home_option(site: Site) -> None:
    site.reconcile("--apply", "--target-home", "/srv/other")
    assert (site.root / "srv/other/app/a.conf").exists()


def test_update_drift_conflict_and_overwrite_with_backups(site: Site) -> None:
    site.reconcile("--apply")
    site.set_source("app/a.conf", "a=2\n")  # repo only: update
    site.dest("app/b.conf").write_text("b=host\n")  # host only: drift
    site.set_source("app/.env", "PASSWORD=__REDACTED_APP_PASSWORD__\nX=1\n")
    site.dest("app/.env").write_text("host\n")  # both: conflict
    assert site.plan() == {"app/.env": "conflict", "app/a.conf": "update", "app/b.conf": "drift"}
    plain = site.reconcile("--apply")
    assert plain.code == ExitCode.ATTENTION
    assert site.dest("app/a.conf").read_text() == "a=2\n"
    assert site.dest("app/b.conf").read_text() == "b=host\n"  # drift survives a plain apply
    assert site.dest("app/.env").read_text() == "host\n"
    forced = site.reconcile("--apply", "--overwrite", "--json")
    assert forced.code == ExitCode.OK, forced.err
    doc = forced.json()
    assert len(doc["backups"]) == 2
    assert site.dest("app/b.conf").read_text() == "b=1\n"
    assert site.dest("app/.env").read_text() == f"PASSWORD={SECRET}\nX=1\n"
    listing = site.tether("backups", "--state-dir", str(site.state), "--json").json()["backups"]
    backup = next(b for b in listing if b["dest"].endswith("b.conf"))
    restored = site.tether("backups", "--state-dir", str(site.state), "restore", backup["id"])
    assert restored.code == 0, restored.err
    assert site.dest("app/b.conf").read_text() == "b=host\n"
    assert site.plan()["app/b.conf"] == "drift"
    # --state-dir after the subcommand works too (as users type it)
    again = site.tether("backups", "restore", backup["id"], "--state-dir", str(site.state))
    assert again.code == 0, again.err


def test_preexisting_is_left_alone_unless_overwrite(site: Site) -> None:
    site.dest("app/a.conf").parent.mkdir(parents=True)
    site.dest("app/a.conf").write_text("mine\n")
    site.dest("app/b.conf").write_text("b=1\n")  # already as desired: in sync
    assert site.plan()["app/a.conf"] == "preexisting"
    assert site.plan()["app/b.conf"] == "in_sync"
    assert site.reconcile("--apply").code == ExitCode.ATTENTION
    assert site.dest("app/a.conf").read_text() == "mine\n"
    assert site.reconcile("--apply", "--overwrite").code == ExitCode.OK
    assert site.dest("app/a.conf").read_text() == "a=1\n"


def test_missing_secret_is_blocked_and_never_written(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"x.env": "A=__REDACTED_NOT_THERE__\n", "ok": "fine\n"})
    result = site.reconcile("--apply", "--json")
    assert result.code == ExitCode.ATTENTION
    row = next(f for f in result.json()["files"] if f["path"] == "x.env")
    assert row["action"] == "blocked" and "NOT_THERE" in row["reason"]
    assert not site.dest("x.env").exists()
    assert site.dest("ok").read_text() == "fine\n"
    assert not any(b"REDACTED" in p.read_bytes() for p in site.root.rglob("*") if p.is_file())


def test_a_bare_redacted_nothing_names_says_to_map_it_as_secrets_check_does(
    tmp_path: Path,
) -> None:
    site = make_site(
        tmp_path,
        {
            "a.ini": "[a]\napi_key = REDACTED\ntoken = __REDACTED_GONE__\n",
            "b.ini": "k = REDACTED\n",
        },
    )
    result = site.reconcile()
    assert result.code == ExitCode.ATTENTION
    assert (
        f"a.ini  (missing secrets: GONE (add them to {site.secrets}); bare REDACTED with no name "
        "on line 2: map it under secrets.map in tether.yaml, or redact it again)" in result.out
    )
    assert "b.ini  (bare REDACTED with no name on line 1: map it under secrets.map" in result.out
    check = site.tether("secrets", "check", "--source", str(site.repo), "--secrets-file",
                        str(site.secrets))  # fmt: skip
    assert check.code == ExitCode.ATTENTION
    assert (
        "a.ini:2: bare REDACTED with no name (map it under secrets.map in tether.yaml" in check.out
    )


def test_missing_source_is_blocked(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"ok": "1"}, inventory="ok\nnot-in-repo\n")
    assert site.plan()["not-in-repo"] == "blocked"


@pytest.mark.parametrize(
    "kind", ["parent-outside", "relative-parent-outside", "dest-link", "dest-dir", "fifo"]
)
def test_unsafe_destinations_are_blocked(tmp_path: Path, kind: str) -> None:
    site = make_site(tmp_path, {"app/f": "new\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("precious\n")
    home = site.dest("")
    home.mkdir(parents=True)
    if kind == "parent-outside":
        (home / "app").symlink_to(outside)
    elif kind == "relative-parent-outside":
        (home / "app").symlink_to(os.path.relpath(outside, home))
    else:
        (home / "app").mkdir()
        if kind == "dest-link":
            (home / "app" / "f").symlink_to(outside / "f")
        elif kind == "dest-dir":
            (home / "app" / "f").mkdir()
        else:
            os.mkfifo(home / "app" / "f")
    result = site.reconcile("--apply", "--overwrite", "--json")
    assert result.code == ExitCode.ATTENTION, result.err
    (row,) = result.json()["files"]
    assert row["action"] == "blocked" and row["reason"]
    assert (outside / "f").read_text() == "precious\n"
    assert sorted(p.name for p in outside.iterdir()) == ["f"]


def test_diff_masks_secrets(site: Site) -> None:
    site.reconcile("--apply")
    site.set_source("app/.env", "PASSWORD=__REDACTED_APP_PASSWORD__\nNEW=1\n")
    result = site.reconcile("--diff")
    assert "+NEW=1" in result.out
    assert "(secret APP_PASSWORD)" in result.out
    assert SECRET not in result.out + result.err


def test_no_secret_value_in_json_ledger_or_saved_plan(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = site.reconcile("--json", "--out", str(out))
    site.reconcile("--apply")
    for text in (result.out, out.read_text(), ledger_file(site.state).read_text()):
        assert SECRET not in text


def test_prune_only_when_asked_and_backed_up(site: Site) -> None:
    site.reconcile("--apply")
    (site.repo / "inventory/include-paths.txt").write_text("app/a.conf\napp/.env\n")
    assert site.plan()["app/b.conf"] == "prune"
    site.reconcile("--apply")
    assert site.dest("app/b.conf").exists()
    pruned = site.reconcile("--apply", "--prune", "--json")
    assert pruned.code == ExitCode.OK, pruned.err
    assert not site.dest("app/b.conf").exists()
    assert pruned.json()["backups"]
    assert "app/b.conf" not in site.plan("--prune")


def test_empty_desired_set_never_prunes(site: Site) -> None:
    site.reconcile("--apply")
    (site.repo / "inventory/include-paths.txt").write_text("")
    site.reconcile("--apply", "--prune", "--overwrite")
    assert site.dest("app/a.conf").exists()


def test_manifest_mode_and_dest_override(tmp_path: Path) -> None:
    manifest = (
        "version: 1\ntarget:\n  home: /home/demo\nfiles:\n"
        '  app/a.conf:\n    mode: "0640"\n    dir_mode: "0700"\n'
        "  b.conf:\n    dest: /etc/b.conf\n"
        "  other.conf:\n    hosts: [no-such-host]\n"
    )
    site = make_site(
        tmp_path, {"app/a.conf": "a", "b.conf": "b", "other.conf": "o"}, manifest=manifest
    )
    assert site.reconcile("--apply").code == ExitCode.OK
    assert stat.S_IMODE(site.dest("app/a.conf").stat().st_mode) == 0o640
    assert stat.S_IMODE(site.dest("app").stat().st_mode) == 0o700
    assert (site.root / "etc/b.conf").read_text() == "b"
    assert not site.dest("other.conf").exists()
    site.dest("app/a.conf").chmod(0o644)
    assert site.plan()["app/a.conf"] == "update"


def test_existing_file_keeps_its_mode(site: Site) -> None:
    site.reconcile("--apply")
    site.dest("app/a.conf").chmod(0o604)
    site.reconcile("--apply", "--rebuild-ledger")
    site.set_source("app/a.conf", "a=3\n")
    site.reconcile("--apply")
    assert stat.S_IMODE(site.dest("app/a.conf").stat().st_mode) == 0o604


def test_corrupt_ledger_says_how_to_rebuild(site: Site) -> None:
    site.reconcile("--apply")
    ledger_file(site.state).write_text("{not json")
    result = site.reconcile()
    assert result.code == ExitCode.ERROR
    assert "ledger.json: the ledger is corrupt" in result.err
    assert "tether reconcile --rebuild-ledger" in result.err
    assert len(result.err.strip().splitlines()) == 1
    rebuilt = site.reconcile("--rebuild-ledger")
    assert rebuilt.code == 0 and "3 destinations in sync recorded" in rebuilt.out
    assert set(site.plan().values()) == {"in_sync"}


def test_rebuild_ledger_records_only_in_sync(site: Site) -> None:
    site.reconcile("--apply")
    site.dest("app/a.conf").write_text("edited\n")
    site.reconcile("--rebuild-ledger")
    ledger = load_ledger(ledger_file(site.state).parent)
    assert sorted(Path(d).name for d in ledger) == [".env", "b.conf"]
    assert site.plan()["app/a.conf"] == "preexisting"


def test_stat_cache_plans_without_reading(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.reconcile("--apply")
    time.sleep(0.2)  # signatures younger than a clock tick are not trusted (probe.RACY_NS)
    site.reconcile("--apply")  # ... so this run records them

    def no_reads(*_: object) -> bytes:
        raise AssertionError("read a file the stat cache vouches for")

    real_read = tether.reconcile.desired.FolderTree.read_bytes

    def no_config_reads(tree: tether.reconcile.desired.FolderTree, relpath: str) -> bytes:
        if relpath.startswith("configs/"):
            no_reads()
        return real_read(tree, relpath)

    real_open = os.open

    def no_config_opens(file: str, *args: Any, **kwargs: Any) -> Any:
        # the folder fast path opens files with os.open (no links); a folder opened to stat
        # its files is no read
        folder = bool(args) and bool(args[0] & os.O_DIRECTORY)
        if "/configs/" in str(file) and not folder:
            no_reads()
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(tether.reconcile.engine, "read_regular", no_reads)
    monkeypatch.setattr(tether.reconcile.desired.FolderTree, "read_bytes", no_config_reads)
    monkeypatch.setattr(os, "open", no_config_opens)
    assert site.reconcile().code == ExitCode.OK
    # The guard is live: a source whose stat changed must be read, and that trips it.
    source = site.source("app/a.conf")
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    tripped = site.reconcile()
    assert tripped.code == ExitCode.BUG and "AssertionError" in tripped.err
    # A same-size edit with a new mtime is still seen.
    site.dest("app/a.conf").write_text("a=9\n")
    monkeypatch.undo()
    assert site.plan()["app/a.conf"] == "drift"


def test_secret_change_updates_file(site: Site) -> None:
    site.reconcile("--apply")
    site.reconcile("--apply")
    site.secrets.write_text("APP_PASSWORD='another-value'\n")
    assert site.plan()["app/.env"] == "update"


def test_interrupted_apply_temps_are_removed_by_next_run(site: Site) -> None:
    site.reconcile("--apply")
    leftover = site.dest("app") / f"{TEMP_PREFIX}dead-a.conf"
    leftover.write_text("half")
    journal = {"root": str(site.root), "folders": [str(site.dest("app"))], "entries": {}}
    (site.state / "applying.json").write_text(json.dumps(journal))
    site.reconcile()
    assert not leftover.exists()


def test_unreadable_secret_store_is_one_line(site: Site) -> None:
    site.secrets.chmod(0o644)
    result = site.reconcile()
    assert result.code == ExitCode.ERROR
    assert "chmod 600" in result.err and len(result.err.strip().splitlines()) == 1


def test_missing_target_root_is_one_clear_line(site: Site) -> None:
    site.root.rmdir()
    result = site.reconcile("--apply")
    assert result.code == ExitCode.ERROR
    assert (
        result.err.strip()
        == f"tether: target root {site.root}: no such folder (create it first, or pass the right --target-root)"
    )


def test_backups_listing_and_restore_edges(site: Site) -> None:
    empty = site.tether("backups", "--state-dir", str(site.state))
    assert empty.code == 0 and "no backups yet" in empty.err
    site.reconcile("--apply")
    site.dest("app/a.conf").write_text("host\n")
    site.reconcile("--apply", "--overwrite")
    listing = site.tether("backups", "--state-dir", str(site.state))
    backup_id = listing.out.split()[0]
    assert str(site.dest("app/a.conf")) in listing.out
    assert site.tether("backups", "--state-dir", str(site.state), "restore", backup_id).code == 0
    again = site.tether("backups", "--state-dir", str(site.state), "restore", backup_id)
    assert again.code == 0 and "already holds" in again.out
    missing = site.tether("backups", "--state-dir", str(site.state), "restore", "nope")
    assert missing.code == ExitCode.ERROR and "no backup has the id 'nope'" in missing.err


def test_a_damaged_backup_index_skips_its_bad_lines(site: Site) -> None:
    site.reconcile("--apply")
    site.dest("app/a.conf").write_text("host\n")
    site.reconcile("--apply", "--overwrite")
    index = site.state / "backups" / "index.jsonl"
    (good,) = index.read_bytes().splitlines()
    record = json.loads(good)
    bad = [
        b"\x80\xff not UTF-8",
        b"null",
        json.dumps({**record, "time": 5}).encode(),  # sorted beside a string: was a TypeError
        json.dumps({**record, "id": "../../../etc/passwd"}).encode(),  # ids name files
        json.dumps({**record, "extra": 1}).encode(),
    ]
    index.write_bytes(b"\n".join([*bad, good]) + b"\n")
    listing = site.tether("backups", "--state-dir", str(site.state))
    assert listing.code == ExitCode.OK, listing.err
    assert listing.out.split()[0] == record["id"] and len(listing.out.splitlines()) == 1
    restore = site.tether("backups", "--state-dir", str(site.state), "restore", "..")
    assert restore.code == ExitCode.ERROR and "no backup has the id '..'" in restore.err


def test_saved_plan_from_another_state_dir_is_refused(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    site.reconcile("--out", str(out))
    other = tmp_path / "other-state"
    result = site.tether("apply", str(out), "--state-dir", str(other))
    assert result.code == ExitCode.ERROR and "another state dir's hash key" in result.err
    assert not site.dest("app/a.conf").exists()


def test_two_paths_one_destination_are_blocked(tmp_path: Path) -> None:
    manifest = "version: 1\ntarget:\n  home: /home/demo\nfiles:\n  a:\n    dest: /etc/x\n  b:\n    dest: /etc/x\n"
    site = make_site(tmp_path, {"a": "1", "b": "2"}, manifest=manifest)
    result = site.reconcile("--apply", "--json")
    assert result.code == ExitCode.ATTENTION
    (row,) = result.json()["files"]
    assert row["action"] == "blocked" and "share this destination" in row["reason"]
    assert not (site.root / "etc/x").exists()


def test_apply_diff_shows_what_was_replaced(site: Site) -> None:
    site.reconcile("--apply")
    site.set_source("app/b.conf", "b=2\n")
    result = site.reconcile("--apply", "--diff")
    assert "-b=1" in result.out and "+b=2" in result.out


def test_rebuild_works_with_a_journal_and_a_corrupt_ledger(site: Site) -> None:
    site.reconcile("--apply")
    journal = {
        "root": str(site.root),
        "folders": [str(site.dest("app"))],
        "entries": {"/x": ["x", "h", 420, 0, 0, None, "t", "b", [], None, None, None]},
    }
    (site.state / "applying.json").write_text(json.dumps(journal))
    ledger_file(site.state).write_text("garbage")
    assert site.reconcile().code == ExitCode.ERROR
    assert site.reconcile("--rebuild-ledger").code == ExitCode.OK
    assert set(site.plan().values()) == {"in_sync"}


def test_reconcile_from_a_git_repo_uses_blob_ids(tmp_path: Path, upstream: Path) -> None:
    root, state = tmp_path / "host", tmp_path / "state"
    root.mkdir()
    store = tmp_path / "s.env"
    store.write_text("")
    store.chmod(0o600)
    args = [
        "--repo",
        str(upstream),
        "--target-root",
        str(root),
        "--state-dir",
        str(state),
        "--secrets-file",
        str(store),
    ]
    site = Site(tmp_path, root, state, store)
    applied = site.tether("reconcile", "--apply", "--json", *args)
    assert applied.code == ExitCode.OK, applied.err
    assert applied.json()["revision"]
    assert (root / "home/u/.bashrc").read_text() == "alias ll='ls -l'\n"
    again = site.tether("reconcile", "--json", *args)
    assert again.code == ExitCode.OK, again.err
    assert again.json()["summary"]["in_sync"] == 1


def test_diff_of_a_source_gone_since_the_plan_says_so(tmp_path: Path) -> None:
    site = make_site(tmp_path, {"a": "a\n"})
    host = tether.config.options.HostOptions(site.root, None, site.state, site.secrets)
    run = tether.reconcile.engine.prepare(
        tether.config.options.SourceOptions(folder=site.repo), host, explicit_root=True
    )
    plan = run.make_plan(overwrite=False, prune=False)
    site.source("a").unlink()
    run.desired.cache.clear()
    assert (
        "it was there when planned"
        in tether.commands.reconcilerun.diffs_before(run, plan)[str(site.dest("a"))]
    )


def test_target_root_that_is_a_file_says_so(site: Site) -> None:
    manifest = site.repo / "tether.yaml"
    rootfile = site.root.parent / "rootfile"
    rootfile.write_text("x\n")
    text = manifest.read_text()
    assert "target:\n" in text
    manifest.write_text(text.replace("target:\n", f"target:\n  root: {rootfile}\n", 1))
    result = site.tether("reconcile", *site.host_args()[:2], *site.host_args()[4:])
    assert result.code == ExitCode.ERROR
    assert f"target root {rootfile}: not a folder" in result.err, result.err


def test_diff_masks_a_host_secret_the_store_does_not_know(site: Site) -> None:
    old = "Old-hunter-Value-9f8e7d"  # a rotated-away value still on the host
    site.dest("app/.env").parent.mkdir(parents=True)
    site.dest("app/.env").write_text(f"PASSWORD={old}\n")
    result = site.reconcile("--diff")
    assert result.code == ExitCode.ATTENTION, result.err
    assert old not in result.out + result.err
    assert "-PASSWORD=(secret APP_PASSWORD, host's value)" in result.out
    assert "+PASSWORD=(secret APP_PASSWORD)" in result.out


def test_out_goes_with_a_plan_not_an_apply(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = site.reconcile("--apply", "--out", str(out))
    assert result.code == ExitCode.USAGE
    assert "--out saves a plan" in result.err and not out.exists()
    assert not site.dest("app/a.conf").exists()  # nothing applied either


def test_a_replaced_hash_key_re_keys_the_ledger_instead_of_rewriting(
    site: Site,
) -> None:
    assert site.reconcile("--apply").code == ExitCode.OK
    time.sleep(0.2)  # let the stat cache trust the signatures (probe.RACY_NS)
    assert site.reconcile("--apply").code == ExitCode.OK
    site.dest("app/a.conf").write_text("edited on the host\n")  # one file changed since
    (site.state / "key").unlink()  # a new key is made on the next run
    inodes = {p: site.dest(p).stat().st_ino for p in site.plan()}
    first = site.reconcile()
    assert "the hash key changed" in first.err and "1 changed since" in first.err
    planned = site.plan()
    assert planned.pop("app/a.conf") in ("drift", "conflict")
    assert set(planned.values()) == {"in_sync"}  # was: every file an identical-bytes update
    assert site.reconcile("--apply").code == ExitCode.ATTENTION  # the host edit needs a person
    assert site.dest("app/a.conf").read_text() == "edited on the host\n"
    assert all(site.dest(p).stat().st_ino == inode for p, inode in inodes.items())
    assert "the hash key changed" not in site.reconcile().err  # said once: the ledger is re-keyed


def test_a_backup_is_restored_only_inside_the_target_root_it_came_from(
    site: Site, tmp_path: Path
) -> None:
    site.reconcile("--apply")
    site.dest("app/b.conf").write_text("b=host\n")
    assert site.reconcile("--apply", "--overwrite").code == ExitCode.OK  # backs b.conf up
    listing = site.tether("backups", "--state-dir", str(site.state), "--json").json()["backups"]
    backup = next(b for b in listing if b["dest"].endswith("b.conf"))
    assert backup["root"] == str(site.root)
    outside = tmp_path / "outside"
    outside.mkdir()
    app = site.dest("app")
    for child in app.iterdir():
        child.unlink()
    app.rmdir()
    app.symlink_to(outside)  # the folder now leads out of the target root
    restored = site.tether("backups", "--state-dir", str(site.state), "restore", backup["id"])
    assert restored.code == ExitCode.ERROR and "outside the target root" in restored.err
    assert list(outside.iterdir()) == []  # nothing written through the link


def test_links_in_the_config_repo_are_refused_never_followed(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    (private / "id_key").write_text("PRIVATE KEY BODY\n")
    (private / "id_key").chmod(0o600)
    site = make_site(
        tmp_path,
        {"app/ok.conf": "ok\n"},
        inventory="app/ok.conf\napp/key.conf\nlinked/inner.conf\n",
    )
    (site.source("app/key.conf")).symlink_to(private / "id_key")  # a file link
    (site.repo / "configs" / "linked").symlink_to(private)  # a folder link
    (private / "inner.conf").write_text("through a linked folder\n")
    plan = site.reconcile("--json", "--diff")
    files = {f["path"]: f for f in plan.json()["files"]}
    for path in ("app/key.conf", "linked/inner.conf"):
        assert files[path]["action"] == "blocked", files[path]
        assert "symlink in the config repo" in files[path]["reason"]
    assert "PRIVATE KEY BODY" not in plan.out + plan.err
    site.reconcile("--apply")
    assert not site.dest("app/key.conf").exists() and not site.dest("linked").exists()
    assert site.dest("app/ok.conf").read_text() == "ok\n"


def test_a_link_committed_in_a_remote_repo_is_refused_not_written_as_text(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/u\n")
    (work / "inventory").mkdir()
    (work / "inventory" / "include-paths.txt").write_text("app/link.conf\napp/ok.conf\n")
    (work / "configs" / "app").mkdir(parents=True)
    (work / "configs" / "app" / "ok.conf").write_text("ok\n")
    (work / "configs" / "app" / "link.conf").symlink_to("/etc/shadow")
    for args in (("init", "-q"), ("add", "-A")):
        subprocess.run(["git", *args], cwd=work, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "links"],
        cwd=work,
        check=True,
    )
    root = tmp_path / "root"
    root.mkdir()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        argv = ["reconcile", "--apply", "--json", "--repo", str(work)]
        code = main([*argv, "--target-root", str(root), "--state-dir", str(tmp_path / "state")])
    assert code == ExitCode.ATTENTION
    files = {f["path"]: f for f in json.loads(out.getvalue())["files"]}
    assert files["app/link.conf"]["action"] == "blocked"
    assert "symlink in the config repo" in files["app/link.conf"]["reason"]
    assert not (root / "home/u/app/link.conf").exists()  # was: a file holding "/etc/shadow"
    assert (root / "home/u/app/ok.conf").read_text() == "ok\n"
