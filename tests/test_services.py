"""Service handlers after apply, with a fake `docker` on PATH that logs its calls and fails on
demand: order, only changed services, failure isolation, pending and retries, bring-up,
timeouts, readiness, masking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tether.reconcile.services
from testing.reconcile import HOME, Site, make_site
from tether.agent.loop import LoopConfig, run_loop
from tether.commands.doctor import DoctorContext, check_services
from tether.config.options import HostOptions
from tether.exitcodes import ExitCode
from tether.reconcile.journal import Journal, begin, recover
from tether.state.services import load_services

SECRET = "s3cret-value-for-handlers"
MANIFEST = f"""version: 1
target:
  home: {HOME}
services:
  - name: app
    paths: ["app/**"]
    after: [proxy]
    on_change:
      - docker compose up -d app
  - name: proxy
    paths: ["proxy/**"]
    on_change:
      - docker network create web
      - docker compose up -d proxy
  - name: other
    paths: ["other/*.conf"]
    on_change:
      - docker compose up -d other
"""

FAKE_DOCKER = """#!/bin/sh
echo "$TETHER_SERVICE|$PWD|$*|$(printf %s "$TETHER_CHANGED" | tr '\\n' ,)" >> "$DOCKER_LOG"
if [ -e "$DOCKER_FAIL/$TETHER_SERVICE" ]; then
    echo "failing on demand; the password is $(cat "$PWD/.env" 2>/dev/null)" >&2
    exit 4
fi
"""


class Docker:
    def __init__(self, folder: Path) -> None:
        self.log = folder / "docker.log"
        self.fail_dir = folder / "fail"
        self.fail_dir.mkdir()

    def calls(self) -> list[tuple[str, str, str, str]]:
        if not self.log.exists():
            return []
        rows = [line.split("|") for line in self.log.read_text().splitlines()]
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def services(self) -> list[str]:
        names = [c[0] for c in self.calls()]
        return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)

    def fail(self, name: str, on: bool = True) -> None:
        flag = self.fail_dir / name
        if on:
            flag.touch()
        else:
            flag.unlink()


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Docker:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    fake = Docker(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_LOG", str(fake.log))
    monkeypatch.setenv("DOCKER_FAIL", str(fake.fail_dir))
    return fake


def site_with(tmp_path: Path, manifest: str = MANIFEST) -> Site:
    return make_site(
        tmp_path / "s",
        {
            "app/docker-compose.yml": "app: 1\n",
            "app/.env": "PASSWORD=__REDACTED_APP_PASSWORD__\n",
            "proxy/docker-compose.yml": "proxy: 1\n",
            "other/a.conf": "a=1\n",
            "other/sub/b.conf": "b=1\n",
        },
        manifest=manifest,
        secrets=f"APP_PASSWORD='{SECRET}'\n",
    )


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return site_with(tmp_path)


def test_first_apply_runs_every_changed_service_in_after_order(site: Site, docker: Docker) -> None:
    result = site.reconcile("--apply")
    assert result.code == ExitCode.OK, result.err
    calls = docker.calls()
    assert [c[2] for c in calls] == [
        "network create web",
        "compose up -d proxy",
        "compose up -d app",
        "compose up -d other",
    ]
    # each in the folder of its first matching file, told what changed
    assert calls[0][1] == str(site.dest("proxy"))
    assert calls[2][1] == str(site.dest("app"))
    assert set(calls[2][3].strip(",").split(",")) == {"app/docker-compose.yml", "app/.env"}
    assert "Services (3, in order):" in result.out
    assert not any(r.pending for r in load_services(site.state).values())


def test_only_services_whose_files_changed_run(site: Site, docker: Docker) -> None:
    assert site.reconcile("--apply").code == ExitCode.OK
    docker.clear()
    site.set_source("other/a.conf", "a=2\n")
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.calls() == [
        ("other", str(site.dest("other")), "compose up -d other", "other/a.conf")
    ]
    docker.clear()
    site.set_source("other/sub/b.conf", "b=2\n")  # not matched by other/*.conf
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.calls() == []


def test_plan_lists_who_would_run_and_why(site: Site, docker: Docker) -> None:
    assert site.reconcile("--apply").code == ExitCode.OK
    site.set_source("app/docker-compose.yml", "app: 2\n")
    doc = site.reconcile("--json").json()
    rows = {s["name"]: s for s in doc["services"]}
    assert [s["name"] for s in doc["services"]] == ["proxy", "app", "other"]
    assert rows["app"] == {
        "name": "app",
        "action": "run",
        "reason": "files changed: app/docker-compose.yml",
        "paths": ["app/docker-compose.yml"],
    }
    assert rows["proxy"]["action"] == "skip"
    text = site.reconcile().out
    assert (
        "Services (1, in order):\n  > run          app  (files changed: app/docker-compose.yml)"
        in text
    )
    assert docker.calls()[-1][0] == "other"  # the plan ran nothing


def test_failure_stops_dependents_not_independents_and_is_retried(
    site: Site, docker: Docker
) -> None:
    docker.fail("proxy")
    first = site.reconcile("--apply", "--json")
    assert first.code == ExitCode.ATTENTION
    rows = {s["name"]: s for s in first.json()["services"]}
    assert rows["proxy"]["result"] == "failed" and rows["proxy"]["exit"] == 4
    assert rows["app"]["result"] == "not-run"
    assert rows["other"]["result"] == "ok"
    assert docker.services() == ["proxy", "other"]  # the first proxy command failed
    assert "service proxy failed (exit 4: docker network create web)" in first.err
    assert SECRET not in first.err + first.out
    listed = site.tether("services", *site.host_args(), "--json")
    assert listed.code == ExitCode.ATTENTION
    states = {r["name"]: r["state"] for r in listed.json()["services"]}
    assert states["proxy"].startswith("failed: exit 4: docker network create web at ")
    assert states["app"] == "pending" and states["other"] == "ok"
    # still failing: a run with no file changes tries again, and again it is pending
    docker.clear()
    again = site.reconcile("--apply")
    assert again.code == ExitCode.ATTENTION
    assert docker.services() == ["proxy"]
    docker.fail("proxy", on=False)
    docker.clear()
    fixed = site.reconcile("--apply")
    assert fixed.code == ExitCode.OK, fixed.err
    assert docker.services() == ["proxy", "app"]
    assert docker.calls()[-1][3].strip(",") != ""  # app still told what changed
    docker.clear()
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.calls() == []


def test_handler_output_is_kept_masked_in_the_run_history(site: Site, docker: Docker) -> None:
    docker.fail("app")
    assert site.reconcile("--apply").code == ExitCode.ATTENTION
    history = (site.state / "runs.jsonl").read_text()
    assert SECRET not in history
    last = json.loads(history.splitlines()[-1])
    app = next(s for s in last["services"] if s["name"] == "app")
    assert "the password is PASSWORD=(secret APP_PASSWORD)" in app["commands"][0]["output"]


def test_a_secret_cut_by_the_output_tail_leaves_no_part_of_it(
    tmp_path: Path, docker: Docker
) -> None:
    """The kept tail starts inside the secret: not even its end may be kept unmasked."""
    keep = tether.reconcile.services.OUTPUT_TAIL
    after = keep - len(SECRET) // 2  # the tail's cut falls in the middle of the secret
    manifest = MANIFEST.replace(
        "      - docker compose up -d other\n",
        f"      - cat ../app/.env; yes y | head -c {after}; exit 1\n",
    )
    site = site_with(tmp_path, manifest)
    assert site.reconcile("--apply").code == ExitCode.ATTENTION
    last = json.loads((site.state / "runs.jsonl").read_text().splitlines()[-1])
    other = next(s for s in last["services"] if s["name"] == "other")
    output = other["commands"][0]["output"]
    assert output.endswith("y\n" * 100) and len(output) <= keep
    assert SECRET[-8:] not in output


def test_a_failed_handler_output_cannot_drive_the_terminal(tmp_path: Path, docker: Docker) -> None:
    manifest = MANIFEST.replace(
        "      - docker compose up -d other\n",
        "      - printf 'pulling\\033[2K\\rdone\\033]0;title\\007\\n'; exit 1\n",
    )
    result = site_with(tmp_path, manifest).reconcile("--apply")
    assert result.code == ExitCode.ATTENTION
    assert "\x1b" not in result.err and "\r" not in result.err and "\x07" not in result.err
    assert "    pulling\\x1b[2K\\rdone\\x1b]0;title\\x07" in result.err


def test_no_handlers_leaves_them_pending_for_a_later_run(site: Site, docker: Docker) -> None:
    result = site.reconcile("--apply", "--no-handlers", "--json")
    assert result.code == ExitCode.OK
    assert {s["action"] for s in result.json()["services"]} == {"pending"}
    assert docker.calls() == []
    assert sorted(n for n, r in load_services(site.state).items() if r.pending) == [
        "app", "other", "proxy",
    ]  # fmt: skip
    ran = site.tether("services", *site.host_args(), "run", "other")
    assert ran.code == ExitCode.OK, ran.err
    assert docker.services() == ["other"]
    docker.clear()
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.services() == ["proxy", "app"]


def test_bring_up_runs_every_service_unchanged_or_not(site: Site, docker: Docker) -> None:
    assert site.reconcile("--apply").code == ExitCode.OK
    docker.clear()
    assert site.reconcile("--apply", "--bring-up").code == ExitCode.OK
    assert docker.services() == ["proxy", "app", "other"]


def test_services_forget_clears_a_pending_one(site: Site, docker: Docker) -> None:
    assert site.reconcile("--apply", "--no-handlers").code == ExitCode.OK
    forgot = site.tether("services", "--state-dir", str(site.state), "forget", "app")
    assert forgot.code == ExitCode.OK, forgot.err
    assert not load_services(site.state)["app"].pending
    unknown = site.tether("services", "--state-dir", str(site.state), "forget", "nope")
    assert unknown.code == ExitCode.USAGE
    assert "no service 'nope'" in unknown.err and "Traceback" not in unknown.err
    bad = site.tether("services", *site.host_args(), "run", "nope")
    assert bad.code == ExitCode.USAGE and "known: app, other, proxy" in bad.err


def test_a_killed_apply_leaves_its_services_pending(site: Site, docker: Docker) -> None:
    site.state.mkdir(mode=0o700)
    begin(
        site.state,
        Journal(str(site.root), (), {}, services={"proxy": ("proxy/docker-compose.yml",)}),
    )
    recover(site.state, have_lock=False)
    assert load_services(site.state)["proxy"].pending
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.services()[0] == "proxy"


def test_timeout_kills_the_whole_process_group(
    tmp_path: Path, docker: Docker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tether.reconcile.services, "KILL_GRACE", 0.3)
    pids = tmp_path / "pids"
    manifest = MANIFEST.replace(
        "      - docker compose up -d other\n",
        f"      - sleep 60 & echo $! > {pids}; trap '' TERM; sleep 60\n    timeout: 0.3\n",
    )
    site = site_with(tmp_path, manifest)
    started = time.monotonic()
    result = site.reconcile("--apply", "--json")
    assert time.monotonic() - started < 10
    assert result.code == ExitCode.ATTENTION
    other = next(s for s in result.json()["services"] if s["name"] == "other")
    assert other["result"] == "failed" and other["exit"] is None
    assert other["error"].startswith("timed out after 0.3s")
    child = int(pids.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # reaped by init: gone within a moment
            os.kill(child, 0)
            time.sleep(0.02)


def test_ctrl_c_during_a_handler_stops_its_process_group(tmp_path: Path, docker: Docker) -> None:
    """The handler has its own session, so Ctrl-C reaches tether alone: tether ends the
    handler's group before it exits INTERRUPTED, and the service stays pending."""
    pids = tmp_path / "pids"
    manifest = MANIFEST.replace(
        "      - docker compose up -d other\n",
        f"      - sleep 60 & echo $! > {pids}; wait\n",
    )
    site = site_with(tmp_path, manifest)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "reconcile", "--apply", *site.host_args()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
        # A pytest-xdist worker ignores SIGINT, and a child inherits that: give it back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        assert proc.poll() is None
        time.sleep(0.02)
    child = int(pids.read_text())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert b"Traceback" not in err
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:  # the sleep got SIGTERM
        time.sleep(0.02)
    assert not _running(child)
    assert load_services(site.state)["other"].pending


def _running(pid: int) -> bool:
    """Alive and not a zombie (where PID 1 does not reap, a dead child stays a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_ready_gates_dependents(
    tmp_path: Path, docker: Docker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tether.reconcile.services, "READY_INTERVAL", 0.05)
    flag = tmp_path / "up"
    manifest = MANIFEST.replace(
        "      - docker compose up -d proxy\n",
        f"      - docker compose up -d proxy\n    ready: test -e {flag}\n    ready_timeout: 0.3\n",
    )
    site = site_with(tmp_path, manifest)
    result = site.reconcile("--apply", "--json")
    assert result.code == ExitCode.ATTENTION
    rows = {s["name"]: s for s in result.json()["services"]}
    assert rows["proxy"]["error"] == f"not ready after 0.3s: test -e {flag}"
    assert rows["app"]["result"] == "not-run"
    flag.touch()
    docker.clear()
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.services() == ["proxy", "app"]


def documented_commands() -> list[list[str]]:
    """The `$ tether ...` lines of reconcile.md's services section, comments dropped."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "reconcile.md").read_text()
    section = text.split("## Services: handlers after apply", 1)[1].split("\n## ", 1)[0]
    lines = [ln.split("#", 1)[0].split() for ln in section.splitlines() if ln.startswith("$ ")]
    return [words[2:] for words in lines]


def test_every_documented_services_command_runs(tmp_path: Path, docker: Docker) -> None:
    manifest = MANIFEST.replace("name: proxy", "name: traefik").replace("[proxy]", "[traefik]")
    site = site_with(tmp_path, manifest)
    commands = documented_commands()
    assert len(commands) == 7
    for words in commands:
        command, rest = words[0], words[1:]
        result = site.tether(command, *site.host_args(), *rest)
        assert result.code == ExitCode.OK, (words, result.err)
        assert "Traceback" not in result.err
    assert docker.services()[-3:] == ["traefik", "app", "other"]  # the bring-up


def test_status_metrics_and_doctor_name_pending_services(site: Site, docker: Docker) -> None:
    docker.fail("proxy")
    metrics = site.state.parent / "tether.prom"
    assert site.reconcile("--apply", "--metrics-file", str(metrics)).code == ExitCode.ATTENTION
    prom = metrics.read_text()
    assert 'tether_service_pending{service="proxy"} 1' in prom
    assert 'tether_service_pending{service="app"} 1' in prom
    assert 'tether_service_pending{service="other"} 0' in prom
    assert 'tether_service_last_success_timestamp_seconds{service="other"} ' in prom
    assert 'tether_service_last_success_timestamp_seconds{service="proxy"}' not in prom
    status = site.tether("status", "--state-dir", str(site.state), "--json")
    assert status.code == ExitCode.ATTENTION
    doc = status.json()
    assert doc["pending_services"] == ["app", "proxy"]
    ready = next(c for c in doc["conditions"] if c["type"] == "ServicesReady")
    assert ready["status"] == "False" and ready["reason"] == "HandlerFailed"
    assert "proxy: failed: exit 4" in ready["message"] and "pending: app" in ready["message"]
    host = HostOptions(site.root, HOME, site.state, site.secrets)
    ctx = DoctorContext(source=(None, None, None), host=host)
    assert [r.level for r in check_services(ctx)] == ["ok"]  # pending for less than a day
    data = json.loads((site.state / "services.json").read_text())
    data["services"]["proxy"]["since"] = "2020-01-01T00:00:00Z"
    (site.state / "services.json").write_text(json.dumps(data))
    late = check_services(ctx)
    assert [(r.level, r.message.split(" (")[0]) for r in late] == [
        ("warning", "service proxy pending since 2020-01-01T00:00:00Z")
    ]
    docker.fail("proxy", on=False)
    assert site.reconcile("--apply").code == ExitCode.OK
    assert site.tether("status", "--state-dir", str(site.state)).code == ExitCode.OK


def test_a_saved_plan_runs_the_same_handlers(site: Site, docker: Docker) -> None:
    plan = site.state.parent / "plan.json"
    assert site.reconcile("--out", str(plan)).code == ExitCode.OK
    assert docker.calls() == []
    applied = site.tether("apply", str(plan))
    assert applied.code == ExitCode.OK, applied.err
    assert docker.services() == ["proxy", "app", "other"]
    assert "Services (3, in order):" in applied.out


def test_services_lists_each_state_in_text(site: Site, docker: Docker) -> None:
    docker.fail("proxy")
    site.reconcile("--apply")
    listed = site.tether("services", *site.host_args())
    assert listed.code == ExitCode.ATTENTION
    lines = listed.out.splitlines()
    assert lines[0].startswith("proxy  failed: exit 4: docker network create web at ")
    assert lines[1].startswith("app    pending  changed: app/")
    assert lines[2] == "other  ok"


def test_a_service_without_commands_is_never_left_pending(tmp_path: Path, docker: Docker) -> None:
    site = site_with(tmp_path, MANIFEST + '  - name: files-only\n    paths: ["other/**"]\n')
    assert site.reconcile("--apply").code == ExitCode.OK
    assert "files-only" not in load_services(site.state)
    status = site.tether("status", "--state-dir", str(site.state))
    assert status.code == ExitCode.OK, status.out


def test_agent_run_bring_up_brings_everything_up_on_its_first_tick(
    site: Site, docker: Docker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert site.reconcile("--apply").code == ExitCode.OK
    docker.clear()
    once = site.tether("agent", "run", "--once", *site.host_args())
    assert once.code == ExitCode.OK, once.err
    assert docker.calls() == []  # a plain tick: nothing changed, nothing pending
    monkeypatch.setenv("BRING_UP", "true")  # as in a container's environment
    brought = site.tether("agent", "run", "--once", *site.host_args())
    assert brought.code == ExitCode.OK, brought.err
    assert docker.services() == ["proxy", "app", "other"]
    docker.clear()
    # the variable never reaches a plain reconcile: only the agent's first tick brings up
    assert site.reconcile("--apply").code == ExitCode.OK
    assert docker.calls() == []


def test_the_loop_keeps_its_first_command_until_a_tick_succeeds(tmp_path: Path) -> None:
    log = tmp_path / "ticks"
    first = ("/bin/sh", "-c", f"echo first >> {log}; exit 1")
    plain = ("/bin/sh", "-c", f"echo plain >> {log}")
    config = LoopConfig(plain, tmp_path, 1.0, 0.0, once=True, first=first)
    assert run_loop(config) == ExitCode.ERROR
    assert log.read_text() == "first\n"


def test_the_git_token_in_the_environment_is_masked_too(
    tmp_path: Path, docker: Docker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_GIT_TOKEN", "ghp_tokenvalue1234567890")
    site = site_with(tmp_path, MANIFEST.replace("docker compose up -d other", "env"))
    assert site.reconcile("--apply").code == ExitCode.OK
    history = (site.state / "runs.jsonl").read_text()
    assert "ghp_tokenvalue1234567890" not in history
    assert "TETHER_GIT_TOKEN=(secret TETHER_GIT_TOKEN)" in history
