"""`make demo`: reconcile the embedded example config repo into a temporary host folder.

Plan, apply, then plan again to show there is nothing left to do. The services' handlers run
too, in their `after` order, but harmlessly: the demo works on a copy of the config repo whose
`on_change` commands only echo what they would run into a file in the temp folder. When the
repo names hosts (`hosts:` in tether.yaml), the first host goes through those steps, every
other host is planned from the same repo, and then each host applies from a local bare git
remote and reports to it, so `tether fleet` shows them all. Usage:
    python examples/demo.py [CONFIG_REPO]     (default: the project root)
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tether.cli import main

ROOT = Path(__file__).resolve().parents[1]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def tether(*args: str) -> int:
    print(f"$ tether {' '.join(args)}", flush=True)
    code = main(list(args))
    sys.stdout.flush()
    print(f"(exit code {code})", flush=True)
    return code


CLUTTER = {"src", "tests", "testing", "bench", "build", "dist"}  # the project's own folders


def harmless_copy(repo: Path, work: Path, log: Path) -> Path:
    """The config repo copied into `work`, each service's commands replaced by an `echo` of
    what it would run, appended to `log`."""
    copy = work / "repo"

    def clutter(folder: str, names: list[str]) -> list[str]:  # top level only: dot folders
        if Path(folder) != repo:
            return []
        return [n for n in names if n.startswith(".") or n in CLUTTER]

    shutil.copytree(repo, copy, ignore=clutter, symlinks=True)
    manifest = yaml.safe_load((copy / "tether.yaml").read_text())
    for service in manifest.get("services") or []:
        service["on_change"] = [
            f'echo "$TETHER_SERVICE:" {shlex.quote(command)} >> {shlex.quote(str(log))}'
            for command in service.get("on_change") or []
        ]
        service.pop("ready", None)
    (copy / "tether.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return copy


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def publish(repo: Path, work: Path) -> Path:
    """A local bare remote holding the (harmless copy of the) config repo as one commit."""
    tree, bare = work / "checkout", work / "remote.git"
    shutil.copytree(repo, tree, symlinks=True)
    _git("init", "-q", "--bare", "-b", "main", str(bare), cwd=work)
    _git("init", "-q", "-b", "main", cwd=tree)
    _git("add", "-A", cwd=tree)
    _git("commit", "-q", "-m", "the demo config repo", cwd=tree)
    _git("push", "-q", str(bare), "main", cwd=tree)
    return bare


def fleet(repo: Path, hosts: list[str], work: Path, secrets: Path) -> bool:
    """Each host applies from a local bare remote (and reports to it); `tether fleet` lists
    them all from that remote alone."""
    if shutil.which("git") is None:
        print("(git is not installed: the fleet part of the demo is skipped)")
        return True
    bare = publish(repo, work)
    codes = []
    for name in hosts:
        root = work / "fleet" / name
        root.mkdir(parents=True)
        state = work / "fleet-state" / name
        args = ["--repo", str(bare), "--host", name, "--target-root", str(root)]
        args += ["--state-dir", str(state), "--secrets-file", str(secrets)]
        codes.append(tether("reconcile", "--apply", *args))
    listed = tether("fleet", "--repo", str(bare), "--state-dir", str(work / "fleet-state" / "_"))
    print(f"{bare} holds one refs/tether/status/<host> per host, each one parentless commit")
    return all(c in (0, 3) for c in codes) and listed in (0, 3)


def run(repo: Path) -> int:
    store = repo / "examples" / "secrets.env"
    if not (repo / "tether.yaml").is_file():
        print(f"{repo} holds no tether.yaml: nothing to demonstrate", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="tether-demo-") as scratch:
        work = Path(scratch)
        host, state, secrets = work / "host", work / "state", work / "secrets.env"
        handlers = work / "handlers.log"
        repo = harmless_copy(repo, work, handlers)
        host.mkdir()
        if store.is_file():
            shutil.copyfile(store, secrets)
        else:
            secrets.write_text("")
        secrets.chmod(0o600)  # tether refuses a store others can read
        common = [
            "--source", str(repo),
            "--target-root", str(host),
            "--state-dir", str(state),
            "--secrets-file", str(secrets),
        ]  # fmt: skip
        hosts = list((yaml.safe_load((repo / "tether.yaml").read_text()) or {}).get("hosts") or [])
        if hosts:
            common += ["--host", hosts[0]]
        print(f"Config repo:   {repo}")
        print(f"Host folder:   {host}  (stands in for /; nothing outside it is touched)")
        print(f"Secret store:  {secrets}  (a 0600 copy of examples/secrets.env)")
        print(f"Handlers:      {handlers}  (each service's commands only echo into it)")
        if hosts:
            print(f"Hosts:         {', '.join(hosts)} (hosts: in tether.yaml); first {hosts[0]}")

        step("1. Plan: compare the repo with the (empty) host; nothing is written")
        first = tether("reconcile", *common)

        step("2. Apply: write every file atomically, placeholders filled from the store")
        applied = tether("reconcile", "--apply", *common)
        written = sorted(p for p in host.rglob("*") if p.is_file())
        print(f"{len(written)} files now under {host}")

        print(f"The handlers ran in `after` order; {handlers.name} says what they would run:")
        for line in handlers.read_text().splitlines() if handlers.exists() else []:
            print(f"  {line}")

        step("3. Plan again: the host matches the repo, so there is nothing to do")
        second = tether("reconcile", *common)

        others_ok = True
        for number, other in enumerate(hosts[1:], start=4):
            step(f"{number}. Plan host {other} from the same repo: its profile, its own files")
            (work / other).mkdir()
            code = tether(
                "reconcile", "--source", str(repo), "--host", other,
                "--target-root", str(work / other), "--state-dir", str(work / f"state-{other}"),
                "--secrets-file", str(secrets),
            )  # fmt: skip
            others_ok = others_ok and code in (0, 3)
        if hosts:
            step(f"{len(hosts) + 3}. Fleet: every host applies from one git remote and reports")
            others_ok = fleet(repo, hosts, work, secrets) and others_ok

        print()
        if second == 0:
            print("Done: the second plan found nothing to do (exit code 0).")
        elif second == 3:
            print(
                "Done: everything writable was written; the files listed as `blocked` need "
                "secrets the store does not have, and tether never writes a placeholder."
            )
        else:
            print(f"Unexpected: the second plan exited {second}.")
        ok = first in (0, 1, 3) and applied in (0, 3) and second in (0, 3) and others_ok
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT))
