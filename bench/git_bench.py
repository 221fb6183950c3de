"""Git layer benchmark: tether's mirror (dulwich) against the git CLI on a 10,000-file config repo.

    .venv/bin/python bench/git_bench.py [--runs 3] [--files 10000] [--root DIR]

Measures, median of --runs:
  * the first clone into the mirror (`gitmirror.fetch` on an empty state dir) vs `git clone --bare`
    (both with and without `--no-local`, which forces a pack transfer like tether's);
  * a fetch of one new commit touching 10 files vs `git fetch` into a bare mirror;
  * reading every blob of the commit (`open_remote_tree` + `read_bytes`) vs
    `git ls-tree -r | git cat-file --batch`, and the same files read from a folder (FolderTree).
tether's figures are in-process (the interpreter and imports are timed once, separately).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tether.config.sourcetree import FolderTree
from tether.git import mirror as gitmirror
from tether.git import remote as gitremote
from tether.git.tree import open_remote_tree

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
MANIFEST = "version: 1\ntarget:\n  home: /home/bench\n"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", "-c", "gc.auto=0", *args],
        cwd=cwd,
        env=GIT_ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def build_fixture(root: Path, files: int) -> tuple[Path, Path]:
    """A work repo with `files` ~1 KiB YAML files under configs/, and its packed bare upstream."""
    work = root / "work"
    git("init", "-q", "-b", "main", str(work))
    (work / "tether.yaml").write_text(MANIFEST)
    (work / "inventory").mkdir()
    (work / "inventory" / "include-paths.txt").write_text("**\n")
    per_dir = 100
    for i in range(files):
        folder = work / "configs" / f"app{i // per_dir:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        # ~1 KiB of settings whose values differ per file (like real configs: little to delta).
        body = "".join(
            f"key{j}: {hashlib.sha256(f'{i}-{j}'.encode()).hexdigest()[:20]}\n" for j in range(40)
        )
        (folder / f"file{i % per_dir:03d}.yaml").write_text(f"# file {i}\n{body}")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "init", cwd=work)
    upstream = root / "upstream.git"
    git("clone", "-q", "--bare", "--no-local", str(work), str(upstream))
    git("--git-dir", str(upstream), "gc", "-q")
    git("remote", "add", "origin", str(upstream), cwd=work)
    return work, upstream


def change_ten(work: Path, round_no: str, files: int) -> None:
    for k in range(10):
        i = k * (files // 10)  # spread over the tree, as a real edit session would be
        path = work / "configs" / f"app{i // 100:03d}" / f"file{i % 100:03d}.yaml"
        path.write_text(path.read_text() + f"changed: {round_no}\n")
    git("commit", "-qam", f"change {round_no}", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)


def median_of(runs: int, fn: Callable[[], None], setup: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(runs):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def serve_git_daemon(
    base: Path, *, log: Path | None = None, writable: bool = False
) -> Iterator[str | None]:
    """`git daemon` over `base` on 127.0.0.1 (pushes too when `writable`; with `log`, one
    line per request goes there); yields its git:// URL, None when git daemon is missing."""
    daemon = shutil.which("git-daemon") or "/usr/lib/git-core/git-daemon"
    if not Path(daemon).exists():
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = log.open("wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            daemon,
            "--listen=127.0.0.1",
            f"--port={port}",
            "--reuseaddr",
            "--export-all",
            *(["--enable=receive-pack"] if writable else []),
            *(["--verbose", "--log-destination=stderr"] if log is not None else []),
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=sink,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if not isinstance(sink, int):
            sink.close()


def transport_rows(
    name: str, url: str, root: Path, work: Path, runs: int, files: int
) -> list[tuple[str, float]]:
    """First clone and a 10-file fetch over one transport: tether's mirror vs the git CLI."""
    rows = []
    slug = "".join(c if c.isalnum() else "-" for c in name)
    remote = gitremote.parse_remote(url)
    clone_state = root / f"state-clone-{slug}"
    rows.append(
        (
            f"first clone into the mirror, {name} (gitmirror.fetch)",
            median_of(
                runs,
                lambda: gitmirror.fetch(remote, clone_state) and None,
                lambda: shutil.rmtree(clone_state, ignore_errors=True),
            ),
        )
    )
    bare = root / f"git-bare-{slug}.git"
    no_local = ["--no-local"] if "://" not in url else []  # a pack transfer, like tether's
    rows.append(
        (
            f"first clone, {name} (git clone --bare{' --no-local' if no_local else ''})",
            median_of(
                runs,
                lambda: git("clone", "-q", "--bare", *no_local, url, str(bare)) and None,
                lambda: shutil.rmtree(bare, ignore_errors=True),
            ),
        )
    )
    fetch_state = root / f"state-fetch-{slug}"
    gitmirror.fetch(remote, fetch_state)
    git_mirror = root / f"git-mirror-{slug}.git"
    git("clone", "-q", "--mirror", *no_local, url, str(git_mirror))
    counter = [0]

    def next_change() -> None:
        # Both mirrors are brought up to date first (untimed), so each timed fetch gets 1 commit.
        gitmirror.fetch(remote, fetch_state)
        git("--git-dir", str(git_mirror), "fetch", "-q", "origin")
        counter[0] += 1
        change_ten(work, f"{slug}-{counter[0]}", files)

    fetched: list[str] = []
    rows.append(
        (
            f"fetch of a 10-file change, {name} (gitmirror.fetch)",
            median_of(
                runs,
                lambda: fetched.append(
                    gitmirror.fetch(remote, fetch_state).refs["refs/heads/main"]
                ),
                next_change,
            ),
        )
    )
    upstream_main = git("--git-dir", str(root / "upstream.git"), "rev-parse", "main").strip()
    assert fetched[-1] == upstream_main, "the timed fetch did not bring the new commit"
    rows.append(
        (
            f"fetch of a 10-file change, {name} (git fetch into a mirror)",
            median_of(
                runs,
                lambda: git("--git-dir", str(git_mirror), "fetch", "-q", "origin") and None,
                next_change,
            ),
        )
    )
    return rows


def read_all_remote(url: str, state: Path) -> int:
    total = 0
    with open_remote_tree(url, None, state, offline=True) as tree:
        for rel in tree.files_under(""):
            total += len(tree.read_bytes(rel))
    return total


def read_all_folder(folder: Path) -> int:
    tree = FolderTree(folder)
    return sum(len(tree.read_bytes(rel)) for rel in tree.files_under("") if "/.git/" not in rel)


def git_cat_all(repo: Path) -> None:
    shas = git("--git-dir", str(repo), "ls-tree", "-r", "--object-only", "HEAD")
    subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "--batch"],
        input=shas.encode(),
        capture_output=True,
        check=True,
    )


def bench_reconcile_noop_repo_vs_source(
    root: Path, upstream: Path, work: Path, runs: int
) -> list[tuple[str, float]]:
    """The issue's target: a no-op `reconcile --repo` within 1.2x of `reconcile --source`.

    Each contender is a fresh process (start-up included), after one untimed apply into its own
    target; the mirror is already fetched, and every --repo run still fetches (a no-op fetch).
    `rsync -a --checksum --dry-run` of the same tree is the peer.
    """
    tether = [sys.executable, "-m", "tether", "reconcile"]
    common = ["--secrets-file", str(root / "none.env")]
    runs_of: dict[str, list[str]] = {}
    for name, where in (("repo", ["--repo", str(upstream)]), ("source", ["--source", str(work)])):
        target = root / f"noop-{name}"
        target.mkdir(exist_ok=True)
        argv = [
            *tether,
            *where,
            "--target-root",
            str(target),
            "--state-dir",
            str(root / f"st-{name}"),
        ]
        subprocess.run([*argv, *common, "--apply"], check=True, capture_output=True)
        runs_of[name] = [*argv, *common]
    mirror = root / "rsync-copy"
    subprocess.run(["rsync", "-a", f"{work}/configs/", f"{mirror}/"], check=True)
    rsync = ["rsync", "-a", "--checksum", "--dry-run", f"{work}/configs/", f"{mirror}/"]
    time.sleep(0.2)  # let the last writes age past the ledger's same-tick guard

    def timed(argv: list[str]) -> Callable[[], None]:
        return lambda: subprocess.run(argv, check=False, capture_output=True) and None

    repo = median_of(runs, timed(runs_of["repo"]))
    folder = median_of(runs, timed(runs_of["source"]))
    peer = median_of(runs, timed(rsync))
    return [
        ("no-op `tether reconcile --repo` (mirror fetched; start-up included)", repo),
        ("no-op `tether reconcile --source` (same tree, start-up included)", folder),
        ("rsync -a --checksum --dry-run (same tree)", peer),
        ("ratio --repo / --source (target <= 1.2)", repo / folder),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="tether-git-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"fixture: {args.files} files under {root} ...", file=sys.stderr)
    work, upstream = build_fixture(root, args.files)
    pack_mb = sum(p.stat().st_size for p in (upstream / "objects").rglob("*") if p.is_file()) / 1e6
    rows: list[tuple[str, float]] = []
    with serve_git_daemon(root) as daemon:
        transports = [("local path", str(upstream))]
        if daemon is None:
            print("git daemon not found: git:// rows skipped", file=sys.stderr)
        else:
            transports.append(("git://", f"{daemon}/upstream.git"))
        for name, url in transports:
            rows.extend(transport_rows(name, url, root, work, args.runs, args.files))
    bare = root / "git-bare-hardlinks.git"
    rows.append(
        (
            "git clone --bare (local path, hardlinks objects)",
            median_of(
                args.runs,
                lambda: git("clone", "-q", "--bare", str(upstream), str(bare)) and None,
                lambda: shutil.rmtree(bare, ignore_errors=True),
            ),
        )
    )
    rows.append(
        (
            f"read all {args.files} blobs (git ls-tree -r \\| git cat-file --batch)",
            median_of(args.runs, lambda: git_cat_all(upstream)),
        )
    )
    rows.extend(bench_reconcile_noop_repo_vs_source(root, upstream, work, args.runs))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tether.git.tree"], check=True)
    rows.append(("python start + import tether.git.tree (dulwich)", time.perf_counter() - start))

    print(f"\n{args.files} files, packed upstream {pack_mb:.1f} MB, median of {args.runs} runs\n")
    print("| operation | seconds |")
    print("|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} |")
    if not args.root:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
