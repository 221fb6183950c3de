"""`tether hooks install` and the plain git hooks, driven by real `git commit` / `git push`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scanhelp import BIN, commit_file, git, git_env, init_repo, token
from tether.cli import main
from tether.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[1]


def tether(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "tether"), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return git_env(tmp_path)


Install = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def install(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Install:
    """`tether hooks install ARGS` in-process (tether.cli.main), run in `cwd`."""

    def go(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        monkeypatch.setenv("HOME", env["HOME"])
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(["hooks", "install", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return go


@pytest.fixture
def work(tmp_path: Path, env: dict[str, str]) -> Path:
    repo = init_repo(tmp_path / "work", env)
    commit_file(repo, "README", "hello\n", env)
    return repo


def test_shipped_hooks_match_the_packaged_templates() -> None:
    for name in ("pre-commit", "pre-push"):
        shipped = ROOT / "hooks" / name
        assert shipped.read_text() == (ROOT / "src/tether/templates/hooks" / name).read_text()
        assert shipped.stat().st_mode & 0o111
        assert subprocess.run(["sh", "-n", str(shipped)], check=False).returncode == 0


def test_install_then_commit_is_refused_with_a_secret(work: Path, env: dict[str, str]) -> None:
    result = tether("hooks", "install", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    hook = work / ".git/hooks/pre-commit"
    assert hook.stat().st_mode & 0o100
    assert str(BIN / "tether") in hook.read_text()  # pinned to the installing tether
    (work / "app.env").write_text(f"GITHUB_TOKEN={token()}\n")
    git(work, "add", "app.env", env=env)
    refused = git(work, "commit", "-m", "leak", env=env, check=False)
    assert refused.returncode != 0
    assert "app.env:1: github-pat" in refused.stdout + refused.stderr
    assert token() not in refused.stdout + refused.stderr
    # The index is what counts: fixing only the work tree does not help...
    (work / "app.env").write_text("GITHUB_TOKEN=__REDACTED_GITHUB_TOKEN__\n")
    assert git(work, "commit", "-m", "leak", env=env, check=False).returncode != 0
    # ...staging the fix does.
    git(work, "add", "app.env", env=env)
    assert git(work, "commit", "-m", "fixed", env=env, check=False).returncode == 0


def test_install_respects_core_hookspath(work: Path, env: dict[str, str], install: Install) -> None:
    git(work, "config", "core.hooksPath", ".githooks", env=env)
    assert install(str(work), cwd=work.parent).returncode == 0
    assert (work / ".githooks/pre-commit").is_file()
    assert not (work / ".git/hooks/pre-commit").exists()


def test_foreign_hook_is_refused_forced_or_chained(
    work: Path, env: dict[str, str], install: Install
) -> None:
    hooks = work / ".git/hooks"
    foreign = hooks / "pre-commit"
    foreign.write_text('#!/bin/sh\necho foreign-ran >> "$(git rev-parse --git-dir)/ran"\n')
    foreign.chmod(0o755)
    refused = install(cwd=work)
    assert refused.returncode == ExitCode.ERROR
    assert "a hook tether did not write" in refused.stderr and "--chain" in refused.stderr
    assert not (hooks / "pre-push").exists()  # nothing half-installed
    assert "foreign-ran" in foreign.read_text()

    chained = install("--chain", cwd=work)
    assert chained.returncode == 0, chained.stderr
    assert (hooks / "pre-commit.tether-chained").is_file()
    commit_file(work, "clean.txt", "nothing secret\n", env)
    assert (work / ".git/ran").read_text() == "foreign-ran\n"  # ran after tether's clean scan
    # Installing again updates ours and leaves the chained hook alone.
    assert install(cwd=work).returncode == 0
    assert (hooks / "pre-commit.tether-chained").is_file()


def test_force_replaces_and_keeps_a_copy(work: Path, env: dict[str, str], install: Install) -> None:
    foreign = work / ".git/hooks/pre-push"
    foreign.write_text("#!/bin/sh\nexit 0\n")
    assert install("--force", cwd=work).returncode == 0
    assert "tether-hook" in foreign.read_text()
    assert (work / ".git/hooks/pre-push.tether-backup").read_text() == "#!/bin/sh\nexit 0\n"


def test_force_and_chain_together_is_a_usage_error(
    work: Path, env: dict[str, str], install: Install
) -> None:
    foreign = work / ".git/hooks/pre-push"
    foreign.write_text("#!/bin/sh\nexit 0\n")
    result = install("--force", "--chain", cwd=work)
    assert result.returncode == ExitCode.USAGE and "--force" in result.stderr
    assert foreign.read_text() == "#!/bin/sh\nexit 0\n"
    assert not (work / ".git/hooks/pre-push.tether-chained").exists()


def test_not_a_repo_is_one_clear_error(
    tmp_path: Path, env: dict[str, str], install: Install
) -> None:
    (tmp_path / "plain").mkdir()
    result = install(cwd=tmp_path / "plain")
    assert result.returncode == ExitCode.ERROR
    assert "not inside a git repository" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def pushable(tmp_path: Path, work: Path, env: dict[str, str]) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote), env=env)
    git(work, "remote", "add", "origin", str(remote), env=env)
    git(work, "push", "-q", "origin", "main", env=env)
    assert tether("hooks", "install", cwd=work, env=env).returncode == 0
    return remote


def _commit_no_verify(repo: Path, name: str, text: str, env: dict[str, str]) -> None:
    (repo / name).write_text(text)
    git(repo, "add", name, env=env)
    git(repo, "commit", "-q", "--no-verify", "-m", name, env=env)


def test_push_is_refused_when_any_pushed_commit_held_a_secret(
    work: Path, pushable: Path, env: dict[str, str]
) -> None:
    _commit_no_verify(work, "app.env", f"GITHUB_TOKEN={token()}\n", env)
    _commit_no_verify(work, "app.env", "GITHUB_TOKEN=__REDACTED_GITHUB_TOKEN__\n", env)
    pushed = git(work, "push", "origin", "main", env=env, check=False)
    assert pushed.returncode != 0
    assert "app.env:1: github-pat" in pushed.stderr + pushed.stdout
    assert token() not in pushed.stderr + pushed.stdout
    remote_head = git(pushable, "rev-parse", "main", env=env).stdout
    local_head = git(work, "rev-parse", "main", env=env).stdout
    assert remote_head != local_head
    # A new branch carrying the same history is refused too.
    new_branch = git(work, "push", "origin", "main:topic", env=env, check=False)
    assert new_branch.returncode != 0


def test_clean_push_new_branch_and_deletion_pass(
    work: Path, pushable: Path, env: dict[str, str]
) -> None:
    _commit_no_verify(work, "notes.txt", "just notes\n", env)
    assert git(work, "push", "origin", "main", env=env, check=False).returncode == 0
    assert git(work, "push", "origin", "main:feature", env=env, check=False).returncode == 0
    assert git(work, "push", "origin", ":feature", env=env, check=False).returncode == 0


def test_scan_commits_range_from_the_cli(work: Path, env: dict[str, str]) -> None:
    base = git(work, "rev-parse", "HEAD", env=env).stdout.strip()
    _commit_no_verify(work, "a.env", f"T={token()}\n", env)
    _commit_no_verify(work, "a.env", "T=\n", env)
    result = tether("scan", "--commits", f"{base}..HEAD", "--format", "json", cwd=work, env=env)
    assert result.returncode == ExitCode.ATTENTION
    assert '"path": "a.env"' in result.stdout
    clean = tether("scan", "--commits", "HEAD", cwd=work, env=env)
    assert clean.returncode == 0, clean.stdout


def test_linked_worktree_installs_into_the_main_repos_hooks(
    work: Path, tmp_path: Path, env: dict[str, str], install: Install
) -> None:
    git(work, "worktree", "add", "-q", str(tmp_path / "linked"), "-b", "side", env=env)
    result = install(cwd=tmp_path / "linked")
    assert result.returncode == 0, result.stderr
    assert (work / ".git/hooks/pre-push").is_file()
    assert f"{work / '.git/hooks/pre-commit'}: installed" in result.stderr


def test_pre_push_stdin_from_the_cli(work: Path, env: dict[str, str]) -> None:
    head = git(work, "rev-parse", "HEAD", env=env).stdout.strip()
    zero = "0" * 40
    deletion = f"(delete) {zero} refs/heads/gone {head}\n"
    result = subprocess.run(
        [str(BIN / "tether"), "scan", "--pre-push"],
        cwd=work,
        env=env,
        input=deletion,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "scanned 0 files" in result.stderr
    _commit_no_verify(work, "k.env", f"K={token()}\n", env)
    new = git(work, "rev-parse", "HEAD", env=env).stdout.strip()
    update = f"refs/heads/main {new} refs/heads/main {head}\n"
    result = subprocess.run(
        [str(BIN / "tether"), "scan", "--pre-push", "--format", "json"],
        cwd=work,
        env=env,
        input=update,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == ExitCode.ATTENTION
    assert '"files_scanned": 1' in result.stdout


def test_commit_all_and_commit_with_paths_are_scanned(work: Path, env: dict[str, str]) -> None:
    # `git commit -a` / `git commit FILE` stage into a temporary index (GIT_INDEX_FILE).
    commit_file(work, "tracked.env", "A=1\n", env)
    assert tether("hooks", "install", cwd=work, env=env).returncode == 0
    (work / "tracked.env").write_text(f"A=1\nT={token()}\n")
    assert git(work, "commit", "-a", "-m", "all", env=env, check=False).returncode != 0
    assert git(work, "commit", "-m", "path", "tracked.env", env=env, check=False).returncode != 0
    (work / "tracked.env").write_text("A=2\n")
    assert git(work, "commit", "-a", "-m", "clean", env=env, check=False).returncode == 0


def test_a_committed_baseline_is_not_itself_a_finding(work: Path, env: dict[str, str]) -> None:
    (work / "a.env").write_text(f"T={token()}\n")
    assert tether("scan", "--update-baseline", "a.env", cwd=work, env=env).returncode == 0
    git(work, "add", "a.env", ".tether-baseline.json", env=env)
    staged = tether("scan", "--staged", cwd=work, env=env)
    assert staged.returncode == 0, staged.stdout
    assert "1 more accepted by the baseline" in staged.stderr
