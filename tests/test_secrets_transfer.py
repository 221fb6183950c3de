"""`tether secrets export|import`: the store sealed with a passphrase, carried to a new host."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import pty
import re
import select
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testing.repos import make_config_repo
from tether.cli import main
from tether.exitcodes import ExitCode
from tether.secrets import sealed
from tether.secrets.store import parse_dotenv, shell_quote

PASSPHRASE = "correct horse battery staple"
VALUES = {
    "PLAIN": "s3cr3t-plain-value",
    "QUOTED": 'it\'s a "quoted" $value `here`',
    "MULTI": "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----\n",
    "UNICODE": "pässwörd-✓-value",
}


SEALED_ONCE = sealed.seal(VALUES, PASSPHRASE, store=None, params=sealed.KdfParams(log2_n=10))


@pytest.fixture(autouse=True)
def _cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """2**10 instead of 2**17: the same code, milliseconds instead of half a second."""
    monkeypatch.setattr(sealed, "DEFAULT_PARAMS", sealed.KdfParams(log2_n=10))
    monkeypatch.setenv("TETHER_PASSPHRASE", PASSPHRASE)


def tether(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def store(path: Path, values: dict[str, str], mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{name}={shell_quote(value)}\n" for name, value in values.items())
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    old = store(tmp_path / "old" / "secrets.env", VALUES)
    out = tmp_path / "moving.secrets"
    code, _, err = tether(capsys, "secrets", "export", "--to", str(out), "--secrets-file", str(old))
    assert code == ExitCode.OK, err
    return out


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [name for name, value in VALUES.items() if value.encode() in data]


def test_round_trip_keeps_every_value_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = exported(tmp_path, capsys)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = out.read_bytes()
    assert leaks(data) == [] and b"PLAIN" not in data  # names are sealed too
    first, header, *_ = data.decode("ascii").splitlines()
    assert first == "tether-secrets 1"
    fields = json.loads(header)
    assert (fields["kdf"], fields["cipher"], fields["log2_n"]) == ("scrypt", "aes-256-gcm", 10)
    new = tmp_path / "new" / "secrets.env"
    code, stdout, err = tether(
        capsys, "secrets", "import", "--from", str(out), "--secrets-file", str(new)
    )
    assert code == ExitCode.OK, err
    assert parse_dotenv(new.read_text(encoding="utf-8"), "new") == VALUES
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert "PLAIN  added" in stdout and "4 added, 0 replaced, 0 unchanged" in err
    assert leaks(stdout + err) == []
    # again: nothing changes, and the file is not rewritten
    before = new.stat().st_mtime_ns
    code, stdout, err = tether(
        capsys, "secrets", "import", "--from", str(out), "--secrets-file", str(new)
    )
    assert code == ExitCode.OK and stdout == "" and "4 unchanged" in err
    assert new.stat().st_mtime_ns == before


def test_a_wrong_passphrase_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = exported(tmp_path, capsys)
    new = tmp_path / "new" / "secrets.env"
    monkeypatch.setenv("TETHER_PASSPHRASE", "not the passphrase")
    code, stdout, err = tether(
        capsys, "secrets", "import", "--from", str(out), "--secrets-file", str(new)
    )
    assert code == ExitCode.ERROR
    assert err.startswith(f"tether: {out}: wrong passphrase") and err.count("\n") == 1
    assert stdout == "" and not new.exists()


def _tamper(data: bytes, part: str) -> bytes:
    """One byte changed in `part` of the file: the magic, a header field, the ciphertext or
    the tag (those two changed in the decoded bytes, so no base64 padding bit hides it)."""
    magic, header, body = data.split(b"\n", 2)
    if part in ("ciphertext", "tag"):
        raw = bytearray(base64.b64decode(b"".join(body.split())))
        raw[0 if part == "ciphertext" else -1] ^= 0x01
        return magic + b"\n" + header + b"\n" + base64.encodebytes(bytes(raw))
    if part == "magic":
        return b"tetheR" + data[6:]
    fields = json.loads(header)
    if part == "log2_n":  # 10 -> 11: still in range, so it must fail authentication
        fields[part] = 11
    else:
        value = fields[part]
        fields[part] = ("B" if value[0] == "A" else "A") + value[1:]
    return magic + b"\n" + json.dumps(fields).encode() + b"\n" + body


PARTS = ["magic", "salt", "nonce", "check", "created", "log2_n", "ciphertext", "tag"]


@pytest.mark.parametrize("part", PARTS)
def test_a_changed_byte_anywhere_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], part: str
) -> None:
    out = exported(tmp_path, capsys)
    data = out.read_bytes()
    tampered = _tamper(data, part)
    assert tampered != data
    out.write_bytes(tampered)
    new = store(tmp_path / "new" / "secrets.env", {"KEEP": "kept"})
    before = new.read_bytes()
    code, stdout, err = tether(
        capsys, "secrets", "import", "--from", str(out), "--secrets-file", str(new)
    )
    assert code == ExitCode.ERROR, (part, err)
    assert err.startswith(f"tether: {out}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and stdout == "" and leaks(err) == []
    assert new.read_bytes() == before


def test_a_truncated_file_is_refused_at_every_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = exported(tmp_path, capsys)
    data = out.read_bytes()
    new = tmp_path / "new" / "secrets.env"
    for cut in sorted({0, 1, 10, 17, 40, data.index(b"}") + 1, len(data) - 30, len(data) - 2}):
        out.write_bytes(data[:cut])
        code, stdout, err = tether(
            capsys, "secrets", "import", "--from", str(out), "--secrets-file", str(new)
        )
        assert code == ExitCode.ERROR, (cut, err)
        assert err.count("\n") == 1 and "Traceback" not in err and stdout == ""
    assert not new.exists()


def test_header_values_out_of_range_are_refused_before_any_work() -> None:
    data = sealed.seal({"A": "b"}, PASSPHRASE, store=None)
    first, header, body = data.split(b"\n", 2)
    for change in ({"log2_n": 40}, {"r": 0}, {"log2_n": "17"}, {"kdf": "argon2"}, {"salt": "x"}):
        fields = {**json.loads(header), **change}
        bad = first + b"\n" + json.dumps(fields).encode() + b"\n" + body
        with pytest.raises(sealed.SecretError, match="header"):
            sealed.unseal(bad, PASSPHRASE, "f")
    with pytest.raises(sealed.SecretError, match="header line is damaged"):
        sealed.unseal(first + b"\n" + b"[" * 100_000 + b"\n", PASSPHRASE, "f")  # no RecursionError
    with pytest.raises(sealed.SecretError, match="format '2'"):
        sealed.unseal(b"tether-secrets 2\n{}", PASSPHRASE, "f")


def test_authenticated_contents_that_are_no_store_are_refused() -> None:
    """A file sealed by something else with the right passphrase still has to hold a store."""
    data = sealed.seal({"A": "b"}, PASSPHRASE, store=None)
    head = data.split(b"\n", 2)
    header = json.loads(head[1])
    key, _ = sealed._derive(PASSPHRASE, base64.b64decode(header["salt"]), sealed.DEFAULT_PARAMS)
    payload = json.dumps({"secrets": {"bad name": "x"}, "store": None}).encode()
    aad = head[0] + b"\n" + head[1] + b"\n"
    nonce = base64.b64decode(header["nonce"])
    body = base64.encodebytes(sealed.AESGCM(key).encrypt(nonce, payload, aad))
    with pytest.raises(sealed.SecretError, match="not a secret store"):
        sealed.unseal(aad + body, PASSPHRASE, "f")


def test_differing_values_stop_the_import_naming_them_never_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = exported(tmp_path, capsys)
    mine = {"PLAIN": "a-different-plain-value", "QUOTED": VALUES["QUOTED"], "OWN": "own-value"}
    new = store(tmp_path / "new" / "secrets.env", mine)
    before = new.read_bytes()
    args = ["secrets", "import", "--from", str(out), "--secrets-file", str(new)]
    code, stdout, err = tether(capsys, *args)
    assert code == ExitCode.ATTENTION
    assert err == (
        f"tether: {new}: the export holds another value for 1 secret: PLAIN "
        "(nothing imported; pass --overwrite to replace them)\n"
    )
    assert stdout == "" and new.read_bytes() == before
    assert "a-different-plain-value" not in err and leaks(err) == []
    code, stdout, err = tether(capsys, *args, "--overwrite")
    assert code == ExitCode.OK, err
    assert stdout.splitlines() == ["MULTI  added", "PLAIN  replaced", "UNICODE  added"]
    assert "2 added, 1 replaced, 1 unchanged" in err
    assert parse_dotenv(new.read_text(encoding="utf-8"), "new") == {**VALUES, "OWN": "own-value"}
    assert leaks(stdout + err) == [] and "a-different-plain-value" not in stdout + err


def test_an_import_without_secrets_file_goes_where_the_store_was_under_the_new_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old_home, new_home = tmp_path / "old-home", tmp_path / "new-home"
    monkeypatch.setenv("HOME", str(old_home))
    store(old_home / ".homelab-secrets.env", {"A": "value-a"})
    out = tmp_path / "moving.secrets"
    repo = make_config_repo(tmp_path / "repo", {"app/a.env": "A=__REDACTED_A__\n"})
    manifest = repo / "tether.yaml"
    manifest.write_text(manifest.read_text() + "secrets:\n  file: ~/.homelab-secrets.env\n")
    monkeypatch.chdir(repo)  # the store is the one this repo's tether.yaml names
    code, _, err = tether(capsys, "secrets", "export", "--to", str(out))
    assert code == ExitCode.OK, err
    monkeypatch.setenv("HOME", str(new_home))
    monkeypatch.chdir(tmp_path)  # a new host: no config repo yet
    code, _, err = tether(capsys, "secrets", "import", "--from", str(out))
    assert code == ExitCode.OK, err
    landed = new_home / ".homelab-secrets.env"
    assert parse_dotenv(landed.read_text(), "x") == {"A": "value-a"}
    assert stat.S_IMODE(landed.stat().st_mode) == 0o600
    # --source names a repo whose tether.yaml says where the store goes
    other = tmp_path / "other-repo"
    make_config_repo(other, {"app/a.env": "A=__REDACTED_A__\n"})
    code, _, err = tether(capsys, "secrets", "import", "--from", str(out), "--source", str(other))
    assert code == ExitCode.OK, err
    assert (new_home / ".config" / "tether" / "secrets.env").is_file()


def test_passphrase_file_is_read_and_must_be_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_PASSPHRASE")
    old = store(tmp_path / "secrets.env", VALUES)
    pw = tmp_path / "pass"
    pw.write_text(PASSPHRASE + "\n")
    pw.chmod(0o644)
    out = tmp_path / "moving.secrets"
    args = ["secrets", "export", "--to", str(out), "--secrets-file", str(old)]
    code, _, err = tether(capsys, *args, "--passphrase-file", str(pw))
    assert code == ExitCode.ERROR and "chmod 600" in err and not out.exists()
    pw.chmod(0o600)
    code, _, err = tether(capsys, *args, "--passphrase-file", str(pw))
    assert code == ExitCode.OK, err
    assert sealed.unseal(out.read_bytes(), PASSPHRASE, "f").values == VALUES


def test_passphrase_from_a_pipe_as_a_password_manager_gives_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--passphrase-file <(pass show tether)`: the shell hands over /dev/fd/N, a pipe."""
    out = exported(tmp_path, capsys)
    monkeypatch.delenv("TETHER_PASSPHRASE")
    read, write = os.pipe()
    os.write(write, PASSPHRASE.encode() + b"\n")
    os.close(write)
    new = tmp_path / "new.env"
    try:
        code, _, err = tether(capsys, "secrets", "import", "--from", str(out),
                              "--secrets-file", str(new), "--passphrase-file", f"/dev/fd/{read}")  # fmt: skip
    finally:
        os.close(read)
    assert code == ExitCode.OK, err
    assert parse_dotenv(new.read_text(), "new") == VALUES


def test_no_passphrase_anywhere_and_no_terminal_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_PASSPHRASE")
    old = store(tmp_path / "secrets.env", VALUES)
    out = tmp_path / "moving.secrets"
    args = ["secrets", "export", "--to", str(out), "--secrets-file", str(old)]
    code, _, err = tether(capsys, *args)
    assert code == ExitCode.USAGE and "TETHER_PASSPHRASE" in err and not out.exists()
    code, _, err = tether(capsys, *args, "--passphrase", PASSPHRASE)  # never on the command line
    assert code == ExitCode.USAGE and "No such option" in err
    monkeypatch.setenv("TETHER_PASSPHRASE", "short")
    code, _, err = tether(capsys, *args)
    assert code == ExitCode.ERROR and "shorter than 8" in err and not out.exists()


def test_import_refuses_a_file_too_big_to_be_an_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.commands import secrets as command  # noqa: PLC0415

    monkeypatch.setattr(command, "MAX_EXPORT", 1000)
    big = tmp_path / "disk.img"
    big.write_bytes(b"tether-secrets 1\n" + b"A" * 1000)
    new = tmp_path / "secrets.env"
    code, _, err = tether(
        capsys, "secrets", "import", "--from", str(big), "--secrets-file", str(new)
    )
    assert code == ExitCode.ERROR and "so not an export" in err and not new.exists()


def test_export_refuses_an_empty_store_and_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "moving.secrets"
    code, _, err = tether(
        capsys, "secrets", "export", "--to", str(out), "--secrets-file", str(tmp_path / "none")
    )
    assert code == ExitCode.ERROR and "nothing to export" in err and not out.exists()
    old = store(tmp_path / "secrets.env", VALUES)
    out.write_text("keep me")
    args = ["secrets", "export", "--to", str(out), "--secrets-file", str(old)]
    code, _, err = tether(capsys, *args)
    assert code == ExitCode.USAGE and "--force" in err and out.read_text() == "keep me"
    code, _, err = tether(capsys, *args, "--force")
    assert code == ExitCode.OK and stat.S_IMODE(out.stat().st_mode) == 0o600


def _talk(fd: int, proc: subprocess.Popen[bytes], answers: list[bytes]) -> bytes:
    """Everything the terminal showed; each answer typed after a prompt appears."""
    seen, typed, deadline = b"", 0, time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            seen += chunk
            if typed < len(answers) and seen.count(b"Passphrase") > typed:
                os.write(fd, answers[typed])
                typed += 1
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    return seen


def test_the_prompt_asks_twice_without_echo(tmp_path: Path) -> None:
    old = store(tmp_path / "secrets.env", VALUES)
    env = {k: v for k, v in os.environ.items() if k != "TETHER_PASSPHRASE"}
    results = {}
    for name, answers in (
        ("same", [PASSPHRASE.encode() + b"\n"] * 2),
        ("differ", [PASSPHRASE.encode() + b"\n", b"something else\n"]),
    ):
        out = tmp_path / f"{name}.secrets"
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether", "secrets", "export", "--to", str(out),
             "--secrets-file", str(old)],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        try:
            seen = _talk(master, proc, answers)
        finally:
            os.close(master)
        results[name] = (proc.returncode, seen, out)
    code, seen, out = results["same"]
    assert code == ExitCode.OK, seen
    assert seen.count(b"Passphrase") == 2 and PASSPHRASE.encode() not in seen  # no echo
    assert sealed.unseal(out.read_bytes(), PASSPHRASE, "f").values == VALUES
    # a real run (not this module's cheap fixture): scrypt N=2**17, 128 MiB, about half a second
    assert json.loads(out.read_bytes().splitlines()[1])["log2_n"] == 17
    code, seen, out = results["differ"]
    assert code == ExitCode.USAGE and b"the two passphrases differ" in seen and not out.exists()


ROOT = Path(__file__).resolve().parents[1]


def _demo_module() -> Any:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_new_machine_from_nothing_in_the_five_commands_of_secrets_md(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/secrets.md's walk, run as shown: the remote is a local bare copy of the demo repo
    (handlers turned into echoes), the hosts are folders, `agent install` gets `--root`."""
    text = (ROOT / "docs" / "secrets.md").read_text(encoding="utf-8")
    section = text.split("## Moving to a new host", 1)[1]
    (block,) = re.findall(r"```sh\n(.*?)```", section.split("\n## ", 1)[0], flags=re.DOTALL)
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    assert len(lines) == 5 and all(argv[0] == "tether" for argv in lines)

    demo = _demo_module()
    log = tmp_path / "handlers.log"
    bare = demo.publish(demo.harmless_copy(ROOT, tmp_path / "work", log), tmp_path / "work")
    old, new = tmp_path / "old-host", tmp_path / "new-host"
    for folder in (old / "home", new / "home", new / "root"):  # the new host's "/"
        folder.mkdir(parents=True)
    store(old / "home/.config/tether/secrets.env",
          parse_dotenv((ROOT / "examples/secrets.env").read_text(), "examples"))  # fmt: skip
    monkeypatch.setenv("TETHER_HOST", "homelab")
    monkeypatch.setenv("TETHER_TARGET_ROOT", str(new / "root"))
    monkeypatch.setenv("TETHER_STATE_DIR", str(new / "state"))
    expect = [
        (old, "exported"),
        (new, "imported"),
        (new, "to create"),
        (new, "created"),
        (new, "tether-reconcile.timer"),
    ]
    for shown, (host, key) in zip(lines, expect, strict=True):
        argv = [str(bare) if a == "git@host:me/homelab.git" else a for a in shown[1:]]
        if argv[:2] == ["agent", "install"]:
            argv += ["--root", str(new / "root"), "--no-verify"]
        monkeypatch.setenv("HOME", str(host / "home"))
        monkeypatch.chdir(host)
        if argv[0] == "secrets" and argv[1] == "import":
            shutil.copy(old / "homelab.secrets", new / "homelab.secrets")  # "file copied"
        code, out, err = tether(capsys, *argv)
        assert code == ExitCode.OK, (argv, out, err)
        assert key in out + err, (argv, out, err)
    imported = (new / "home/.config/tether/secrets.env").read_text()
    assert parse_dotenv(imported, "new") == parse_dotenv(
        (old / "home/.config/tether/secrets.env").read_text(), "old"
    )
    env = new / "root/home/demo/authentik/.env"
    assert "__REDACTED_" not in env.read_text() and stat.S_IMODE(env.stat().st_mode) == 0o600


def test_an_export_is_a_whole_file_secret_to_scan_and_the_hooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Encrypted, but in git it would be open to guessing its passphrase forever."""
    out = exported(tmp_path, capsys)
    code, stdout, _ = tether(capsys, "scan", str(out))
    assert code == ExitCode.ATTENTION
    assert f"{out}:1: whole-file-secret" in stdout


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_changed_bytes_give_the_values_back_whole_or_one_error(data: st.DataObject) -> None:
    """Fuzz: bytes changed, cut or added anywhere; unseal returns exactly what was sealed (a
    changed line break in the base64 is still the same ciphertext) or raises SecretError."""
    sealed_bytes = SEALED_ONCE
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(sealed_bytes)), st.binary(max_size=3),
                                         st.integers(0, 3)), min_size=1, max_size=3))  # fmt: skip
    mutated = sealed_bytes
    for where, insert, cut in edits:
        at = min(where, len(mutated))
        mutated = mutated[:at] + insert + mutated[at + cut :]
    try:
        got = sealed.unseal(mutated, PASSPHRASE, "f")
    except sealed.SecretError as exc:
        assert exc.line().startswith("f: ") and "\n" not in exc.line()
        assert leaks(exc.line()) == []
    else:
        assert got.values == VALUES
