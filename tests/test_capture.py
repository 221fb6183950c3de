"""`tether capture` on real dulwich repos: conflicts, findings, refusals, dry run, prune, races."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from dulwich.objects import Commit
from dulwich.repo import Repo

from testing.gitrepos import commit, init_bare, ref_of, refs_of
from testing.state import ledger_file, repo_state
from tether.cli import main
from tether.commands.capture import CaptureRequest
from tether.commands.capture import capture as run_capture
from tether.config.options import resolve_host_options
from tether.exitcodes import ExitCode
from tether.git import mirror as gitmirror
from tether.git import publish as gitpublish
from tether.git import remote as gitremote
from tether.state.lock import state_lock
from tether.state.runs import load_runs

HOME = "/home/u"
SECRET = "s3cr3tPassw0rdXyz"
ENTROPY = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC2dF4gH6jK8"


class World:
    """A bare remote holding a config repo, a host tree, a state dir and a secret store."""

    def __init__(self, tmp_path: Path, inventory: str, manifest_extra: str = "") -> None:
        self.tmp = tmp_path
        self.remote = init_bare(tmp_path / "remote.git")
        manifest = f"version: 1\ntarget:\n  home: {HOME}\n{manifest_extra}"
        commit(
            self.remote,
            {"tether.yaml": manifest.encode(), "inventory/include-paths.txt": inventory.encode()},
            "init",
        )
        self.root = tmp_path / "host"
        self.home = self.root / HOME.lstrip("/")
        self.home.mkdir(parents=True)
        self.state = tmp_path / "state"
        self.store = tmp_path / "secrets.env"

    def write(self, path: str, data: str | bytes) -> None:
        target = self.home / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)

    def host_args(self) -> list[str]:
        return [
            "--target-root",
            str(self.root),
            "--state-dir",
            str(self.state),
            "--secrets-file",
            str(self.store),
        ]

    def capture(self, *extra: str) -> int:
        return main(["capture", "--repo", str(self.remote), *extra, *self.host_args()])

    def reconcile(self, *extra: str) -> int:
        return main(["reconcile", "--repo", str(self.remote), *extra, *self.host_args()])

    def restore(self, *extra: str) -> tuple[int, Path]:
        """`reconcile --apply` of the remote onto an empty host with the same store: (exit code,
        the restored home)."""
        empty = self.tmp / "restored"
        empty.mkdir()
        code = main(
            ["reconcile", "--apply", *extra, "--repo", str(self.remote), "--target-root",
             str(empty), "--state-dir", str(self.tmp / "state2"), "--secrets-file", str(self.store)]
        )  # fmt: skip
        return code, empty / HOME.lstrip("/")

    def head(self) -> str:
        found = ref_of(self.remote, "refs/heads/main")
        assert found is not None
        return found

    def files_at(self, sha: str) -> dict[str, bytes]:
        with Repo(str(self.remote)) as repo:
            obj = repo[sha.encode()]
            assert isinstance(obj, Commit)
            out = {}
            for entry in repo.object_store.iter_tree_contents(obj.tree):
                assert entry.path is not None and entry.sha is not None
                out[entry.path.decode()] = repo[entry.sha].as_raw_string()
            return out

    def mirror(self) -> Path:
        return gitmirror.mirror_path(self.state, gitremote.parse_remote(str(self.remote)))


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, "app/.env\napp/config.yml\nnotes/*.txt\n")
    w.write("app/.env", f"DB_PASSWORD={SECRET}\nPORT=80\n")
    w.write("app/config.yml", "server:\n  port: 8080\n")
    w.write("notes/a.txt", "hello\n")
    return w


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


def test_first_capture_redacts_stores_and_reports_json(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = world.head()
    assert world.capture("--json") == ExitCode.OK
    doc = _json(capsys)
    assert doc["pushed"] is True
    assert doc["revision"] == world.head() != before
    assert doc["pending_ref"] is None
    assert doc["secrets"] == {"added": ["APP_DB_PASSWORD"], "rotated": []}
    files = {f["path"]: f["action"] for f in doc["files"]}  # type: ignore[attr-defined]
    assert files == {"app/.env": "add", "app/config.yml": "add", "notes/a.txt": "add"}
    tree = world.files_at(world.head())
    assert tree["configs/app/.env"] == b"DB_PASSWORD=__REDACTED_APP_DB_PASSWORD__\nPORT=80\n"
    assert SECRET in world.store.read_text()
    assert SECRET not in json.dumps(doc)
    with Repo(str(world.remote)) as repo:
        head = repo[world.head().encode()]
        assert isinstance(head, Commit)
        assert head.message.startswith(b"backup: automated snapshot 20")
        assert head.author.startswith(b"tether <tether@")


def test_next_reconcile_is_in_sync_and_capture_again_is_a_no_op(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    head = world.head()
    capsys.readouterr()
    assert world.reconcile("--json") == ExitCode.OK
    actions = {f["action"] for f in _json(capsys)["files"]}  # type: ignore[attr-defined]
    assert actions == {"in_sync"}
    assert world.capture() == ExitCode.OK
    assert "nothing to capture" in capsys.readouterr().err
    assert world.head() == head


def test_new_host_file_matching_a_glob_is_picked_up(world: World) -> None:
    assert world.capture() == ExitCode.OK
    world.write("notes/b.txt", "new\n")
    assert world.capture() == ExitCode.OK
    assert world.files_at(world.head())["configs/notes/b.txt"] == b"new\n"


def test_upstream_change_with_unchanged_host_is_not_captured(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    upstream = commit(world.remote, {"configs/notes/a.txt": b"from upstream\n"}, "upstream")
    capsys.readouterr()
    assert world.capture("--json") == ExitCode.OK
    doc = _json(capsys)
    assert world.head() == upstream
    rows = {f["path"]: f for f in doc["files"]}  # type: ignore[attr-defined]
    assert rows["notes/a.txt"]["action"] == "unchanged"
    assert "reconcile brings it" in rows["notes/a.txt"]["reason"]


def test_conflict_pushes_nothing_and_keeps_a_pending_ref(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    upstream = commit(world.remote, {"configs/notes/a.txt": b"from upstream\n"}, "upstream")
    world.write("notes/a.txt", "from the host\n")
    world.write("app/config.yml", "server:\n  port: 9090\n")  # no conflict, but held back too
    capsys.readouterr()
    assert world.capture() == ExitCode.ATTENTION
    out = capsys.readouterr()
    assert world.head() == upstream  # nothing pushed at all
    assert "conflict  notes/a.txt" in out.out
    assert "CONFLICT in notes/a.txt" in out.err
    assert f"tether reconcile --repo {world.remote} --plan --diff" in out.err
    pending = refs_of(world.mirror(), "refs/tether/pending/")
    assert len(pending) == 1
    ref, sha = next(iter(pending.items()))
    assert ref in out.err
    with Repo(str(world.mirror())) as mirror:
        kept = mirror[sha.encode()]
        assert isinstance(kept, Commit)
        assert kept.parents == [upstream.encode()]
    # Resolving with the host's version: --keep-host publishes it on top of upstream.
    assert world.capture("--keep-host", "notes/a.txt") == ExitCode.OK
    files = world.files_at(world.head())
    assert files["configs/notes/a.txt"] == b"from the host\n"
    assert files["configs/app/config.yml"] == b"server:\n  port: 9090\n"


def test_conflict_resolved_by_taking_upstream(world: World) -> None:
    assert world.capture() == ExitCode.OK
    upstream = commit(world.remote, {"configs/notes/a.txt": b"from upstream\n"}, "upstream")
    world.write("notes/a.txt", "from the host\n")
    assert world.capture() == ExitCode.ATTENTION
    assert world.reconcile("--apply", "--overwrite") in (ExitCode.OK, ExitCode.ATTENTION)
    assert (world.home / "notes/a.txt").read_text() == "from upstream\n"
    assert world.capture() == ExitCode.OK
    assert world.head() == upstream


def test_repo_version_without_a_ledger_record_is_a_conflict(tmp_path: Path) -> None:
    w = World(tmp_path, "a.conf\n")
    commit(w.remote, {"configs/a.conf": b"repo version\n"}, "seed")
    before = w.head()
    w.write("a.conf", "host version\n")
    assert w.capture() == ExitCode.ATTENTION
    assert w.head() == before


def test_strict_findings_after_redaction_commit_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = world.head()
    world.write("notes/leak.txt", f"x: {ENTROPY}\n")
    assert world.capture("--strict") == ExitCode.ATTENTION
    out = capsys.readouterr()
    assert world.head() == before
    assert "STOPPED" in out.err
    assert "configs/notes/leak.txt:1: generic-high-entropy" in out.out
    assert ENTROPY not in out.out + out.err
    assert not world.store.exists()  # not even the store was written
    assert refs_of(world.mirror(), "refs/tether/") == {}


def test_oversized_and_binary_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "capture:\n  max_file_size: 100\nfiles:\n  ok.bin:\n    allow_binary: true\n"
    w = World(tmp_path, "big.txt\nblob.bin\nok.bin\nsmall.txt\n", extra)
    w.write("big.txt", "x" * 101)
    w.write("blob.bin", b"\x00\x01\x02")
    w.write("ok.bin", b"\x00\xff")
    w.write("small.txt", "fine\n")
    assert w.capture() == ExitCode.ATTENTION  # refused files need a person
    out = capsys.readouterr().out
    assert "refused   big.txt: 101 bytes, over the 100 bytes limit" in out
    assert "refused   blob.bin: binary (NUL byte)" in out
    files = w.files_at(w.head())
    assert "configs/big.txt" not in files and "configs/blob.bin" not in files
    assert files["configs/ok.bin"] == b"\x00\xff"
    assert files["configs/small.txt"] == b"fine\n"


def test_dry_run_changes_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.capture() == ExitCode.OK
    world.write("app/.env", "DB_PASSWORD=rotatedPassw0rd99\nPORT=81\nAPI_TOKEN=tok3nValue12345\n")
    remote_before = world.head()
    store_before = world.store.read_bytes()
    mirror_refs = refs_of(world.mirror(), "refs/")
    ledger_before = ledger_file(world.state).read_bytes()
    capsys.readouterr()
    assert world.capture("--dry-run", "--detailed-exitcode") == ExitCode.CHANGES
    out = capsys.readouterr().out
    assert "+PORT=81" in out
    assert "__REDACTED_APP_API_TOKEN__" in out
    assert "added: APP_API_TOKEN" in out and "rotated: APP_DB_PASSWORD" in out
    assert "rotatedPassw0rd99" not in out and "tok3nValue12345" not in out
    assert world.head() == remote_before
    assert world.store.read_bytes() == store_before
    assert refs_of(world.mirror(), "refs/") == mirror_refs
    assert ledger_file(world.state).read_bytes() == ledger_before
    assert [r.command for r in load_runs(world.state)] == ["capture"]


def test_missing_host_file_is_reported_and_pruned_only_with_prune(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    (world.home / "notes/a.txt").unlink()
    before = world.head()
    capsys.readouterr()
    assert world.capture() == ExitCode.ATTENTION
    assert "missing   notes/a.txt: gone from the host" in capsys.readouterr().out
    assert world.head() == before
    assert world.capture("--prune") == ExitCode.OK
    assert "configs/notes/a.txt" not in world.files_at(world.head())
    assert world.reconcile() == ExitCode.OK


def test_unreachable_remote_is_one_line_and_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["capture", "--repo", "git://127.0.0.1:9/none.git", *world.host_args()])
    assert code == ExitCode.ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("tether: cannot clone git://127.0.0.1:9/none.git")
    runs = load_runs(world.state)
    assert runs[-1].command == "capture" and runs[-1].exit_code == ExitCode.ERROR


def test_lost_race_rebuilds_on_the_new_tip(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    raced: list[int] = []

    def racer(attempt: int) -> None:
        if attempt == 1:
            raced.append(attempt)
            commit(world.remote, {"configs/README": b"someone else\n"}, "racer")

    host = resolve_host_options(world.root, None, world.state, world.store)
    code = run_capture(
        CaptureRequest(repo=str(world.remote)),
        host,
        explicit_root=True,
        as_json=True,
        before_push=racer,
    )
    assert code == ExitCode.OK and raced == [1]
    doc = _json(capsys)
    assert doc["secrets"] == {"added": ["APP_DB_PASSWORD"], "rotated": []}  # stored in attempt 1
    files = world.files_at(world.head())
    assert files["configs/README"] == b"someone else\n"
    assert files["configs/app/config.yml"] == b"server:\n  port: 8080\n"
    with Repo(str(world.remote)) as repo:
        head = repo[world.head().encode()]
        assert isinstance(head, Commit)
        racer_commit = repo[head.parents[0]]
        assert isinstance(racer_commit, Commit) and racer_commit.message == b"racer\n"


def test_gives_up_after_bounded_lost_races(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    def racer(attempt: int) -> None:
        commit(world.remote, {f"configs/race{attempt}": b"x\n"}, f"racer {attempt}")

    host = resolve_host_options(world.root, None, world.state, world.store)
    with pytest.raises(Exception, match="lost the race 2 times"):
        run_capture(
            CaptureRequest(repo=str(world.remote), attempts=2),
            host,
            explicit_root=True,
            before_push=racer,
        )
    assert "configs/app/.env" not in world.files_at(world.head())


def test_no_push_commits_to_the_mirror_only(world: World) -> None:
    before = world.head()
    assert world.capture("--no-push") == ExitCode.OK
    assert world.head() == before
    local = refs_of(world.mirror(), "refs/heads/main")["refs/heads/main"]
    assert local != before
    assert not ledger_file(world.state).exists()  # the remote does not describe the host


def test_rotated_secret_updates_the_store_without_a_commit(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    head = world.head()
    world.write("app/.env", "DB_PASSWORD=n3wPassw0rdAbc\nPORT=80\n")
    capsys.readouterr()
    assert world.capture("--json") == ExitCode.OK
    doc = _json(capsys)
    assert doc["secrets"] == {"added": [], "rotated": ["APP_DB_PASSWORD"]}
    assert world.head() == head
    assert "n3wPassw0rdAbc" in world.store.read_text()
    assert world.reconcile() == ExitCode.OK  # in sync: the ledger knows the new value


def test_remote_from_the_manifest_and_message_and_metrics(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git")
    manifest = (
        f"version: 1\ntarget:\n  home: {HOME}\ncapture:\n  remote: {remote}\n"
        "  author: Ops <ops@example.com>\n  message: 'host sync {time}'\n"
    )
    commit(
        remote,
        {"tether.yaml": manifest.encode(), "inventory/include-paths.txt": b"a.conf\n"},
        "init",
    )
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / "tether.yaml").write_text(manifest)
    home = tmp_path / "host" / HOME.lstrip("/")
    home.mkdir(parents=True)
    (home / "a.conf").write_text("x = 1\n")
    metrics = tmp_path / "capture.prom"
    code = main(
        [
            "capture",
            "--source",
            str(folder),
            "--metrics-file",
            str(metrics),
            "--target-root",
            str(tmp_path / "host"),
            "--state-dir",
            str(tmp_path / "state"),
            "--secrets-file",
            str(tmp_path / "s.env"),
        ]
    )
    assert code == ExitCode.OK
    with Repo(str(remote)) as repo:
        head = repo[repo.refs[b"refs/heads/main"]]
        assert isinstance(head, Commit)
        assert head.author == b"Ops <ops@example.com>"
        assert head.message.startswith(b"host sync 20")
    assert 'tether_last_run_success{command="capture"} 1' in metrics.read_text()
    assert 'tether_files{command="capture",action="add"} 1' in metrics.read_text()
    assert load_runs(tmp_path / "state")[-1].revision_applied is not None


def test_capture_needs_a_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["capture", "--state-dir", str(tmp_path / "s")]) == ExitCode.USAGE
    assert "capture needs a git remote" in capsys.readouterr().err


def test_capture_false_and_dest_override(tmp_path: Path) -> None:
    extra = "files:\n  skip.conf:\n    capture: false\n  etc.conf:\n    dest: /etc/app.conf\n"
    w = World(tmp_path, "skip.conf\netc.conf\n", extra)
    w.write("skip.conf", "no\n")
    (w.root / "etc").mkdir()
    (w.root / "etc" / "app.conf").write_text("from etc\n")
    assert w.capture() == ExitCode.OK
    files = w.files_at(w.head())
    assert files["configs/etc.conf"] == b"from etc\n"
    assert "configs/skip.conf" not in files


def test_git_fsck_is_clean_after_captures(world: World) -> None:
    assert world.capture() == ExitCode.OK
    world.write("notes/a.txt", "changed\n")
    assert world.capture() == ExitCode.OK
    done = subprocess.run(
        ["git", "--git-dir", str(world.remote), "fsck", "--strict"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_symlinks_are_refused_never_followed(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not for the repo\n")
    (world.home / "notes" / "link.txt").symlink_to(outside)
    assert world.capture() == ExitCode.ATTENTION
    assert "refused   notes/link.txt" in capsys.readouterr().out
    assert "configs/notes/link.txt" not in world.files_at(world.head())


def test_a_held_lock_stops_capture(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.state.mkdir()
    with state_lock(world.state, "reconcile --apply"):
        assert world.capture() == ExitCode.ATTENTION
    assert "locked by" in capsys.readouterr().err
    assert world.capture() == ExitCode.OK


def test_secret_values_never_reach_output_or_git(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture("--dry-run", "--detailed-exitcode") == ExitCode.CHANGES
    assert world.capture() == ExitCode.OK
    assert world.capture("--json") == ExitCode.OK
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    with Repo(str(world.remote)) as repo:
        store = repo.object_store
        assert not any(SECRET.encode() in store[sha].as_raw_string() for sha in store)


def test_findings_in_json(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.write("notes/leak.txt", f"x: {ENTROPY}\n")
    assert world.capture("--json", "--strict") == ExitCode.ATTENTION
    doc = _json(capsys)
    assert doc["pushed"] is False
    assert doc["findings"] == ["configs/notes/leak.txt:1: generic-high-entropy aB***"]
    assert doc["held"] == []


def _held(world: World, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    main(["status", "--json", "--state-dir", str(world.state)])  # exit 3: Ready is NeverRun
    conditions = _json(capsys)["conditions"]
    assert isinstance(conditions, list)
    found: dict[str, str] = next(c for c in conditions if c["type"] == "CaptureHeld")
    return found


def test_a_finding_holds_back_its_file_and_everything_else_is_pushed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.write("notes/leak.txt", f"hello\nx: {ENTROPY}\n")
    assert world.capture("--json") == ExitCode.ATTENTION
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["pushed"] is True
    assert doc["held"] == [{"path": "notes/leak.txt", "line": 2, "rule": "generic-high-entropy"}]
    files = {f["path"]: (f["action"], f["reason"]) for f in doc["files"]}
    assert files["notes/leak.txt"] == ("held", "secret finding (line 2: generic-high-entropy)")
    assert "notes/leak.txt (line 2: generic-high-entropy)" in out.err
    tree = world.files_at(world.head())
    assert tree["configs/notes/a.txt"] == b"hello\n"  # the clean files landed on the remote
    assert tree["configs/app/.env"] == b"DB_PASSWORD=__REDACTED_APP_DB_PASSWORD__\nPORT=80\n"
    assert "configs/notes/leak.txt" not in tree
    with Repo(str(world.remote)) as repo:
        store = repo.object_store
        assert not any(ENTROPY.encode() in store[sha].as_raw_string() for sha in store)
    assert ENTROPY not in out.out + out.err
    assert _held(world, capsys) == {
        "type": "CaptureHeld",
        "status": "True",
        "reason": "SecretFinding",
        "message": "held back notes/leak.txt (line 2: generic-high-entropy)",
    }
    # A capture of other files alone (--only) leaves the condition as it was.
    world.write("app/config.yml", "server:\n  port: 8081\n")
    assert world.capture("--only", "app") == ExitCode.OK
    assert _held(world, capsys)["status"] == "True"
    # Still there: the next capture holds it again; fixed: it lands and the condition clears.
    assert world.capture() == ExitCode.ATTENTION
    world.write("notes/leak.txt", "hello\nx: 1\n")
    assert world.capture() == ExitCode.OK
    assert world.files_at(world.head())["configs/notes/leak.txt"] == b"hello\nx: 1\n"
    held = _held(world, capsys)
    assert (held["status"], held["reason"], held["message"]) == ("False", "NothingHeld", "")


def test_a_held_file_keeps_its_new_secrets_out_of_the_store(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.write("notes/b.txt", f"API_TOKEN=Zq8-only-in-held\nx: {ENTROPY}\n")
    assert world.capture("--dry-run") == ExitCode.ATTENTION
    dry = capsys.readouterr()
    assert "held      notes/b.txt" in dry.out and ENTROPY not in dry.out + dry.err
    assert world.capture("--json") == ExitCode.ATTENTION
    doc = _json(capsys)
    assert doc["secrets"] == {"added": ["APP_DB_PASSWORD"], "rotated": []}
    assert "Zq8-only-in-held" not in world.store.read_text()
    assert [f["path"] for f in doc["held"]] == ["notes/b.txt"]  # type: ignore[index]


def test_deleted_on_the_host_and_changed_upstream_is_a_conflict(world: World) -> None:
    assert world.capture() == ExitCode.OK
    upstream = commit(world.remote, {"configs/notes/a.txt": b"from upstream\n"}, "upstream")
    (world.home / "notes/a.txt").unlink()
    assert world.capture("--prune") == ExitCode.ATTENTION
    assert world.head() == upstream
    assert world.capture() == ExitCode.ATTENTION  # without --prune: reported missing
    assert world.head() == upstream


def test_dry_run_reports_a_conflict_without_a_pending_ref(world: World) -> None:
    assert world.capture() == ExitCode.OK
    commit(world.remote, {"configs/notes/a.txt": b"from upstream\n"}, "upstream")
    world.write("notes/a.txt", "from the host\n")
    assert world.capture("--dry-run") == ExitCode.ATTENTION
    assert refs_of(world.mirror(), "refs/tether/") == {}


def test_a_file_that_would_not_restore_is_refused(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DB_PASSWORD", "an-override")  # reconcile would write this instead
    assert world.capture() == ExitCode.ATTENTION
    assert "refused   app/.env: redacting it would not give the host bytes back" in (
        capsys.readouterr().out
    )
    assert "configs/app/.env" not in world.files_at(world.head())


LITERALS = {  # what hosts restored by the article's scripts, or their users, hold
    "stack/.env": "PG_PASS_OLD=REDACTED\nPG_PASS=Xk29-real-pg-value\n",
    "stack/services.yaml": "- Plex:\n    widget:\n      password: REDACTED\n      key: 'REDACTED'\n",
    "stack/README.txt": "Secrets in git read REDACTED or __REDACTED_DB_PASSWORD__; REDACTED.\n",
    "stack/db/password.txt": "REDACTED\n",  # a whole-file secret restored as the word
}


def test_a_literal_redacted_on_the_host_round_trips_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, "stack/**\n")
    for path, text in LITERALS.items():
        w.write(path, text)
    assert w.capture("--json") == ExitCode.OK
    doc = _json(capsys)
    assert {f["action"] for f in doc["files"]} == {"add"}  # type: ignore[union-attr]
    tree = w.files_at(w.head())
    assert b"REDACTED\n" not in tree["configs/stack/.env"]  # placeholders stand for the words
    assert tree["configs/stack/db/password.txt"].startswith(b"__REDACTED_")
    assert b"Xk29-real-pg-value" not in b"".join(tree.values())
    # The capturing host is in sync; an empty host gets the same bytes, nothing blocked.
    assert w.reconcile("--detailed-exitcode") == ExitCode.OK
    assert w.capture() == ExitCode.OK
    assert w.head() == doc["revision"]  # nothing new to capture
    # The stored word is no secret: the placeholders holding it are no store-value finding.
    w.write("stack/services.yaml", LITERALS["stack/services.yaml"] + "# edited\n")
    assert w.capture() == ExitCode.OK
    w.write("stack/services.yaml", LITERALS["stack/services.yaml"])
    assert w.capture() == ExitCode.OK
    capsys.readouterr()
    code, home = w.restore("--json")
    assert code == ExitCode.OK
    plan = _json(capsys)
    assert {f["action"] for f in plan["files"]} == {"create"}  # type: ignore[union-attr]
    for path, text in LITERALS.items():
        assert (home / path).read_text() == text


# Values an example repo asks to have replaced; a host that kept them runs with them.
TEMPLATE_VALUES = {
    "code/compose.yaml": "services:\n  code:\n    environment:\n"
    "      - PASSWORD=MyStrongLoginPassword\n      - SUDO_PASSWORD=MyOptionalSudoPassword\n",
    "files/.env": "MYSQL_ROOT_PASSWORD=your_mysql_root_password\nOIDC_SECRET=<YOUR-SECRET>\n",
    "pihole/compose.yaml": "services:\n  pihole:\n    environment:\n"
    "      WEBPASSWORD: 'MySecureLoginPasswordForWebApp'\n",
}


def test_a_value_an_example_asked_to_replace_is_redacted_on_a_live_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, "code/**\nfiles/**\npihole/**\n")
    for path, text in TEMPLATE_VALUES.items():
        w.write(path, text)
    assert w.capture() == ExitCode.OK
    pushed = b"".join(w.files_at(w.head()).values())
    for value in (
        b"MyStrongLoginPassword",
        b"MyOptionalSudoPassword",
        b"your_mysql_root_password",
        b"<YOUR-SECRET>",
        b"MySecureLoginPasswordForWebApp",
    ):
        assert value not in pushed
    assert pushed.count(b"__REDACTED_") == 5
    capsys.readouterr()
    code, home = w.restore()
    assert code == ExitCode.OK
    for path, text in TEMPLATE_VALUES.items():
        assert (home / path).read_text() == text


def test_ref_is_an_alias_of_branch(tmp_path: Path) -> None:
    w = World(tmp_path, "a.conf\n")
    w.write("a.conf", "x\n")
    assert w.capture("--ref", "nope") == ExitCode.ERROR  # no such branch: nothing happens
    assert w.capture("--ref", "main") == ExitCode.OK


def test_a_new_file_never_takes_over_a_name_another_file_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, "app/*.env\n")
    w.write("app/a.env", "DB_PASSWORD=firstValue123456\n")
    assert w.capture() == ExitCode.OK
    w.write("app/b.env", "DB_PASSWORD=otherValue654321\n")  # same key, another value
    capsys.readouterr()
    assert w.capture("--json") == ExitCode.OK
    doc = _json(capsys)
    assert doc["secrets"]["rotated"] == []  # type: ignore[index]
    files = w.files_at(w.head())
    assert files["configs/app/a.env"] == b"DB_PASSWORD=__REDACTED_APP_DB_PASSWORD__\n"
    assert b"__REDACTED_APP_DB_PASSWORD__" not in files["configs/app/b.env"]
    store = w.store.read_text()
    assert "firstValue123456" in store and "otherValue654321" in store
    assert w.reconcile() == ExitCode.OK  # both render back as they are on the host


def test_a_missing_target_root_prunes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    before = world.head()
    world.root.rename(world.tmp / "unmounted")  # a /host that is not mounted, a typo
    capsys.readouterr()
    assert world.capture("--prune") == ExitCode.ERROR
    assert f"target root {world.root}: no such folder" in capsys.readouterr().err
    assert world.head() == before


def test_prune_never_empties_the_repo(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.capture() == ExitCode.OK
    before = world.head()
    capsys.readouterr()
    code = main(["capture", "--repo", str(world.remote), "--prune", "--target-home", "/home/typo",
                 *world.host_args()])  # fmt: skip
    assert code == ExitCode.ATTENTION
    assert "nothing of the allowlist is on the host" in capsys.readouterr().out
    assert world.head() == before


def test_bookkeeping_that_fails_after_a_push_is_a_warning(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = world.tmp / "no" / "such" / "capture.prom"
    assert world.capture("--metrics-file", str(metrics)) == ExitCode.OK
    err = capsys.readouterr().err
    assert "tether: warning: run not recorded" in err and "and pushed to" in err
    assert "configs/app/config.yml" in world.files_at(world.head())
    assert load_runs(world.state)[-1].exit_code == ExitCode.OK


def test_a_source_manifest_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / "tether.yaml").write_bytes(b"version: 1\ncapture: {remote: \xff}\n")
    code = main(["capture", "--source", str(folder), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR
    assert err == f"tether: {folder / 'tether.yaml'}: not UTF-8 text (save the file as UTF-8)\n"


def _interrupt_push(monkeypatch: pytest.MonkeyPatch, *, after: bool) -> None:
    """A capture killed right before, or right after, the remote's branch moved."""
    real_push = gitpublish.push_branch

    def push(*args: object, **kwargs: object) -> object:
        if not after:
            raise KeyboardInterrupt
        result = real_push(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # the ref moved; the ledger is not saved
        return result

    monkeypatch.setattr(gitpublish, "push_branch", push)


def test_a_capture_killed_after_its_push_is_completed_by_the_next(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    world.write("notes/a.txt", "second\n")
    _interrupt_push(monkeypatch, after=True)
    assert world.capture() == ExitCode.INTERRUPTED
    monkeypatch.undo()
    assert world.files_at(world.head())["configs/notes/a.txt"] == b"second\n"  # it did land
    assert (repo_state(world.state) / "capturing.json").is_file()
    world.write("notes/a.txt", "third\n")  # the same file edited again
    capsys.readouterr()
    assert world.capture() == ExitCode.OK  # was: its own commit taken for upstream, a conflict
    assert "recorded capture" in capsys.readouterr().err
    assert world.files_at(world.head())["configs/notes/a.txt"] == b"third\n"
    assert not (repo_state(world.state) / "capturing.json").exists()
    assert world.capture() == ExitCode.OK  # and nothing is left to do
    assert world.files_at(world.head())["configs/notes/a.txt"] == b"third\n"


def test_a_journal_whose_commit_never_reached_the_remote_is_dropped(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK
    before = world.head()
    world.write("notes/a.txt", "second\n")
    _interrupt_push(monkeypatch, after=False)
    assert world.capture() == ExitCode.INTERRUPTED
    monkeypatch.undo()
    assert world.head() == before and (repo_state(world.state) / "capturing.json").is_file()
    capsys.readouterr()
    assert world.capture() == ExitCode.OK
    assert "dropped an interrupted capture" in capsys.readouterr().err
    assert world.files_at(world.head())["configs/notes/a.txt"] == b"second\n"


def test_store_values_planted_where_no_rule_looks_never_reach_the_remote(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK  # the store now holds APP_DB_PASSWORD
    values = ["Xq7-plain-Vk2", "second value 99"]
    with world.store.open("a") as store:
        store.write(f"OTHER_ONE={values[0]}\nOTHER_TWO='{values[1]}'\n")
    world.write("notes/a.txt", f"# old pw: {SECRET}\nNOTE={values[0]}\n")
    world.write("app/config.yml", f"server:\n  port: 8080\n  motd: {values[1]}\n")
    before = world.head()
    capsys.readouterr()
    assert world.capture("--dry-run") == ExitCode.ATTENTION
    dry = capsys.readouterr()
    assert "store-value" in dry.out + dry.err
    assert world.capture() == ExitCode.ATTENTION
    out = capsys.readouterr()
    assert world.head() == before  # nothing committed, nothing pushed
    for value in [SECRET, *values]:
        assert value not in out.out + out.err
    with Repo(str(world.remote)) as repo:
        for sha in repo.object_store:
            raw = repo.object_store[sha].as_raw_string()
            assert not any(v.encode() in raw for v in [SECRET, *values])


def test_a_host_file_name_with_terminal_escapes_is_refused_and_shown_escaped(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "e\x1b[31mRED\x1b[0m\nfake line.txt"
    world.write(f"notes/{evil}", "x\n")
    assert world.capture() == ExitCode.OK
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err and "\nfake line" not in out.err
    assert "\\x1b[31mRED" in out.err and "left out" in out.err
    assert not any("RED" in p for p in world.files_at(world.head()))


def test_a_docker_secret_file_reaches_git_only_as_a_placeholder_and_comes_back_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, "stack/docker-compose.yml\nstack/db/*\n")
    w.write(
        "stack/docker-compose.yml",
        "services:\n  db:\n    image: postgres\n    secrets: [pg]\n"
        "secrets:\n  pg:\n    file: db/pg.txt\n",  # a name that says nothing: the compose does
    )
    w.write("stack/db/pg.txt", "Xk29-pg-secret-value\n")
    w.write("stack/db/root_password", "no-newline-at-end")
    assert w.capture() == ExitCode.OK
    tree = w.files_at(w.head())
    assert tree["configs/stack/db/pg.txt"] == b"__REDACTED_STACK_PG__"
    assert tree["configs/stack/db/root_password"] == b"__REDACTED_STACK_ROOT_PASSWORD__"
    with Repo(str(w.remote)) as repo:
        for sha in repo.object_store:
            raw = repo.object_store[sha].as_raw_string()
            assert b"Xk29-pg-secret-value" not in raw and b"no-newline-at-end" not in raw
    out = capsys.readouterr()
    assert "Xk29" not in out.out + out.err
    # Restore onto an empty host: the exact bytes, trailing newline or not.
    code, home = w.restore()
    assert code == ExitCode.OK
    assert (home / "stack/db/pg.txt").read_bytes() == b"Xk29-pg-secret-value\n"
    assert (home / "stack/db/root_password").read_bytes() == b"no-newline-at-end"
    assert (home / "stack/db/pg.txt").stat().st_mode & 0o777 == 0o600


def test_the_dry_run_diff_never_shows_a_plain_value_as_redacted(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.capture() == ExitCode.OK  # the store now holds APP_DB_PASSWORD
    # prose, not a commented-out assignment (that would be redacted): no rule finds it
    world.write("notes/a.txt", f"# the old one was {SECRET} until May\n")
    capsys.readouterr()
    assert world.capture("--dry-run") == ExitCode.ATTENTION
    out = capsys.readouterr().out
    added = [x for x in out.splitlines() if x.strip().startswith("+# the old one")]
    assert added == ["    +# the old one was (PLAIN TEXT: store value APP_DB_PASSWORD) until May"]
    assert SECRET not in out


def test_the_held_line_is_cut_short() -> None:
    from tether.capture.flow import Held, held_text  # noqa: PLC0415

    held = [Held(f"f{i}.env", n, "store-value") for i in range(7) for n in range(1, 6)]
    text = held_text(held)
    assert text.startswith("held back f0.env (line 1: store-value; line 2: store-value; line 3")
    assert "f0.env (line 1: store-value; line 2: store-value; line 3: store-value; 2 more)" in text
    assert text.endswith("f4.env (line 1: store-value; line 2: store-value; line 3: store-value;"
                         " 2 more) and 2 more files")  # fmt: skip


def test_a_binary_keystore_goes_to_git_as_a_placeholder_and_comes_back_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, "tls/*\n", "files:\n  tls/logo.png:\n    allow_binary: true\n")
    keystore = b"0\x82\x04\x00\x02\x01\x03Xk29-keystore-bytes\xff\n"
    w.write("tls/server.p12", keystore)  # no allow_binary needed: it is redacted whole
    w.write("tls/logo.png", b"\x89PNG\x00\x00")
    assert w.capture("--json") == ExitCode.OK
    doc = _json(capsys)
    assert doc["secrets"] == {"added": ["TLS_SERVER"], "rotated": []}
    files = w.files_at(w.head())
    assert files["configs/tls/server.p12"] == b"tether:base64 __REDACTED_TLS_SERVER__"
    assert files["configs/tls/logo.png"] == b"\x89PNG\x00\x00"  # allow_binary: as it is
    with Repo(str(w.remote)) as repo:
        store = repo.object_store
        assert not any(b"Xk29-keystore" in store[sha].as_raw_string() for sha in store)
    assert w.reconcile("--detailed-exitcode") == ExitCode.OK  # in sync
    code, home = w.restore()
    assert code == ExitCode.OK
    restored = home / "tls/server.p12"
    assert restored.read_bytes() == keystore
    assert restored.stat().st_mode & 0o777 == 0o600
