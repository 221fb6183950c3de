"""The capture round trip, end to end on real repos (no mocks).

A generated host tree with planted secrets in every supported format is captured into a bare
remote served by a real `git daemon`; no blob anywhere in the remote's history holds a planted
value; reconciling that remote onto an empty target with the secret store gives back every file
byte for byte; three host edits make exactly one commit touching exactly those three files; a
second capture makes none; and a competing push that lands while ours is in flight (a
pre-receive hook on the remote pushes another commit on its first run) loses nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

from testing.gitrepos import commit, init_bare
from tether.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from labeled_tree import generate

HOME = "/home/bench"


def _host_tree(tmp_path: Path, files: int) -> tuple[Path, list[str], list[str]]:
    """Generate the labeled tree and move its configs/ onto a host home; (root, paths, values)."""
    gen = tmp_path / "gen"
    labels = generate(gen, files=files, seed=11)
    root = tmp_path / "host"
    home = root / HOME.lstrip("/")
    home.parent.mkdir(parents=True)
    (gen / "configs").rename(home)
    paths = (gen / "inventory" / "include-paths.txt").read_text().splitlines()
    return root, paths, [str(s["value"]) for s in labels.secrets]


def _all_blobs(repo_path: Path) -> list[bytes]:
    with Repo(str(repo_path)) as repo:
        store = repo.object_store
        return [obj.data for sha in store if isinstance(obj := store[sha], Blob)]


def _head(repo_path: Path) -> Commit:
    with Repo(str(repo_path)) as repo:
        obj = repo[repo.refs[b"refs/heads/main"]]
        assert isinstance(obj, Commit)
        return obj


def _changed_paths(repo_path: Path, old: bytes, new: bytes) -> set[str]:
    with Repo(str(repo_path)) as repo:
        a, b = repo[old], repo[new]
        assert isinstance(a, Commit) and isinstance(b, Commit)
        changes = repo.object_store.tree_changes(a.tree, b.tree)
        return {(c[0][1] or c[0][0]).decode() for c in changes}


def _race_hook(remote: Path, racer: Path, marker: Path) -> None:
    """On its first run, the remote's pre-receive hook pushes the racer's commit first."""
    hook = remote / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(
        "#!/bin/sh\n"
        "cat >/dev/null\n"
        f"if [ ! -e '{marker}' ]; then\n"
        f"  touch '{marker}'\n"
        "  unset GIT_DIR GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY "
        "GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
        f"  git -C '{racer}' push -q '{remote}' HEAD:refs/heads/main >&2\n"
        "fi\n"
        "exit 0\n"
    )
    hook.chmod(0o755)


def _git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "racer",
        "GIT_AUTHOR_EMAIL": "racer@example.com",
        "GIT_COMMITTER_NAME": "racer",
        "GIT_COMMITTER_EMAIL": "racer@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def test_round_trip(tmp_path: Path, git_daemon: str, capsys: pytest.CaptureFixture[str]) -> None:
    root, paths, values = _host_tree(tmp_path, files=100)
    remote = init_bare(tmp_path / "srv" / "config.git")
    inventory = "".join(f"{p}\n" for p in paths).encode()
    commit(
        remote,
        {
            "tether.yaml": f"version: 1\ntarget:\n  home: {HOME}\n".encode(),
            "inventory/include-paths.txt": inventory,
        },
        "init",
    )
    url = f"{git_daemon}/config.git"
    store = tmp_path / "secrets.env"
    host_args = ["--target-root", str(root), "--state-dir", str(tmp_path / "state")]
    host_args += ["--secrets-file", str(store)]

    # 1. First capture: everything lands, redacted.
    assert main(["capture", "--repo", url, *host_args]) == 0
    first = _head(remote)
    blobs = _all_blobs(remote)
    leaked = [v for v in values if any(v.encode() in b for b in blobs)]
    assert leaked == []
    assert len(values) > 50  # every format planted secrets

    # 2. Reconcile the remote onto an empty target with the store: byte for byte.
    empty = tmp_path / "restored"
    empty.mkdir()
    restore_args = ["--target-root", str(empty), "--state-dir", str(tmp_path / "state2")]
    restore_args += ["--secrets-file", str(store)]
    assert main(["reconcile", "--repo", url, "--apply", *restore_args]) == 0
    home, restored = root / HOME.lstrip("/"), empty / HOME.lstrip("/")
    for path in paths:
        assert (restored / path).read_bytes() == (home / path).read_bytes(), path

    # 3. The capturing host's next reconcile is all in sync (ledger coherence).
    capsys.readouterr()
    assert main(["reconcile", "--repo", url, "--json", *host_args]) == 0
    report = json.loads(capsys.readouterr().out)
    actions = {item["action"] for item in report["files"]}
    assert actions == {"in_sync"}, actions

    # 4. Three host edits: one commit touching exactly those three files.
    edited = [paths[0], paths[7], paths[13]]
    for path in edited:
        with (home / path).open("a") as handle:
            handle.write("# edited on the host\n")
    assert main(["capture", "--repo", url, *host_args]) == 0
    second = _head(remote)
    assert second.parents == [first.id]
    assert _changed_paths(remote, first.id, second.id) == {f"configs/{p}" for p in edited}

    # 5. Nothing changed: no commit.
    assert main(["capture", "--repo", url, *host_args]) == 0
    assert _head(remote).id == second.id

    # 6. A competing push lands between our fetch and our push: both changes land.
    racer = tmp_path / "racer"
    _git("clone", "-q", str(remote), str(racer), cwd=tmp_path)
    (racer / "README.md").write_text("pushed by someone else\n")
    _git("add", "README.md", cwd=racer)
    _git("commit", "-q", "-m", "racer", cwd=racer)
    _race_hook(remote, racer, tmp_path / "raced")
    with (home / paths[20]).open("a") as handle:
        handle.write("# edited during a race\n")
    assert main(["capture", "--repo", url, *host_args]) == 0
    assert (tmp_path / "raced").exists()  # the hook did push first
    final = _head(remote)
    with Repo(str(remote)) as repo:
        parent = repo[final.parents[0]]
        assert isinstance(parent, Commit)
        assert parent.message == b"racer\n"
        assert parent.parents == [second.id]
    assert _changed_paths(remote, parent.id, final.id) == {f"configs/{paths[20]}"}
    fsck = subprocess.run(
        ["git", "--git-dir", str(remote), "fsck", "--strict"], capture_output=True, check=False
    )
    assert fsck.returncode == 0, fsck.stderr
