"""Every command shown in README.md and docs/*.md (fenced sh/console blocks) is either run here,
against a copy of the demo repo in a temp folder, with its exit code and a key line of its
output checked, or listed in NOT_RUN with the reason it cannot run here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tether.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(sh|console|bash|shell)\n(.*?)```", re.S)

REMOTE = (
    "a placeholder remote (git@host, example.com, `...`); the same command runs against a "
    "local bare remote in"
)
SYSTEM = "needs root, systemd or docker, which the test machine does not offer"

# command (as shown, comment dropped, continuations joined) -> why it is not run here
NOT_RUN: dict[str, str] = {
    "make demo": "builds .venv itself; tests/test_demo.py runs the demo",
    "make test": "the test suite itself",
    "make test-slow": "the slow tier; CI runs it (.ci/run)",
    ". .venv/bin/activate": "the test runs the venv's tether by path",
    "export TETHER_HOST=homelab": "set in the test's environment instead",
    "tether reconcile --apply --diff ...": "`...` stands for the options above; "
    "tests/test_reconcile.py applies with --diff",
    "tether reconcile --repo git@host:me/homelab.git --ref snapshot/2026-11-22 --apply": REMOTE
    + " tests/test_snapshot.py",
    "tether capture --repo git@host:me/homelab.git": REMOTE + " tests/test_capture.py",
    "tether agent install --repo ... --interval 15min": SYSTEM
    + "; tests/test_units.py prints the units",
    "tether fleet --repo git@host:me/homelab.git": REMOTE + " tests/test_fleet.py",
    "sudo tether agent install --repo git@github.com:me/homelab-config.git --ref main "
    "--target-home /home/anas --secrets-file /root/.config/tether/secrets.env --interval 15min "
    "--capture daily --metrics-dir /var/lib/node_exporter/textfile_collector": SYSTEM,
    "tether agent run --repo https://git.example/me/config.git --interval 5m --jitter 30s": REMOTE
    + " tests/test_agent.py",
    "cd restore": "the restore container's folder: " + SYSTEM,
    "export SECRETS_FILE=~/.config/tether/secrets.env": "the restore container: " + SYSTEM,
    "TARGET_HOME=/home/anas docker compose -f docker-compose.restore.yml run --rm restore": SYSTEM,
    "TARGET_HOME=/home/anas DRY_RUN=false docker compose -f docker-compose.restore.yml run --rm "
    "restore": SYSTEM,
    "REPO_URL=https://git.example.com/me/homelab.git REPO_REF=snapshot/2026-11-22 docker compose "
    "-f docker-compose.restore.yml run --rm restore-remote": SYSTEM,
    "tether add ~/traefik/docker-compose.yml ~/traefik/.env": "needs the user's own remote; "
    "tests/test_add.py adds into a local bare remote",
    "tether add --dry-run ~/traefik/dynamic/tls.yaml": "as above: tests/test_add.py",
    "tether validate --repo https://git.example.com/me/homelab-config.git": REMOTE
    + " tests/test_reconcile_remote.py",
    "tether reconcile --repo git@git.example.com:me/homelab-config.git --ref snapshot/2026-11-22": (
        REMOTE + " tests/test_reconcile_remote.py"
    ),
    "tether snapshot --repo ssh://git@git.example.com/me/homelab-config.git --push": REMOTE
    + " tests/test_snapshot.py",
    "tether snapshots --repo /srv/git/homelab-config.git": REMOTE + " tests/test_snapshot.py",
    "tether snapshot --repo URL [--name NAME] [--message MSG] [--push] [--json]": "a synopsis",
    "tether snapshots --repo URL [--all] [--json]": "a synopsis",
    "tether reconcile --repo URL --ref snapshot/2026-11-22": "a synopsis",
    "tether hooks install [REPO]": "a synopsis; tests/test_hooks.py installs hooks",
    "tether scan --commits v1..main": "needs a v1 tag; tests/test_scan.py scans commit ranges",
    "tether reconcile --apply": "writes below / with the manifest's home; tests/test_reconcile.py "
    "and tests/test_services.py apply into a temp root",
    "tether services run": "runs the demo's handlers on this host; tests/test_services.py",
    "tether services run traefik": "as above: tests/test_services.py",
    "tether services forget traefik": "as above: tests/test_services.py",
    "tether reconcile --apply --no-handlers": "writes below /: tests/test_services.py",
    "tether reconcile --apply --bring-up": "writes below / and runs handlers: "
    "tests/test_services.py",
    "tether init ~/homelab --home /home/anas": "the worked example's own repo; tests/test_init.py",
    "cd ~/homelab && tether reconcile": "the worked example's host (its output is shown); "
    "tests/test_reconcile.py",
    "echo \"PLEX_CLAIM='claim-…'\" >> ~/.config/tether/secrets.env": "the worked example's store",
    "tether reconcile --diff": "the worked example's host: tests/test_reconcile.py",
    "tether reconcile --plan --overwrite --out plan.json": "the worked example's host: "
    "tests/test_apply.py",
    "tether apply plan.json": "the worked example's host: tests/test_apply.py",
    "tether backups restore 3f2a9c0d1b7e4a55": "the worked example's backup id: "
    "tests/test_reconcile.py",
    "make .venv/.dev && .venv/bin/pip install detect-secrets": "installs from the network",
    ".venv/bin/python bench/scan_bench.py": "a benchmark of minutes; tests/test_bench.py smokes it",
    ".venv/bin/python -m pytest tests/faults -m slow -s": "the slow fault trials (make test-slow)",
    "tether secrets export --to homelab.secrets": "asks for a passphrase twice on a terminal; "
    "tests/test_secrets_transfer.py",
    "tether secrets import --from homelab.secrets": "as above",
    "tether reconcile --repo git@host:me/homelab.git": REMOTE + " tests/test_onboarding.py",
    "tether reconcile --repo git@host:me/homelab.git --apply": REMOTE + " tests/test_onboarding.py",
    "tether agent install --repo git@host:me/homelab.git --interval 15min": SYSTEM,
    'tether agent suspend --reason "disk swap"': "run below (the same command)",
    # docs/git.md reproduces a dulwich bug in a scratch folder, step by step
    **dict.fromkeys(
        [
            "git init -q --bare remote.git && git -C remote.git symbolic-ref HEAD refs/heads/main",
            "git init -q work && cd work",
            "for f in a b c; do echo $f > $f; git add .; git commit -qm $f; git push -q "
            "../remote.git HEAD:main; done",
            "git -C ../remote.git repack -q -a -d --write-bitmap-index",
            "echo d > d; git add .; git commit -qm d; git push -q ../remote.git HEAD:main",
            "git -C ../remote.git -c pack.writeBitmaps=false repack -q -d",
            'python -c \'from dulwich import porcelain; porcelain.clone("../remote.git", '
            '"../mirror", bare=True)\'',
            "echo e > e; git add .; git commit -qm e; git push -q ../remote.git HEAD:main",
            'python -c \'from dulwich import porcelain; porcelain.fetch("../mirror", '
            '"../remote.git")\'',
        ],
        "reproduces a dulwich bug (depends on the installed dulwich); "
        "tests/test_gitread.py covers tether's workaround",
    ),
}

# command -> (exit code, a line its stdout+stderr must hold), run in order in one sandbox
RUN: dict[str, tuple[int, str]] = {
    "tether validate": (ExitCode.OK, "demo: valid (0 errors"),
    "tether reconcile --target-root /tmp/host --secrets-file ~/.homelab-secrets.env": (
        ExitCode.OK,
        "Plan: 19 to create, 0 to update, 0 to prune",
    ),
    "tether scan --staged": (ExitCode.OK, "0 possible secrets"),
    "tether status; tether doctor": (ExitCode.OK, "doctor: 0 errors"),
    "tether scan": (ExitCode.OK, "scanned 20 files, skipped 0: 0 possible secrets"),
    "tether scan configs/app.env docs/": (ExitCode.OK, "scanned 1 files"),
    "tether scan --json": (ExitCode.OK, '"findings"'),
    "tether scan --format sarif": (ExitCode.OK, '"version": "2.1.0"'),
    'tether agent suspend --reason "disk swap"': (ExitCode.OK, "suspended at"),
    "tether agent resume": (ExitCode.OK, "resumed (was suspended"),
    "tether services": (ExitCode.OK, "traefik"),
    "tether backups": (ExitCode.OK, "no backups yet"),
    'tether reconcile --detailed-exitcode\ncase $? in\n0) echo "nothing to do" ;;\n2) echo '
    '"changes pending" ;;\n*) echo "needs attention or failed" ;;\nesac': (
        ExitCode.OK,
        "changes pending",
    ),
}


# docs/index.md's onboarding story, run in order in a home holding two services, with
# /srv/git/homelab.git in the temp folder (tests/test_onboarding.py also restores an empty host)
ONBOARDING: dict[str, tuple[int, str]] = {
    "git init -q --bare /srv/git/homelab.git": (ExitCode.OK, ""),
    "tether init ~/homelab --from-host --home ~ --remote /srv/git/homelab.git": (
        ExitCode.OK,
        "then `git -C ",
    ),
    "git -C ~/homelab push -u origin main": (ExitCode.OK, ""),
    "tether capture --source ~/homelab": (ExitCode.OK, "nothing to capture"),
    "tether reconcile --repo /srv/git/homelab.git --apply --secrets-file "
    "~/.config/tether/secrets.env": (
        ExitCode.OK,
        "Applied: 0 created, 0 updated, 0 pruned, 4 in sync",
    ),
    "tether agent install --print --user --repo /srv/git/homelab.git": (
        ExitCode.OK,
        "OnCalendar=",
    ),
}


def doc_commands() -> list[tuple[str, str]]:
    """(file, command) for every command of every fenced sh/console block."""
    found = []
    for doc in DOCS:
        for lang, body in BLOCK.findall(doc.read_text()):
            commands: list[str] = []
            joining = False
            for raw in body.splitlines():
                line = raw.strip()
                if lang == "console":
                    if not line.startswith("$ "):
                        continue  # output
                    line = line[2:]
                line = re.sub(r" {2,}", " ", re.sub(r"\s+#\s.*$", "", line).strip())
                if not line or line.startswith("#"):
                    continue
                glued = line.startswith("case ") or (commands and _inside_case(commands[-1]))
                if commands and (joining or glued):
                    commands[-1] = f"{commands[-1]}{' ' if joining else chr(10)}{line}"
                else:
                    commands.append(line)
                joining = commands[-1].endswith("\\")
                if joining:
                    commands[-1] = commands[-1][:-1].rstrip()
            found += [(doc.name, c) for c in commands]
    return found


def _inside_case(command: str) -> bool:
    """A `case ... esac` (after the command whose exit code it reads) continues until esac."""
    return command.count("case ") > command.count("esac")


def test_the_tests_named_instead_exist() -> None:
    named = {m for why in NOT_RUN.values() for m in re.findall(r"tests/[\w/]+\.py", why)}
    assert named and [m for m in named if not (ROOT / m).is_file()] == []


def test_every_shown_command_is_run_or_says_why_not() -> None:
    shown = [c for _, c in doc_commands()]
    known = {**RUN, **ONBOARDING, **NOT_RUN}
    unknown = [c for c in shown if c not in known]
    assert unknown == [], "run it in RUN, or say in NOT_RUN why it cannot run here"
    assert [c for c in known if c not in shown] == [], "stale entries"


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "demo"
    for name in ("tether.yaml", "inventory", "configs", "hosts", ".tether-baseline.json"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name)
        elif src.exists():
            repo.mkdir(exist_ok=True)
            shutil.copy2(src, repo / name)
    (repo / "docs").mkdir()
    (repo / "configs/app.env").write_text("PORT=80\n")
    home = tmp_path / "home"
    (home / ".config/tether").mkdir(parents=True)
    for store in (home / ".homelab-secrets.env", home / ".config/tether/secrets.env"):
        shutil.copy(ROOT / "examples/secrets.env", store)
        store.chmod(0o600)
    (tmp_path / "host").mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TETHER_HOST": "homelab",
        "TETHER_STATE_DIR": str(tmp_path / "state"),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "demo"], check=True, env=env)
    return repo, env


def _run_all(
    commands: dict[str, tuple[int, str]], cwd: Path, env: dict[str, str], swap: dict[str, str]
) -> list[str]:
    failed = []
    for command, (code, key) in commands.items():
        script = command
        for old, new in swap.items():
            script = script.replace(old, new)
        done = subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        output = done.stdout + done.stderr
        if done.returncode != code or key not in output:
            failed.append(
                f"{command!r}: exit {done.returncode} (want {int(code)}): {output[-400:]}"
            )
    return failed


def test_shown_commands_run_against_the_demo_repo(sandbox: tuple[Path, dict[str, str]]) -> None:
    repo, env = sandbox
    assert _run_all(RUN, repo, env, {"/tmp/host": str(repo.parent / "host")}) == []


def test_the_onboarding_story_runs_as_shown(sandbox: tuple[Path, dict[str, str]]) -> None:
    repo, env = sandbox
    home = Path(env["HOME"])
    (home / ".config/tether/secrets.env").unlink()  # the first capture fills it
    for rel, text in {
        "traefik/docker-compose.yml": "services:\n  traefik:\n    image: traefik:v3\n",
        "traefik/.env": "CF_API_TOKEN=Zq8vR2mXk4pL9sT1wY6bN3cJ7hD5fG0a\n",
        "authentik/compose.yaml": "services:\n  server:\n    image: authentik\n",
        "authentik/.env": "PG_PASS=s3cr3tPassw0rdXyz\n",
    }.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    swap = {"/srv/git/homelab.git": str(repo.parent / "homelab.git")}
    env = {**env, "TETHER_STATE_DIR": str(repo.parent / "onboard-state")}
    assert _run_all(ONBOARDING, repo.parent, env, swap) == []
    assert "s3cr3tPassw0rdXyz" in (home / ".config/tether/secrets.env").read_text()
