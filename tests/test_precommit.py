"""The hooks under the real pre-commit framework: commits and pushes in a temp repo.

`repo: local` + `language: system` runs this venv's `tether` (its bin is first on PATH) and
needs no network.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from scanhelp import BIN, commit_file, git, git_env, init_repo, token
from tether import __version__

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
default_install_hook_types: [pre-commit, pre-push]
repos:
  - repo: local
    hooks:
      - id: tether-scan
        name: tether scan (secrets)
        entry: tether scan --hook
        language: system
        always_run: true
        require_serial: true
        stages: [pre-commit, pre-push]
"""


def pre_commit(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "pre-commit"), *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return git_env(tmp_path)


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    work = init_repo(tmp_path / "work", env)
    commit_file(work, ".pre-commit-config.yaml", CONFIG, env)
    installed = pre_commit(work, "install", env=env)
    assert installed.returncode == 0, installed.stderr
    assert (work / ".git/hooks/pre-push").is_file()
    return work


def attempt(
    repo: Path, name: str, text: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name, env=env)
    return git(repo, "commit", "-m", f"add {name}", env=env, check=False)


def test_manifest_and_init_template_are_valid() -> None:
    bin_ = str(BIN / "pre-commit")
    manifest = subprocess.run(
        [bin_, "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")], check=False
    )
    assert manifest.returncode == 0
    template = ROOT / "src/tether/templates/pre-commit-config.yaml"
    for config in (template, ROOT / ".pre-commit-config.yaml"):
        assert subprocess.run([bin_, "validate-config", str(config)], check=False).returncode == 0


def test_commit_with_a_token_is_refused(repo: Path, env: dict[str, str]) -> None:
    result = attempt(repo, "compose/.env", f"GITHUB_TOKEN={token()}\n", env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "tether scan (secrets)" in output and "Failed" in output
    assert "compose/.env:1: github-pat" in output
    assert token() not in output
    assert git(repo, "log", "--oneline", env=env).stdout.count("\n") == 1


def test_clean_placeholder_and_allowed_commits_pass(repo: Path, env: dict[str, str]) -> None:
    assert attempt(repo, "notes.txt", "nothing secret here\n", env).returncode == 0
    placeholder = "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=__REDACTED_PG__\n"
    assert attempt(repo, "docker-compose.yml", placeholder, env).returncode == 0
    allowed = "EXAMPLE_PASSWORD=Zx8Kq3Vn6Wx1Bc4Hm7Jp  # tether:allow (documented test fixture)\n"
    result = attempt(repo, "example.env", allowed, env)
    assert result.returncode == 0, result.stdout
    assert git(repo, "log", "--oneline", env=env).stdout.count("\n") == 4


@pytest.fixture
def remote(tmp_path: Path, repo: Path, env: dict[str, str]) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare), env=env)
    git(repo, "remote", "add", "origin", str(bare), env=env)
    return bare


def _sneak(repo: Path, name: str, text: str, env: dict[str, str]) -> None:
    """A commit that skipped the pre-commit hook (`--no-verify`): only pre-push can stop it."""
    (repo / name).write_text(text)
    git(repo, "add", name, env=env)
    git(repo, "commit", "-q", "--no-verify", "-m", f"sneak {name}", env=env)


def test_push_refused_when_a_pushed_commit_added_a_secret_later_removed(
    repo: Path, remote: Path, env: dict[str, str]
) -> None:
    assert git(repo, "push", "-q", "origin", "main", env=env, check=False).returncode == 0
    _sneak(repo, "app.env", f"TOKEN={token()}\n", env)
    _sneak(repo, "app.env", "TOKEN=__REDACTED_TOKEN__\n", env)
    pushed = git(repo, "push", "origin", "main", env=env, check=False)
    assert pushed.returncode != 0
    assert "app.env:1: github-pat" in pushed.stdout + pushed.stderr
    assert token() not in pushed.stdout + pushed.stderr


def test_push_refused_when_only_the_value_under_a_pushed_key_line_changed(
    repo: Path, remote: Path, env: dict[str, str]
) -> None:
    # The key line and the PEM header were pushed with placeholders; only the values change.
    _sneak(repo, "db.yaml", "db:\n  password: >-\n    __REDACTED_APP_DB_PASSWORD__\n", env)
    pem = "# server\n-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n"
    _sneak(repo, "tls.conf", pem.format("__REDACTED_APP_TLS_KEY__"), env)
    first = git(repo, "push", "origin", "main", env=env, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + token()[4:]
    _sneak(repo, "db.yaml", "db:\n  password: >-\n    Qm7pLx2Vr9KdT4sW8nZb\n", env)
    _sneak(repo, "tls.conf", pem.format(body), env)
    pushed = git(repo, "push", "origin", "main", env=env, check=False)
    out = pushed.stdout + pushed.stderr
    assert pushed.returncode != 0, out
    assert "db.yaml:3:" in out
    assert "tls.conf:2: pem-private-key" in out
    assert "Qm7pLx2Vr9KdT4sW8nZb" not in out
    assert body not in out


def test_first_push_from_the_root_commit_is_scanned(
    repo: Path, remote: Path, env: dict[str, str]
) -> None:
    # pre-commit passes no FROM/TO refs when the push starts at the root commit.
    _sneak(repo, "app.env", f"TOKEN={token()}\n", env)
    _sneak(repo, "app.env", "TOKEN=\n", env)
    pushed = git(repo, "push", "origin", "main", env=env, check=False)
    assert pushed.returncode != 0
    assert "app.env:1: github-pat" in pushed.stdout + pushed.stderr


def test_clean_push_passes(repo: Path, remote: Path, env: dict[str, str]) -> None:
    assert git(repo, "push", "origin", "main", env=env, check=False).returncode == 0
    _sneak(repo, "notes.txt", "hello\n", env)
    pushed = git(repo, "push", "origin", "main", env=env, check=False)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr


def test_the_config_written_by_tether_init_blocks_a_leak(tmp_path: Path) -> None:
    env = git_env(tmp_path)
    work = init_repo(tmp_path / "homelab", env)
    made = subprocess.run(
        [str(BIN / "tether"), "init", str(work), "--home", "/home/me"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    has_redact = subprocess.run(
        [str(BIN / "tether"), "redact", "--help"], env=env, capture_output=True, check=False
    )
    if has_redact.returncode != 0:
        env["SKIP"] = "tether-redact"  # `tether redact` is another issue's command
    assert pre_commit(work, "install", env=env).returncode == 0
    git(work, "add", "-A", env=env)
    first = git(work, "commit", "-m", "scaffold", env=env, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    ran = first.stdout + first.stderr
    assert "tether validate" in ran and "tether scan (secrets)" in ran
    leak = attempt(work, "configs/app/.env", f"API_TOKEN={token()}\n", env)
    assert leak.returncode != 0
    assert "configs/app/.env:1: github-pat" in leak.stdout + leak.stderr


def documented_config() -> str:
    """The `.pre-commit-config.yaml` docs/hooks.md shows for `repo: <tether's url>`."""
    text = (ROOT / "docs/hooks.md").read_text()
    block = re.search(r"```yaml\n(default_install_hook_types.*?)```", text, re.S)
    assert block, "docs/hooks.md lost its pre-commit config"
    return block.group(1)


def test_the_documented_rev_is_this_release_and_its_tag() -> None:
    rev = re.search(r"^\s+rev: (\S+)", documented_config(), re.M)
    assert rev and rev.group(1) == f"v{__version__}", "docs/hooks.md rev: is not this release"
    tagged = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev.group(1)}:pyproject.toml"],
        capture_output=True,
        text=True,
        check=False,
    )
    if tagged.returncode == 0:  # a checkout with tags: the tag is this release
        assert f'version = "{__version__}"' in tagged.stdout


@pytest.mark.slow
def test_the_documented_config_installs_tether_from_its_tag(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """pre-commit clones tether at the documented rev, builds its own virtualenv, installs tether
    from the clone and blocks a token: the config users copy from docs/hooks.md works."""
    source = tmp_path / "tether-src"
    git(tmp_path, "clone", "-q", str(ROOT), str(source), env=env)
    rev = f"v{__version__}"
    if git(source, "rev-parse", "-q", "--verify", f"{rev}^{{}}", env=env, check=False).returncode:
        git(source, "tag", rev, env=env)  # a CI clone made without tags: this commit is the release
    config = re.sub(r"repo: https://\S+", f"repo: {source}", documented_config())
    work = init_repo(tmp_path / "work", env)
    commit_file(work, ".pre-commit-config.yaml", config, env)
    installed = pre_commit(work, "install", "--install-hooks", env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    result = attempt(work, "compose/.env", f"GITHUB_TOKEN={token()}\n", env)
    assert result.returncode != 0
    assert "compose/.env:1: github-pat" in result.stdout + result.stderr
    assert token() not in result.stdout + result.stderr
