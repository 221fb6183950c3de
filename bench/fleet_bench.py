"""Fleet benchmark: one round of N simulated hosts reconciling from one `git daemon`.

    .venv/bin/python bench/fleet_bench.py [--hosts 200] [--workers 8] [--root DIR]

A bare config repo with N host profiles (each its own allowlist file and overlay, odd hosts a
pi-hole profile) is served by a real `git daemon` on 127.0.0.1. Each host is its own host name,
target root and state dir; its tick is one `tether reconcile --apply --repo URL --host NAME`
process (what the agent's tick runs), `--workers` at a time. Two rounds: the first clones every
mirror, the second follows one new commit. Then `tether fleet --json` reads all N reports.
Prints, per round: wall time, ticks per second, fetches (upload-pack) and pushes (receive-pack)
the daemon served; then the refs in the repo and the time of `tether fleet`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from git_bench import serve_git_daemon

SECRET = "bench-pihole-secret-value"


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(base: Path, hosts: list[str]) -> Path:
    """A work tree committed and pushed into base/config.git (the daemon's base)."""
    work = base / "work"
    (work / "configs" / "pihole").mkdir(parents=True)
    lines = ["version: 1", "target:", "  home: /home/u", "hosts:"]
    for i, name in enumerate(hosts):
        lines += [f"  {name}:", f"    inventory: [hosts/{name}/include-paths.txt]"]
        lines.append(
            '    include: ["pihole/**", "app.conf"]' if i % 2 else '    exclude: ["pihole/**"]'
        )
        own = work / "hosts" / name / "configs"
        own.mkdir(parents=True)
        (own / "own.conf").write_text(f"host = {name}\n")
        (work / "hosts" / name / "include-paths.txt").write_text("own.conf\n")
    (work / "tether.yaml").write_text("\n".join(lines) + "\n")
    (work / "inventory").mkdir()
    (work / "inventory" / "include-paths.txt").write_text(
        "app.conf\ntraefik.yml\npihole/pihole.toml\n"
    )
    (work / "configs" / "app.conf").write_text("version = 1\n")
    (work / "configs" / "traefik.yml").write_text("entryPoints: {}\n")
    (work / "configs" / "pihole" / "pihole.toml").write_text("password = __REDACTED_PIHOLE_PW__\n")
    bare = base / "srv" / "config.git"
    _git("init", "-q", "--bare", "-b", "main", str(bare), cwd=base)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-qm", "fleet", cwd=work)
    _git("push", "-q", str(bare), "main", cwd=work)
    return work


def _count(log: Path, what: str) -> int:
    return log.read_text(errors="replace").count(f"Request {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--root", type=Path, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tether-fleet-", dir=args.root))
    try:
        return run(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(args: argparse.Namespace, base: Path) -> int:
    hosts = [f"h{i:03d}" for i in range(args.hosts)]
    work = make_repo(base, hosts)
    store = base / "secrets.env"
    store.write_text(f"PIHOLE_PW={SECRET}\n")
    store.chmod(0o600)
    log = base / "daemon.log"
    env = {**os.environ, "TETHER_LOG_DIR": str(base / "logs")}
    with serve_git_daemon(base / "srv", log=log, writable=True) as url:
        if url is None:
            print("git daemon is not installed; nothing measured")
            return 1
        repo_url = f"{url}/config.git"

        def tick(host: str) -> int:
            (base / "roots" / host).mkdir(parents=True, exist_ok=True)
            argv = [
                sys.executable, "-m", "tether", "reconcile", "--apply", "--repo", repo_url,
                "--host", host, "--target-root", str(base / "roots" / host),
                "--state-dir", str(base / "states" / host), "--secrets-file", str(store),
            ]  # fmt: skip
            return subprocess.run(argv, capture_output=True, env=env, check=False).returncode

        print(
            f"fleet of {args.hosts} hosts, {args.workers} ticks at a time, git daemon on 127.0.0.1"
        )
        print(
            f"{'round':<28} {'wall s':>8} {'ticks/s':>8} {'fetches':>8} {'pushes':>8} {'failed':>7}"
        )
        for label in ("first (clones every mirror)", "second (one new commit)"):
            if label.startswith("second"):
                (work / "configs" / "app.conf").write_text("version = 2\n")
                _git(
                    "-c",
                    "user.name=bench",
                    "-c",
                    "user.email=b@x",
                    "commit",
                    "-qam",
                    "v2",
                    cwd=work,
                )
                _git("push", "-q", str(base / "srv" / "config.git"), "main", cwd=work)
            fetches, pushes = _count(log, "upload-pack"), _count(log, "receive-pack")
            start = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                codes = list(pool.map(tick, hosts))
            wall = time.perf_counter() - start
            time.sleep(0.2)  # the daemon's last log lines
            fetched = _count(log, "upload-pack") - fetches
            pushed = _count(log, "receive-pack") - pushes
            failed = sum(1 for c in codes if c != 0)
            rate = len(hosts) / wall
            print(f"{label:<28} {wall:>8.1f} {rate:>8.1f} {fetched:>8} {pushed:>8} {failed:>7}")
        refs = subprocess.run(
            ["git", "--git-dir", str(base / "srv" / "config.git"), "for-each-ref"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        status = [r for r in refs if "refs/tether/status/" in r]
        print(f"refs in the repo: {len(refs)} ({len(status)} refs/tether/status/*, the rest heads)")
        start = time.perf_counter()
        listed = subprocess.run(
            [sys.executable, "-m", "tether", "fleet", "--repo", repo_url, "--json",
             "--state-dir", str(base / "fleet")],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        took = time.perf_counter() - start
        doc = json.loads(listed.stdout)
        ready = sum(1 for h in doc["hosts"] if h["ready"] and h["behind"] == 0)
        print(
            f"tether fleet --json: {took:.2f} s, {len(doc['hosts'])} hosts listed, "
            f"{ready} Ready at the branch tip (exit {listed.returncode})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
