"""`tether doctor`: each broken case caught, one at a time, on a real config repo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.agent import suspend
from tether.cli import main
from tether.commands.doctor import CHECKS, DoctorContext, run_checks
from tether.options import HostOptions

SECRET = "s3cr3t-Value-123"


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    cfg = tmp_path / "cfg"
    assert main(["init", str(cfg), "--home", "/home/anas"]) == 0
    (cfg / "inventory/include-paths.txt").write_text("app/config.yaml\napp/plain.txt\n")
    (cfg / "configs/app").mkdir(parents=True)
    (cfg / "configs/app/config.yaml").write_text("token: __REDACTED_APP_TOKEN__\n")
    (cfg / "configs/app/plain.txt").write_text("hello\n")
    store = tmp_path / "secrets.env"
    store.write_text(f"APP_TOKEN='{SECRET}'\n")
    store.chmod(0o600)
    return {"cfg": cfg, "store": store, "state": tmp_path / "state", "root": tmp_path / "root"}


def doctor(
    paths: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any], str]:
    args = [
        "doctor",
        "--json",
        "--source",
        str(paths["cfg"]),
        "--secrets-file",
        str(paths["store"]),
        "--state-dir",
        str(paths["state"]),
        "--root",
        str(paths["root"]),
        *extra,
    ]
    code = main(args)
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    return code, json.loads(captured.out), captured.out


def levels(report: dict[str, Any]) -> dict[str, str]:
    worst: dict[str, str] = {}
    order = {"ok": 0, "warning": 1, "error": 2}
    for check in report["checks"]:
        if order[check["level"]] >= order.get(worst.get(check["check"], "ok"), 0):
            worst[check["check"]] = check["level"]
    return worst


def messages(report: dict[str, Any], check: str) -> str:
    return " | ".join(
        f"{c['message']} -> {c['hint']}" for c in report["checks"] if c["check"] == check
    )


def test_healthy_host_passes_with_a_warning_for_no_units(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert report["ok"] is True
    assert levels(report) == {
        "manifest": "ok",
        "secret store": "ok",
        "placeholders": "ok",
        "units": "warning",
        "suspended": "ok",
    }
    assert "1 secrets, mode 0600" in messages(report, "secret store")


def test_invalid_manifest(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (setup["cfg"] / "tether.yaml").write_text("version: 1\ntarget: [oops\n")
    code, report, _ = doctor(setup, capsys)
    assert code == 4
    assert levels(report)["manifest"] == "error"
    assert "tether.yaml" in messages(report, "manifest")
    assert report["errors"] == 1  # the checks that need the repo say "not checked"
    assert "not checked: the config repo is unusable" in messages(report, "placeholders")


def test_no_config_repo(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(setup["root"].parent)
    code = main(["doctor", "--json", "--state-dir", str(setup["state"])])
    report = json.loads(capsys.readouterr().out)
    assert code == 4
    assert "no config repo" in messages(report, "manifest")


def test_missing_store(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    setup["store"].unlink()
    code, report, _ = doctor(setup, capsys)
    assert code == 4
    assert levels(report)["secret store"] == "error"
    assert "no secret store" in messages(report, "secret store")


def test_missing_store_is_fine_without_placeholders(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["store"].unlink()
    (setup["cfg"] / "configs/app/config.yaml").write_text("token: none\n")
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["secret store"] == "ok"


def test_store_readable_by_others(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    setup["store"].chmod(0o644)
    code, report, _ = doctor(setup, capsys)
    assert code == 4
    assert levels(report)["secret store"] == "error"
    assert "chmod 600" in messages(report, "secret store")


def test_store_is_a_symlink(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    real = setup["store"].with_name("real.env")
    setup["store"].rename(real)
    setup["store"].symlink_to(real)
    code, report, _ = doctor(setup, capsys)
    assert code == 4
    assert "symlink" in messages(report, "secret store")


def test_placeholder_without_value(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (setup["cfg"] / "configs/app/plain.txt").write_text("key: __REDACTED_OTHER_KEY__\n")
    code, report, _ = doctor(setup, capsys)
    assert code == 4
    text = messages(report, "placeholders")
    assert "configs/app/plain.txt: no value for OTHER_KEY" in text
    assert "APP_TOKEN" not in text


def test_units_installed_but_not_enabled(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    install = ["agent", "install", "--source", str(setup["cfg"]), "--root", str(setup["root"])]
    assert main([*install, "--state-dir", str(setup["state"])]) == 0
    code, report, _ = doctor(setup, capsys)
    assert levels(report)["units"] == "error"  # the image under --root has no tether yet
    assert "missing or not executable" in messages(report, "units")
    program = setup["root"] / Path(sys.executable).absolute().relative_to("/")
    program.parent.mkdir(parents=True)
    program.symlink_to(sys.executable)
    code, report, _ = doctor(setup, capsys)
    assert levels(report)["units"] == "ok"
    assert code == 0
    link = setup["root"] / "etc/systemd/system/timers.target.wants/tether-reconcile.timer"
    link.unlink()
    code, report, _ = doctor(setup, capsys)
    assert code == 4
    assert levels(report)["units"] == "error"
    assert "not enabled" in messages(report, "units")


def test_suspended_is_a_warning(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    suspend(setup["state"], "migration")
    code, report, _ = doctor(setup, capsys)
    assert code == 0
    assert levels(report)["suspended"] == "warning"
    assert "migration" in messages(report, "suspended")
    assert "tether agent resume" in messages(report, "suspended")


def test_text_output(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    setup["store"].chmod(0o640)
    args = ["doctor", "--source", str(setup["cfg"]), "--secrets-file", str(setup["store"])]
    assert main([*args, "--state-dir", str(setup["state"]), "--root", str(setup["root"])]) == 4
    captured = capsys.readouterr()
    assert "error    secret store:" in captured.out
    assert "doctor: 1 errors, 2 warnings" in captured.err
    assert "not checked: the secret store is unusable" in captured.out


def test_checks_are_a_list_the_lead_can_extend(setup: dict[str, Path]) -> None:
    host = HostOptions(Path("/"), None, setup["state"], setup["store"])
    ctx = DoctorContext((setup["cfg"], None, None), host, setup["root"], False, {})
    extra = (lambda _ctx: [],)
    assert len(run_checks(ctx, (*CHECKS, *extra))) == len(run_checks(ctx))


def test_environment_overrides_the_store(setup: dict[str, Path]) -> None:
    setup["store"].write_text("")
    host = HostOptions(Path("/"), None, setup["state"], setup["store"])
    ctx = DoctorContext((setup["cfg"], None, None), host, setup["root"], False, {})
    assert any(r.level == "error" for r in run_checks(ctx))
    env = {"APP_TOKEN": "from-env"}
    ctx = DoctorContext((setup["cfg"], None, None), host, setup["root"], False, env)
    assert not any(r.level == "error" for r in run_checks(ctx))
