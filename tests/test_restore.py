"""The restore container: its real entrypoint with a recording `tether`; compose; Dockerfile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testing.gitrepos import commit, config_files, init_bare, tag
from testing.repos import make_config_repo
from testing.state import ledger_file
from tether.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "restore" / "entrypoint.sh"
COMPOSE = ROOT / "restore" / "docker-compose.restore.yml"


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    """A fake container: repo and host folders, and a `tether` that records its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tether"
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$ARGV_LOG"\n'
        'exit "${FAKE_EXIT:-0}"\n'
    )
    fake.chmod(0o755)
    for name in ("repo", "host"):
        (tmp_path / name).mkdir()
    return {"bin": bin_dir, "repo": tmp_path / "repo", "host": tmp_path / "host", "tmp": tmp_path}


def entry(box: dict[str, Path], *args: str, **env: str) -> tuple[int, list[str] | None, str]:
    log = box["tmp"] / "argv"
    log.unlink(missing_ok=True)
    environ = {
        "PATH": f"{box['bin']}:/usr/bin:/bin",
        "ARGV_LOG": str(log),
        "REPO_DIR": str(box["repo"]),
        "HOST_ROOT": str(box["host"]),
        "SECRETS_FILE": str(box["tmp"] / "secrets.env"),
        **env,
    }
    done = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    argv = log.read_text().split("\0")[:-1] if log.exists() else None
    return done.returncode, argv, done.stderr


def test_defaults_are_a_dry_run(box: dict[str, Path]) -> None:
    code, argv, err = entry(box)
    assert code == 0
    assert argv == [
        "reconcile",
        "--plan",
        "--source",
        str(box["repo"]),
        "--target-root",
        str(box["host"]),
        "--state-dir",
        f"{box['host']}/var/lib/tether",
        "--no-handlers",
    ]
    assert "dry run: true; overwrite: false; bring-up: false" in err
    assert "no secret store" in err


def test_bring_up_adds_the_flag(box: dict[str, Path]) -> None:
    _, argv, err = entry(box, DRY_RUN="false", BRING_UP="true")
    assert argv is not None
    assert argv[:2] == ["reconcile", "--apply"]
    assert "--bring-up" in argv
    assert "--no-handlers" not in argv
    assert "bring-up: true" in err
    _, argv, _ = entry(box, DRY_RUN="false", BRING_UP="false")
    assert argv is not None
    assert "--bring-up" not in argv
    assert "--no-handlers" in argv  # the files only; their services stay pending


def test_apply_with_overwrite_home_and_secrets(box: dict[str, Path]) -> None:
    (box["tmp"] / "secrets.env").write_text("")
    code, argv, _ = entry(box, DRY_RUN="false", OVERWRITE="true", TARGET_HOME="/home/anas")
    assert code == 0
    assert argv is not None
    assert argv[:2] == ["reconcile", "--apply"]
    assert argv[argv.index("--target-home") + 1] == "/home/anas"
    assert "--overwrite" in argv
    assert argv[argv.index("--secrets-file") + 1] == str(box["tmp"] / "secrets.env")


def test_dry_run_with_overwrite_previews_the_overwrite(box: dict[str, Path]) -> None:
    _, argv, _ = entry(box, OVERWRITE="true")
    assert argv is not None
    assert argv[:2] == ["reconcile", "--plan"]
    assert "--overwrite" in argv


@pytest.mark.parametrize(
    ("name", "value"),
    [("DRY_RUN", "maybe"), ("OVERWRITE", "2"), ("DRY_RUN", ""), ("BRING_UP", "on")],
)
def test_only_boolean_words(box: dict[str, Path], name: str, value: str) -> None:
    code, argv, err = entry(box, **{name: value}) if value else entry(box, **{name: " "})
    assert code == ExitCode.USAGE
    assert argv is None  # tether never ran
    assert f"{name} must be true/false, 1/0 or yes/no" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("env", "mode", "overwrite"),
    [
        ({"DRY_RUN": "No"}, "--apply", False),
        ({"DRY_RUN": "0", "OVERWRITE": "YES"}, "--apply", True),
        ({"DRY_RUN": "TRUE", "OVERWRITE": "1"}, "--plan", True),
        ({"TETHER_DRY_RUN": "false", "DRY_RUN": "true"}, "--apply", False),
    ],
)
def test_the_same_words_as_tether(
    box: dict[str, Path], env: dict[str, str], mode: str, overwrite: bool
) -> None:
    code, argv, _ = entry(box, **env)
    assert code == 0 and argv is not None
    assert argv[1] == mode and ("--overwrite" in argv) == overwrite


def test_relative_target_home_is_refused(box: dict[str, Path]) -> None:
    code, argv, err = entry(box, TARGET_HOME="home/anas")
    assert (code, argv) == (ExitCode.USAGE, None)
    assert "TARGET_HOME must be an absolute path" in err


def test_missing_mounts_are_named(box: dict[str, Path]) -> None:
    code, argv, err = entry(box, HOST_ROOT=str(box["tmp"] / "nohost"))
    assert (code, argv) == (ExitCode.USAGE, None)
    assert "the host's root is not mounted (add -v /:" in err
    code, argv, err = entry(box, REPO_DIR=str(box["tmp"] / "norepo"))
    assert (code, argv) == (ExitCode.USAGE, None)
    assert "no config repo mounted" in err


def test_paths_with_spaces_stay_one_argument(box: dict[str, Path]) -> None:
    odd = box["tmp"] / "my host $HOME *"
    odd.mkdir()
    _, argv, _ = entry(box, HOST_ROOT=str(odd), TARGET_HOME="/home/a b")
    assert argv is not None
    assert argv[argv.index("--target-root") + 1] == str(odd)
    assert argv[argv.index("--target-home") + 1] == "/home/a b"


def test_extra_arguments_go_last(box: dict[str, Path]) -> None:
    _, argv, _ = entry(box, "--json", "--only", "a b")
    assert argv is not None
    assert argv[:2] == ["reconcile", "--plan"]
    assert argv[-3:] == ["--json", "--only", "a b"]


def test_repo_url_and_ref_replace_the_mounted_folder(box: dict[str, Path]) -> None:
    box["repo"].rmdir()  # nothing mounted at /repo
    url = "https://me:hunter2-token@git.example.com/me/homelab.git"
    code, argv, err = entry(box, "--json", REPO_URL=url, REPO_REF="snapshot/2026-11-22")
    assert code == ExitCode.OK, err
    assert argv is not None and "--source" not in argv
    assert argv[:6] == ["reconcile", "--plan", "--repo", url, "--ref", "snapshot/2026-11-22"]
    assert argv[-1] == "--json"
    assert "from https://***@git.example.com/me/homelab.git at snapshot/2026-11-22;" in err
    assert "hunter2" not in err
    code, argv, _ = entry(box, REPO_URL="git://h/r.git")  # no ref: the remote's branch
    assert argv is not None and "--ref" not in argv and argv[2:4] == ["--repo", "git://h/r.git"]


def test_a_repo_argument_needs_no_mounted_folder(box: dict[str, Path]) -> None:
    box["repo"].rmdir()
    code, argv, err = entry(box, "--repo", "git://h/r.git", "--ref", "v1")
    assert code == ExitCode.OK, err
    assert argv is not None and "--source" not in argv
    assert argv[-4:] == ["--repo", "git://h/r.git", "--ref", "v1"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"REPO_REF": "v1"}, "REPO_REF needs REPO_URL"),
        (("--repo", "git://h/r.git"), {"REPO_URL": "git://h/r.git"}, "name two config repos"),
        ((), {}, "or -e REPO_URL=URL"),
    ],
)
def test_remote_settings_that_do_not_fit_stop_before_tether(
    box: dict[str, Path], args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    box["repo"].rmdir()
    code, argv, err = entry(box, *args, **env)
    assert code == ExitCode.USAGE and argv is None
    assert message in err and err.count("\n") == 1


def test_tether_exit_code_is_the_container_exit_code(box: dict[str, Path]) -> None:
    code, _, _ = entry(box, FAKE_EXIT="3")
    assert code == ExitCode.ATTENTION


# ---- compose and Dockerfile -----------------------------------------------------------------

_VAR = re.compile(r"\$\{(?P<name>[A-Z_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME:-default} and ${NAME:?error} for the forms this file uses."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg

    return _VAR.sub(value, text)


def resolve(node: Any, env: dict[str, str]) -> Any:
    """Compose parses the YAML first, then interpolates each string (so "true" stays a string)."""
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def service(env: dict[str, str], name: str = "restore") -> dict[str, Any]:
    data = resolve(yaml.safe_load(COMPOSE.read_text()), env)
    assert list(data["services"]) == ["restore", "restore-remote"]
    result: dict[str, Any] = data["services"][name]
    return result


def test_compose_defaults_match_the_article() -> None:
    svc = service({"SECRETS_FILE": "/root/secrets.env"})
    assert svc["environment"]["DRY_RUN"] == "true"
    assert svc["environment"]["OVERWRITE"] == "false"
    assert svc["environment"]["BRING_UP"] == "false"
    assert svc["environment"]["TARGET_HOME"] == ""
    assert svc["entrypoint"] == ["/usr/local/bin/tether-restore"]
    assert svc["command"] == []
    assert svc["network_mode"] == "none"


def test_compose_mounts() -> None:
    svc = service({"SECRETS_FILE": "/root/secrets.env"})
    mounts = {v["target"]: v for v in svc["volumes"]}
    assert mounts["/repo"]["read_only"] is True
    assert mounts["/repo"]["source"] == ".."
    assert mounts["/host"]["source"] == "/"
    assert not mounts["/host"].get("read_only", False)
    assert mounts["/run/secrets/tether.env"] == {
        "type": "bind",
        "source": "/root/secrets.env",
        "target": "/run/secrets/tether.env",
        "read_only": True,
    }
    env = svc["environment"]
    assert (env["REPO_DIR"], env["HOST_ROOT"]) == ("/repo", "/host")
    assert env["SECRETS_FILE"] == "/run/secrets/tether.env"


def test_compose_env_overrides() -> None:
    svc = service({"SECRETS_FILE": "/s", "DRY_RUN": "false", "TARGET_HOME": "/home/anas"})
    assert svc["environment"]["DRY_RUN"] == "false"
    assert svc["environment"]["TARGET_HOME"] == "/home/anas"


def test_compose_restore_remote_fetches_instead_of_mounting_the_repo() -> None:
    env = {"SECRETS_FILE": "/s", "REPO_URL": "https://git.example.com/me/h.git"}
    svc = service({**env, "REPO_REF": "snapshot/2026-11-22"}, "restore-remote")
    local = service(env)
    for key in ("image", "entrypoint", "command", "user", "read_only", "tmpfs", "build"):
        assert svc[key] == local[key], key  # one image, one entrypoint
    assert "network_mode" not in svc  # it needs the network; the local restore has none
    assert svc["environment"]["REPO_URL"] == "https://git.example.com/me/h.git"
    assert svc["environment"]["REPO_REF"] == "snapshot/2026-11-22"
    assert "REPO_DIR" not in svc["environment"]
    assert sorted(v["target"] for v in svc["volumes"]) == ["/host", "/run/secrets/tether.env"]
    assert "REPO_URL" not in local["environment"]
    assert service({"SECRETS_FILE": "/s"}, "restore-remote")["environment"]["REPO_REF"] == ""


def test_compose_requires_the_secret_store() -> None:
    with pytest.raises(KeyError, match="SECRETS_FILE"):
        service({})


def test_dockerfile_installs_tether_and_uses_the_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert "RUN pip install . " in text
    assert "COPY restore/entrypoint.sh /usr/local/bin/tether-restore" in text
    assert 'ENTRYPOINT ["/usr/local/bin/tether-restore"]' in text
    for needed in ("pyproject.toml", "README.md", "schema", "src"):  # what the build reads
        assert (ROOT / needed).exists()
        assert re.search(rf"^COPY .*\b{needed}\b", text, re.M)


def test_entrypoint_is_executable_posix_sh() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["/bin/sh", "-n", str(ENTRYPOINT)], check=True)


# ---- the entrypoint with the real tether ----------------------------------------------------

RESTORED_SECRET = "restore-Value-9f3"


@pytest.fixture
def real_box(tmp_path: Path) -> dict[str, Path]:
    """A config repo with a placeholder, an empty "/host", a 0600 secret store; real tether."""
    repo = make_config_repo(
        tmp_path / "repo",
        {"app/config.yaml": "token: __REDACTED_APP_TOKEN__\n", "app/plain.txt": "hello\n"},
    )
    host = tmp_path / "host"
    host.mkdir()
    source = tmp_path / "on-the-host.env"
    source.write_text(f"APP_TOKEN='{RESTORED_SECRET}'\n")
    store = tmp_path / "secrets" / "tether.env"  # what the read-only mount shows the container
    store.parent.mkdir()
    shutil.copyfile(source, store)
    store.chmod(0o600)
    return {"repo": repo, "host": host, "store": store, "tmp": tmp_path}


def real_entry(box: dict[str, Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # the venv's `tether`
        "HOME": str(box["tmp"]),
        "REPO_DIR": str(box["repo"]),
        "HOST_ROOT": str(box["host"]),
        "SECRETS_FILE": str(box["store"]),
        "TETHER_LOG_DIR": str(box["tmp"] / "logs"),
        **env,
    }
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def test_real_tether_dry_run_then_apply(real_box: dict[str, Path]) -> None:
    home = real_box["host"] / "home/demo"
    preview = real_entry(real_box, DRY_RUN="true")
    assert preview.returncode == ExitCode.OK, preview.stderr  # changes pending, nothing written
    assert "app/config.yaml" in preview.stdout
    assert not home.exists()
    applied = real_entry(real_box, DRY_RUN="false")
    assert applied.returncode == 0, applied.stderr
    assert (home / "app/plain.txt").read_text() == "hello\n"
    restored = home / "app/config.yaml"
    assert restored.read_text() == f"token: {RESTORED_SECRET}\n"
    assert ledger_file(real_box["host"] / "var/lib/tether").is_file()  # state on the host
    again = real_entry(real_box, DRY_RUN="true")
    assert again.returncode == 0, again.stdout  # converged
    for done in (preview, applied, again):
        assert RESTORED_SECRET not in done.stdout + done.stderr
    assert (real_box["repo"] / "configs/app/config.yaml").read_text().startswith("token: __RED")


def test_real_tether_refuses_a_store_others_can_read(real_box: dict[str, Path]) -> None:
    real_box["store"].chmod(0o644)
    done = real_entry(real_box, DRY_RUN="false")
    assert done.returncode == ExitCode.ERROR
    assert "group or others may access it" in done.stderr
    assert not (real_box["host"] / "home/demo").exists()
    assert RESTORED_SECRET not in done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as in the container")
def test_real_tether_as_root_reads_a_store_owned_by_the_user(real_box: dict[str, Path]) -> None:
    os.chown(real_box["store"], 1000, 1000)  # the host user's 0600 store, mounted as is
    done = real_entry(real_box, DRY_RUN="false")
    assert done.returncode == 0, done.stderr
    restored = real_box["host"] / "home/demo/app/config.yaml"
    assert restored.read_text() == f"token: {RESTORED_SECRET}\n"


def test_real_tether_restores_a_tag_of_a_remote_over_git_daemon(
    real_box: dict[str, Path], git_daemon: str
) -> None:
    """The container's `--repo URL --ref TAG` restore, run here without Docker: the entrypoint
    and the real tether fetch a snapshot tag over git:// (as the restore-remote service does)."""
    served = real_box["tmp"] / "srv" / "config.git"
    init_bare(served)
    v1 = commit(served, config_files(**{"app.conf": b"token=__REDACTED_APP_TOKEN__ v1\n"}))
    tag(served, "snapshot/2026-11-22", v1)
    commit(served, {"configs/app.conf": b"token=__REDACTED_APP_TOKEN__ v2\n"})
    env = {"REPO_DIR": str(real_box["tmp"] / "not-mounted"), "REPO_URL": f"{git_daemon}/config.git"}
    done = real_entry(real_box, DRY_RUN="false", REPO_REF="snapshot/2026-11-22", **env)
    assert done.returncode == ExitCode.OK, done.stderr
    restored = real_box["host"] / "home/u/app.conf"
    assert restored.read_text() == f"token={RESTORED_SECRET} v1\n"  # the tag, not main
    assert RESTORED_SECRET not in done.stdout + done.stderr
    latest = real_entry(real_box, DRY_RUN="true", **env)  # no REPO_REF: the remote's branch
    assert latest.returncode == ExitCode.OK, latest.stderr
    assert "1 to update" in latest.stdout and restored.read_text().endswith(" v1\n")
