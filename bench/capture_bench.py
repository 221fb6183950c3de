"""Capture speed, side by side with the article's backup pipeline, on one generated host tree.

    .venv/bin/python bench/capture_bench.py [--files 10000] [--changed 10] [--runs 3]

The host tree is bench/labeled_tree.py's (secrets planted in every format), moved under a host
home; both contenders start from a bare remote holding the same tether.yaml and allowlist.
Each measurement is a fresh process (start-up included), after `sync`:
  tether   `python -m tether capture --repo REMOTE` (first capture; then an incremental capture
           after CHANGED host files were edited)
  article  one `bash` running the article's steps in a work tree cloned from its own bare
           remote: `cp` per allowlisted file in a `while read` loop (sync-configs.sh), one
           `sed -Ei` per yml/yaml/toml/xml/ini/env file with the article's generic rule
           (redact-secrets.sh), the generic `grep -RInE` scan (scan-secrets.sh; its hits are
           counted, not fatal, or the pipeline would stop here), `git add -A`, `git commit`,
           `git push` (git CLI).
The incremental runs edit a fresh set of CHANGED files before each pair of runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labeled_tree import generate

HOME = "/home/bench"
WORDS = (
    "password|passwd|api[_-]?key|private[_-]?key|token|secret|client_secret|passkey|"
    "wireguard_private_key|wgprivatekey"
)
ARTICLE = r"""
set -euo pipefail
cd "$REPO"
# sync-configs.sh
mkdir -p configs
while IFS= read -r rel; do
  [[ -z "$rel" ]] && continue
  src="$HOST_HOME/$rel"; dest="configs/$rel"
  if [[ -f "$src" ]]; then mkdir -p "$(dirname "$dest")"; cp "$src" "$dest"
  else echo "[warn] missing: $rel" >&2; fi
done < inventory/include-paths.txt
# redact-secrets.sh (the generic rule, in place, one sed per file)
find configs -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.toml' -o -name '*.xml' \
  -o -name '*.ini' -o -name '*.env' \) -print0 |
while IFS= read -r -d '' f; do
  sed -Ei "s#((WORDS)[[:space:]]*[:=][[:space:]]*).*\$#\1REDACTED#gI" "$f"
done
# scan-secrets.sh (generic pattern); the article exits 1 on a hit, we only count them
hits=$(grep -RInE '(WORDS)[[:space:]]*[:=][[:space:]]*[^#[:space:]]+' configs \
  | grep -vE 'REDACTED|\{\{[[:space:]]*\.Config\.' | wc -l || true)
echo "scan hits: $hits" >&2
# backup-and-push.sh
git add -A
if git diff --cached --quiet; then echo "[info] no changes to commit" >&2; exit 0; fi
git commit -qm "backup: automated snapshot $(date -u +%Y-%m-%dT%H:%M:%SZ)"
git push -q origin main
""".replace("WORDS", WORDS)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
    )


def seed_remote(path: Path, manifest: str, inventory: str, work: Path) -> None:
    """A bare remote with one commit: tether.yaml and the allowlist (git CLI)."""
    git("init", "-q", "--bare", "-b", "main", str(path), cwd=path.parent)
    git("init", "-q", "-b", "main", str(work), cwd=path.parent)
    (work / "tether.yaml").write_text(manifest)
    (work / "inventory").mkdir()
    (work / "inventory" / "include-paths.txt").write_text(inventory)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "init", cwd=work)
    git("remote", "add", "origin", str(path), cwd=work)
    git("push", "-q", "origin", "main", cwd=work)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds `argv` took; it must succeed (a capture stopped by a finding would not count)."""
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def head(remote: Path) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(remote), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def timed_commit(argv: list[str], remote: Path, env: dict[str, str] | None = None) -> float:
    """Like `timed`, and the run must have pushed a new commit."""
    before = head(remote)
    elapsed = timed(argv, env)
    if head(remote) == before:
        raise SystemExit(f"{argv[:4]} pushed nothing")
    return elapsed


def edit(home: Path, paths: list[str], changed: int, round_: int) -> None:
    step = max(len(paths) // changed, 1)
    for i in range(changed):
        target = home / paths[(i * step + round_ * 7) % len(paths)]
        with target.open("a") as handle:
            handle.write(f"# edited on the host, round {round_}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tether-capture-bench-"))
    try:
        run(tmp, args.files, args.changed, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, files: int, changed: int, runs: int) -> None:
    gen = tmp / "gen"
    generate(gen, files=files, seed=7)
    root = tmp / "host"
    home = root / HOME.lstrip("/")
    home.parent.mkdir(parents=True)
    (gen / "configs").rename(home)
    inventory = (gen / "inventory" / "include-paths.txt").read_text()
    paths = [p for p in inventory.splitlines() if (home / p).is_file()]
    manifest = f"version: 1\ntarget:\n  home: {HOME}\n"
    ours, theirs = tmp / "tether.git", tmp / "article.git"
    seed_remote(ours, manifest, inventory, tmp / "seed1")
    seed_remote(theirs, manifest, inventory, tmp / "seed2")
    work = tmp / "article"
    git("clone", "-q", str(theirs), str(work), cwd=tmp)

    tether = [sys.executable, "-m", "tether", "capture", "--repo", str(ours)]
    tether += ["--target-root", str(root), "--state-dir", str(tmp / "state")]
    tether += ["--secrets-file", str(tmp / "secrets.env")]
    article_env = {**os.environ, **GIT_ENV, "REPO": str(work), "HOST_HOME": str(home)}
    article = ["bash", "-c", ARTICLE]

    first_t = timed_commit(tether, ours)
    first_a = timed_commit(article, theirs, article_env)
    inc_t, inc_a = [], []
    for round_ in range(1, runs + 1):
        edit(home, paths, changed, round_)
        inc_t.append(timed_commit(tether, ours))
        inc_a.append(timed_commit(article, theirs, article_env))
    mt, ma = statistics.median(inc_t), statistics.median(inc_a)
    print(f"host tree: {files} allowlisted files ({len(paths)} present), {changed} edited per run")
    print(f"{'':<28}{'tether':>10}{'article':>10}{'ratio':>8}")
    print(f"{'first capture (s)':<28}{first_t:>10.2f}{first_a:>10.2f}{first_a / first_t:>7.1f}x")
    print(f"{'incremental, median (s)':<28}{mt:>10.2f}{ma:>10.2f}{ma / mt:>7.1f}x")
    print(f"incremental runs: tether {[round(x, 2) for x in inc_t]}")
    print(f"                  article {[round(x, 2) for x in inc_a]}")


if __name__ == "__main__":
    main()
