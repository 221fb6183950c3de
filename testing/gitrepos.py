"""Shared fixtures: dulwich-built git repos, a real `git daemon`, dulwich's smart-HTTP server."""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_store import commit_tree_changes
from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import WSGIRequestHandlerLogger, WSGIServerLogger, make_server, make_wsgi_chain

TEST_ID = b"Test <test@example.com>"
GIT_DAEMON = shutil.which("git-daemon") or "/usr/lib/git-core/git-daemon"
MANIFEST = b"version: 1\ntarget:\n  home: /home/u\nsnapshots:\n  tag: snapshot/{date}\n"
_clock = [1_700_000_000]


def config_files(**configs: bytes) -> dict[str, bytes | None]:
    """A small valid config repo: manifest, inventory and `configs/<name>` files."""
    files: dict[str, bytes | None] = {
        "tether.yaml": MANIFEST,
        "inventory/include-paths.txt": "".join(f"{n}\n" for n in sorted(configs)).encode(),
    }
    files.update({f"configs/{name}": data for name, data in configs.items()})
    return files


def init_bare(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True)
    with Repo.init_bare(str(path)) as repo:
        repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/" + branch.encode())
    return path


def commit(
    repo_path: Path,
    changes: Mapping[str, bytes | None],
    message: str = "change",
    *,
    branch: str = "main",
    parent: str | None = None,
    modes: Mapping[str, int] | None = None,
) -> str:
    """A commit on `branch` (or on `parent`, moving `branch` there: a force-push)."""
    _clock[0] += 60
    ref = b"refs/heads/" + branch.encode()
    with Repo(str(repo_path)) as repo:
        if parent is not None:
            parents = [parent.encode()]
        else:
            parents = [repo.refs[ref]] if ref in repo.refs else []
        if parents:
            base = repo[parents[0]]
            assert isinstance(base, Commit)
            tree_id = base.tree
        else:
            empty = Tree()
            repo.object_store.add_object(empty)
            tree_id = empty.id
        edits = []
        for path, data in sorted(changes.items()):
            if data is None:
                edits.append((path.encode(), None, None))
            else:
                blob = Blob.from_string(data)
                repo.object_store.add_object(blob)
                mode = (modes or {}).get(path, 0o100644)
                edits.append((path.encode(), mode, blob.id))
        c = Commit()
        c.tree = commit_tree_changes(repo.object_store, tree_id, edits)
        c.parents = parents
        c.author = c.committer = TEST_ID
        c.author_time = c.commit_time = _clock[0]
        c.author_timezone = c.commit_timezone = 0
        c.message = message.encode() + b"\n"
        repo.object_store.add_object(c)
        repo.refs[ref] = c.id
        return c.id.decode()


def tag(repo_path: Path, name: str, target: str, message: str = "tag") -> None:
    _clock[0] += 60
    with Repo(str(repo_path)) as repo:
        t = Tag()
        t.name = name.encode()
        t.object = (Commit, target.encode())
        t.tagger = TEST_ID
        t.tag_time = _clock[0]
        t.tag_timezone = 0
        t.message = message.encode() + b"\n"
        repo.object_store.add_object(t)
        repo.refs[b"refs/tags/" + name.encode()] = t.id


def ref_of(repo_path: Path, ref: str) -> str | None:
    with Repo(str(repo_path)) as repo:
        raw = ref.encode()
        return repo.refs[raw].decode() if raw in repo.refs else None


def refs_of(repo_path: Path, prefix: str) -> dict[str, str]:
    """The repo's refs starting with `prefix` (e.g. refs/tether/pending/)."""
    with Repo(str(repo_path)) as repo:
        return {
            ref.decode(): sha.decode()
            for ref, sha in repo.get_refs().items()
            if ref.startswith(prefix.encode())
        }


def decline_pushes(repo_path: Path, message: str = "policy: pushes frozen") -> None:
    hook = repo_path / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(0o755)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"git daemon exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A bare config repo with one commit on main, under tmp_path/srv (the daemons' base)."""
    path = init_bare(tmp_path / "srv" / "config.git")
    commit(path, config_files(**{".bashrc": b"alias ll='ls -l'\n"}), "init")
    return path


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[str]:
    """`git daemon` serving tmp_path/srv read-write on 127.0.0.1; yields git://127.0.0.1:PORT."""
    if not Path(GIT_DAEMON).exists():
        pytest.skip("git daemon is not installed (apt-get install git)")
    base = tmp_path / "srv"
    base.mkdir(exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            GIT_DAEMON,
            "--listen=127.0.0.1",
            f"--port={port}",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def serve_repo(repo_path: Path, *, auth: tuple[str, str] | None = None) -> Iterator[str]:
    """dulwich's smart-HTTP WSGI server for one repo (optionally behind HTTP basic auth) in a
    thread on 127.0.0.1; yields http://127.0.0.1:PORT/config.git."""
    repo = Repo(str(repo_path))
    app = make_wsgi_chain(DictBackend({"/config.git": repo}))
    expected = "Basic " + base64.b64encode(":".join(auth).encode()).decode() if auth else None

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        if expected and environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"unauthorized"]
        return app(environ, start_response)

    server = make_server(
        "127.0.0.1",
        0,
        guarded,
        handler_class=WSGIRequestHandlerLogger,
        server_class=WSGIServerLogger,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/config.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        repo.close()


@pytest.fixture
def http_server(upstream: Path) -> Iterator[str]:
    """`upstream` over smart HTTP; yields http://127.0.0.1:PORT (append /config.git)."""
    with serve_repo(upstream) as url:
        yield url.removesuffix("/config.git")


@pytest.fixture
def closed_port() -> str:
    """A git:// URL nobody listens on: the remote is down."""
    return f"git://127.0.0.1:{free_port()}/config.git"
