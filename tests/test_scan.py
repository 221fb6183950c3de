"""The scanning engine and `tether scan` over files (git modes are in test_gitread/test_hooks)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from dulwich import porcelain
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scanhelp import token
from tether.cli import main
from tether.exitcodes import ExitCode
from tether.secrets.baseline import BASELINE_NAME, load_baseline
from tether.secrets.scan import (
    ENTROPY_RULE,
    RuleSet,
    Scanner,
    assigned_key,
    default_rules,
    fingerprint,
    looks_random,
    mask,
)

SALT = b"s" * 32


# -- the engine with a tiny injected rule set -----------------------------------------------


@dataclass(frozen=True)
class FakeMatch:
    rule: str
    start: int
    end: int
    line: int
    key: str | None = None


class FakeRules:
    """Finds `SECRET-<word>`; counts calls so the prefilter can be observed."""

    def __init__(self) -> None:
        self.calls = 0

    def find(self, text: str, path: str) -> list[FakeMatch]:
        self.calls += 1
        return [
            FakeMatch("fake", m.start(), m.end(), text.count("\n", 0, m.start()) + 1)
            for m in re.finditer(r"SECRET-\w+", text)
        ]

    def ruleset(self) -> RuleSet:
        return RuleSet(self.find, frozenset({"secret-"}), lambda v: v == "SECRET-placeholder")


def test_prefilter_runs_rules_only_where_a_keyword_occurs() -> None:
    fake = FakeRules()
    scanner = Scanner(fake.ruleset(), SALT)
    scanner.scan_bytes("a.txt", b"nothing to see here\n")
    assert fake.calls == 0
    scanner.scan_bytes("b.txt", b"x = SECRET-abc\n")
    assert fake.calls == 1
    assert [(f.path, f.line, f.rule) for f in scanner.result.findings] == [("b.txt", 1, "fake")]
    assert scanner.result.files_scanned == 2


def test_references_and_allow_marks_are_not_reported() -> None:
    scanner = Scanner(FakeRules().ruleset(), SALT)
    text = "a = SECRET-placeholder\nb = SECRET-real  # tether:allow\nc = SECRET-other\n"
    findings = scanner.scan_text("f", text)
    assert [f.line for f in findings] == [3]


def test_binary_and_oversized_files_are_skipped_and_counted() -> None:
    scanner = Scanner(FakeRules().ruleset(), SALT, max_size=100)
    scanner.scan_bytes("bin", b"SECRET-x\0more")
    scanner.scan_bytes("big", b"SECRET-x " * 50)
    scanner.scan_bytes("ok", b"SECRET-x")
    result = scanner.result
    assert (result.files_scanned, result.files_skipped) == (1, 2)
    assert [reason for _, reason in result.skipped] == ["binary", "larger than 100 bytes"]
    assert len(result.findings) == 1


def test_fingerprint_is_keyed_and_survives_moving_lines() -> None:
    secret = "SECRET-abc"
    scanner = Scanner(FakeRules().ruleset(), SALT)
    before = scanner.scan_text("f", f"x = {secret}\n")[0]
    after = scanner.scan_text("f", f"\n\n# moved\nx = {secret}\n")[0]
    assert before.fingerprint == after.fingerprint
    assert after.line == 4
    assert before.fingerprint == fingerprint(SALT, "f", "fake", "x = \0")
    assert fingerprint(b"t" * 32, "f", "fake", "x = \0") != before.fingerprint
    plain = {hashlib.sha256(secret.encode()).hexdigest(), hashlib.sha1(secret.encode()).hexdigest()}
    assert before.fingerprint not in plain
    # Another file or rule at the same place is another finding.
    assert fingerprint(SALT, "g", "fake", "x = \0") != before.fingerprint


def test_fingerprints_hold_nothing_of_the_value() -> None:
    """A committed baseline must not let a guessed password be confirmed offline: the same
    place with another value has the same fingerprint."""
    scanner = Scanner(FakeRules().ruleset(), SALT)
    weak = scanner.scan_text("f", "x = SECRET-changeme\n")[0]
    other = scanner.scan_text("f", "x = SECRET-Zx8Kq3Vn6W\n")[0]
    assert weak.fingerprint == other.fingerprint


def test_baseline_silences_accepted_findings_only() -> None:
    accepted = fingerprint(SALT, "f", "fake", "old = \0")
    scanner = Scanner(FakeRules().ruleset(), SALT, frozenset({accepted}))
    scanner.scan_bytes("f", b"old = SECRET-old\nnew = SECRET-new\n")
    assert [f.line for f in scanner.result.findings] == [2]
    assert scanner.result.baselined == 1


def test_mask_never_shows_more_than_two_characters() -> None:
    assert mask("short-pass") == "***"
    assert mask(token()) == "gh***"


# -- entropy for generic assignments --------------------------------------------------------


def test_entropy_finds_random_values_under_unknown_keys() -> None:
    value = token("", 32, seed=7)
    scanner = Scanner(FakeRules().ruleset(), SALT)
    findings = scanner.scan_text("app.conf", f"session_blob = {value}\n")
    assert [f.rule for f in findings] == [ENTROPY_RULE]


@pytest.mark.parametrize(
    "line",
    [
        "digest: sha256:" + "ab12cd34" * 8,
        "uuid = 123e4567-e89b-12d3-a456-426614174000",
        "url: https://example.com/some/long/path/to/resource123",
        "name = averyveryverylongidentifierwithoutdigits",
        "image = registry.example.com/team/app-server-2024",
        "commit = " + "0123456789abcdef" * 2 + "01234567",
    ],
)
def test_entropy_ignores_ids_digests_paths_and_words(line: str) -> None:
    scanner = Scanner(FakeRules().ruleset(), SALT)
    assert scanner.scan_text("x.conf", line + "\n") == []


def test_looks_random_needs_length_and_mixed_classes() -> None:
    assert looks_random(token("", 40, seed=3))
    assert not looks_random("a1" * 15)  # low entropy
    assert not looks_random(token("", 12))  # too short


# -- the command over files, with the real rules --------------------------------------------


Run = Callable[[list[str], Path], tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`tether ARGS` in `cwd` through tether.cli.main: (exit code, stdout, stderr)."""

    def go(args: list[str], cwd: Path) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        return code, out, err

    return go


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app/.env").write_text(f"GITHUB_TOKEN={token()}\nLOG_LEVEL=debug\n")
    (tmp_path / "app/ok.yaml").write_text(
        "db:\n  password: __REDACTED_DB_PASSWORD__\n  token: ${TOKEN}\n"
    )
    return tmp_path


def test_scan_reports_path_line_rule_and_never_the_value(tree: Path, run: Run) -> None:
    code, out, err = run(["scan", "app"], tree)
    assert code == ExitCode.ATTENTION
    assert out == "app/.env:1: github-pat gh***\n"
    assert token() not in out + err
    assert "scanned 2 files, skipped 0: 1 possible secrets" in err


def test_placeholders_and_interpolations_pass(tree: Path, run: Run) -> None:
    code, out, _ = run(["scan", "app/ok.yaml"], tree)
    assert (code, out) == (0, "")


def test_json_output_shape(tree: Path, run: Run) -> None:
    (tree / "app/blob.bin").write_bytes(b"\0\1" + token().encode())
    code, out, _ = run(["scan", "--format", "json", "app"], tree)
    data = json.loads(out)
    assert code == ExitCode.ATTENTION
    assert set(data) == {"schema_version", "findings", "files_scanned", "files_skipped"}
    assert data["files_scanned"] == 2 and data["files_skipped"] == 1
    [finding] = data["findings"]
    assert set(finding) == {"path", "line", "rule", "fingerprint"}
    assert (finding["path"], finding["line"], finding["rule"]) == ("app/.env", 1, "github-pat")
    assert re.fullmatch(r"[0-9a-f]{64}", finding["fingerprint"])


def test_json_flag_is_format_json(tree: Path, run: Run) -> None:
    """`--json`, as every other scriptable command spells it."""
    code, out, _ = run(["scan", "--json", "app"], tree)
    assert code == ExitCode.ATTENTION
    assert [(f["path"], f["rule"]) for f in json.loads(out)["findings"]] == [
        ("app/.env", "github-pat")
    ]
    code, _, err = run(["scan", "--json", "--format", "sarif", "app"], tree)
    assert code == ExitCode.USAGE and "--json" in err


def test_sarif_output(tree: Path, run: Run) -> None:
    code, out, _ = run(["scan", "--format", "sarif", "app"], tree)
    sarif = json.loads(out)
    assert code == ExitCode.ATTENTION and sarif["version"] == "2.1.0"
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "github-pat"
    location = result["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "app/.env"}, "region": {"startLine": 1}}
    assert token() not in out


def test_update_baseline_keeps_salt_and_stores_no_plain_hash(tree: Path, run: Run) -> None:
    code, _, err = run(["scan", "--update-baseline", "app"], tree)
    assert code == 0 and "1 accepted findings" in err
    text = (tree / BASELINE_NAME).read_text()
    secret = token()
    for digest in (hashlib.sha1, hashlib.sha256):
        assert digest(secret.encode()).hexdigest() not in text
    assert secret not in text
    baseline = load_baseline(tree / BASELINE_NAME)
    assert baseline is not None and len(baseline.fingerprints) == 1
    # Accepted, even when the line moves; a new secret is still reported.
    (tree / "app/.env").write_text(f"# moved down\nGITHUB_TOKEN={secret}\n")
    assert run(["scan", "app"], tree)[0] == 0
    (tree / "app/new.env").write_text(f"OTHER={token(seed=2)}\n")
    code, out, err = run(["scan", "app"], tree)
    assert code == ExitCode.ATTENTION and out.startswith("app/new.env:1:")
    assert "1 more accepted by the baseline" in err
    # Re-running keeps the salt, so earlier fingerprints stay valid.
    run(["scan", "--update-baseline", "app"], tree)
    again = load_baseline(tree / BASELINE_NAME)
    assert again is not None and again.salt == baseline.salt
    assert baseline.fingerprints < again.fingerprints


def test_a_broken_baseline_is_one_clear_error(tree: Path, run: Run) -> None:
    (tree / BASELINE_NAME).write_text("{not json")
    code, _, err = run(["scan", "app"], tree)
    assert code == ExitCode.ERROR
    assert BASELINE_NAME in err and "not a tether baseline" in err
    assert "Traceback" not in err


def test_default_target_is_the_config_repos_source_folder(tmp_path: Path, run: Run) -> None:
    (tmp_path / "tether.yaml").write_text("version: 1\ntarget:\n  home: /home/me\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/app.env").write_text(f"TOKEN={token()}\n")
    (tmp_path / "notes.env").write_text(f"TOKEN={token(seed=5)}\n")
    code, out, _ = run(["scan"], tmp_path)
    assert code == ExitCode.ATTENTION
    assert out.splitlines() == ["configs/app.env:1: github-pat gh***"]


def test_usage_errors(tree: Path, run: Run) -> None:
    assert run(["scan", "--staged", "app"], tree)[0] == ExitCode.USAGE
    code, _, err = run(["scan", "missing"], tree)
    assert code == ExitCode.USAGE and "missing: no such file or folder" in err


def test_exclude_leaves_out_matching_paths(tree: Path, run: Run) -> None:
    code, out, err = run(["scan", "--exclude", r"\.env$", "app"], tree)
    assert (code, out) == (0, "")
    assert "scanned 1 files" in err
    assert run(["scan", "--exclude", "(", "app"], tree)[0] == ExitCode.USAGE


def test_key_names_in_program_source_need_a_string_literal(tmp_path: Path, run: Run) -> None:
    (tmp_path / "app.py").write_text(
        "key: str | None = None\npassword = ask_user()\nDB_PASSWORD = 'Tr0ub4dor-and-3'\n"
    )
    code, out, _ = run(["scan", "app.py"], tmp_path)
    assert code == ExitCode.ATTENTION
    assert out == "app.py:3: key-name ***\n"


def test_symlinks_are_not_followed_and_hook_mode_without_files_scans_nothing(
    tree: Path, run: Run
) -> None:
    (tree / "elsewhere").mkdir()
    (tree / "elsewhere/t.env").write_text(f"T={token(seed=9)}\n")
    (tree / "app/link.env").symlink_to(tree / "elsewhere/t.env")
    code, out, _ = run(["scan", "app"], tree)
    assert code == ExitCode.ATTENTION and "link.env" not in out
    assert run(["scan", "--hook"], tree)[:2] == (0, "")


def test_oversized_files_are_skipped_and_named(tree: Path, run: Run) -> None:
    (tree / "app/dump.sql").write_text("x" * 2000)
    code, _, err = run(["scan", "--max-size", "1000", "--format", "json", "app"], tree)
    assert code == ExitCode.ATTENTION
    assert "app/dump.sql: skipped (larger than 1000 bytes)" in err
    assert run(["scan", "--max-size", "0", "app"], tree)[0] == ExitCode.USAGE


def test_folder_walks_skip_what_git_ignores_named_files_do_not(tmp_path: Path, run: Run) -> None:
    porcelain.init(str(tmp_path)).close()
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    for name in ("build/out.env", "debug.log", "app/real.env"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"TOKEN={token()}\n")
    code, out, _ = run(["scan", "."], tmp_path)
    assert code == ExitCode.ATTENTION
    assert [line.split(":")[0] for line in out.splitlines()] == ["app/real.env"]
    code, out, _ = run(["scan", "debug.log"], tmp_path)
    assert code == ExitCode.ATTENTION and out.startswith("debug.log:1:")
    code, out, _ = run(["scan", "build"], tmp_path)  # an ignored folder named on purpose
    assert code == ExitCode.ATTENTION and out.startswith("build/out.env:1:")


def test_git_modes_outside_a_repository_are_one_clear_error(tmp_path: Path, run: Run) -> None:
    for args in (["--staged"], ["--commits", "HEAD~1..HEAD"], ["--pre-push"]):
        code, _, err = run(["scan", *args], tmp_path)
        assert code == ExitCode.ERROR, args
        assert "not inside a git repository" in err and "Traceback" not in err


ID = b"t <t@example.com>"


def _commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    porcelain.add(str(repo), [str(repo / name)])
    return porcelain.commit(str(repo), name.encode(), author=ID, committer=ID).decode()


def test_hook_mode_at_pre_push_scans_the_commits_from_pre_commits_environment(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    porcelain.init(str(tmp_path)).close()
    base = _commit(tmp_path, "a.env", "A=1\n")
    _commit(tmp_path, "a.env", f"A=1\nT={token()}\n")
    tip = _commit(tmp_path, "a.env", "A=1\n")
    monkeypatch.setenv("PRE_COMMIT_REMOTE_NAME", "origin")
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", base)
    monkeypatch.setenv("PRE_COMMIT_TO_REF", tip)
    # The file names pre-commit passes (the tip's) hold nothing; the pushed commits do.
    code, out, _ = run(["scan", "--hook", "a.env"], tmp_path)
    assert (code, out.split(" (commit")[0]) == (3, "a.env:2: github-pat gh***")
    # Everything up to `tip` already on the remote: nothing is pushed.
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", tip)
    assert run(["scan", "--hook"], tmp_path)[0] == 0
    # A push from the root commit: pre-commit sets no refs, only the local branch.
    monkeypatch.delenv("PRE_COMMIT_FROM_REF")
    monkeypatch.delenv("PRE_COMMIT_TO_REF")
    monkeypatch.setenv("PRE_COMMIT_LOCAL_BRANCH", "refs/heads/master")
    code, _, err = run(["scan", "--hook", "--format", "json"], tmp_path)
    assert code == ExitCode.ATTENTION and "scanned 3 files" in err  # a.env as each commit left it
    monkeypatch.delenv("PRE_COMMIT_REMOTE_NAME")
    assert run(["scan", "--hook"], tmp_path)[0] == 0  # pre-commit stage, no files: nothing


def test_commits_mode_in_process(tmp_path: Path, run: Run) -> None:
    porcelain.init(str(tmp_path)).close()
    base = _commit(tmp_path, "a.env", "A=1\n")
    _commit(tmp_path, "b.env", f"T={token()}\n")
    code, out, _ = run(["scan", "--commits", f"{base}..HEAD", "--format", "sarif"], tmp_path)
    assert code == ExitCode.ATTENTION and '"uri": "b.env"' in out
    assert run(["scan", "--commits", base], tmp_path)[0] == 0
    assert run(["scan", "--remote", "origin"], tmp_path)[0] == ExitCode.USAGE


@pytest.mark.parametrize(
    "line",
    [
        "Validator = jsonschema.Draft202012Validator\n",
        'handler = "dulwich.pack.SHA1Writer2x"\n',
        "request = build_fetch_request_v2(object_format)\n",
    ],
)
def test_entropy_skips_code_expressions_and_dotted_names(line: str) -> None:
    scanner = Scanner(FakeRules().ruleset(), SALT)
    assert scanner.scan_text("mod.py", line) == []
    assert scanner.scan_text("mod.conf", line) == []


def test_entropy_in_code_needs_a_string_literal() -> None:
    value = token("", 32, seed=11)
    scanner = Scanner(FakeRules().ruleset(), SALT)
    assert scanner.scan_text("mod.py", f"SESSION = {value}\n") == []
    assert [f.rule for f in scanner.scan_text("mod.py", f'SESSION = "{value}"\n')] == [ENTROPY_RULE]


def test_manifest_secret_names_and_identifier_keys_are_not_findings(
    tmp_path: Path, run: Run
) -> None:
    (tmp_path / "tether.yaml").write_text(
        "secrets:\n  map:\n    app/config.ini:\n      jwt_secret: TAUTULLI_JWT_SECRET\n"
    )
    (tmp_path / "Preferences.xml").write_text(
        '<Preferences ProcessedMachineIdentifier="5e8a0b2c4d6f8a0b2c4d6f8a0b2c4d6f8a0b2c4d" '
        f'PlexOnlineToken="{token("", 20, seed=8)}"/>\n'
    )
    code, out, _ = run(["scan", "tether.yaml", "Preferences.xml"], tmp_path)
    assert code == ExitCode.ATTENTION
    assert [line.split(": ")[1].split()[0] for line in out.splitlines()] == ["key-name"]
    assert out.startswith("Preferences.xml:1:")


def test_format_templates_and_variable_names_are_references(tmp_path: Path, run: Run) -> None:
    (tmp_path / "gen.py").write_text('url = f"https://{user}:{pw}@host.lan/api"\n')
    (tmp_path / "app.yaml").write_text("db:\n  password: DB_PASSWORD_FROM_ENV\n  pass: HUNTER2\n")
    code, out, _ = run(["scan", "gen.py", "app.yaml"], tmp_path)
    assert code == ExitCode.ATTENTION
    assert out == "app.yaml:3: key-name ***\n"


def test_entropy_values_inside_a_rule_match_are_not_reported_twice() -> None:
    value = token("", 40, seed=12)
    text = f"x = SECRET-{'a' * 30}\nblob = {value}\n"
    scanner = Scanner(FakeRules().ruleset(), SALT)
    rules = [(f.line, f.rule) for f in scanner.scan_text("c.conf", text)]
    assert rules == [(1, "fake"), (2, ENTROPY_RULE)]
    # A rule span covering the entropy candidate wins.
    wide = f"SECRET-x{'y' * 5}\nk = {value}\n".replace("\n", "_", 1)

    class Wide(FakeRules):
        def find(self, text: str, path: str) -> list[FakeMatch]:
            return [FakeMatch("wide", 0, len(text) - 1, 1)]

    findings = Scanner(Wide().ruleset(), SALT).scan_text("c.conf", wide)
    assert [f.rule for f in findings] == ["wide"]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("key = V", "key"),
        ('"key": "V', "key"),
        ("  - TOKEN=V", "TOKEN"),
        ("x := V", "x"),
        ("x => V", "x"),
        ("a.b-c_d: 'V", "a.b-c_d"),
        ("no assignment V", None),
    ],
)
def test_assigned_key_reads_the_assignment_backwards(line: str, key: str | None) -> None:
    assert assigned_key(line, line.index("V")) == key


def test_a_value_whose_context_line_was_already_pushed_is_found_in_the_range(
    tmp_path: Path, run: Run
) -> None:
    """The issue's reproduction: the PEM header and the key line were already on the remote
    with placeholders; a later commit puts real values under them."""
    porcelain.init(str(tmp_path)).close()
    pem = "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n"
    _commit(tmp_path, "tls.key", pem.format("__REDACTED_APP_TLS_KEY__"))
    base = _commit(tmp_path, "db.yaml", "db:\n  password: >-\n    __REDACTED_APP_DB_PASSWORD__\n")
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4"
    _commit(tmp_path, "tls.key", pem.format(body))
    _commit(tmp_path, "db.yaml", "db:\n  password: >-\n    Qm7pLx2Vr9KdT4sW8nZb\n")
    code, out, _ = run(["scan", "--commits", f"{base}..HEAD"], tmp_path)
    assert code == ExitCode.ATTENTION
    found = {line.split(":")[0] for line in out.splitlines()}
    assert found == {"tls.key", "db.yaml"}, out


_LINES = [
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4",
    "__REDACTED_APP_KEY__",
    "db:",
    "  password: >-",
    "    Qm7pLx2Vr9KdT4sW8nZb",
    "    __REDACTED_APP_DB_PASSWORD__",
    "API_TOKEN=Zt8Kq3Vn6Wx1Bc4Hm7Jp",
    "API_TOKEN=${API_TOKEN}",
    "LOG_LEVEL=debug",
    "",
    "# a comment",
]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    old=st.lists(st.sampled_from(_LINES), max_size=8),
    new=st.lists(st.sampled_from(_LINES), min_size=1, max_size=8),
)
def test_a_range_finds_what_scanning_the_file_finds(
    tmp_path_factory: pytest.TempPathFactory, run: Run, old: list[str], new: list[str]
) -> None:
    """Whatever lines a commit changed, `scan --commits` over it judges the file as
    `scan FILE` does."""
    old_text, new_text = "\n".join(old) + "\n", "\n".join(new) + "\n"
    assume(old_text != new_text)
    repo = tmp_path_factory.mktemp("range")
    porcelain.init(str(repo)).close()
    base = _commit(repo, "app.conf", old_text)
    _commit(repo, "app.conf", new_text)
    _, whole, _ = run(["scan", "app.conf"], repo)
    _, ranged, _ = run(["scan", "--commits", f"{base}..HEAD"], repo)

    def found(out: str) -> set[str]:
        return {line.split(" (commit")[0] for line in out.splitlines() if line}

    assert found(whole) <= found(ranged)


def test_the_hooks_stop_a_store_value_no_rule_recognises(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path.parent / f"{tmp_path.name}-secrets.env"
    store.write_text("OLD=Pl41n-but-stored\n")
    store.chmod(0o600)
    monkeypatch.setenv("TETHER_SECRETS_FILE", str(store))
    porcelain.init(str(tmp_path)).close()
    base = _commit(tmp_path, "notes.txt", "nothing here\n")
    _commit(tmp_path, "notes.txt", "NOTE=Pl41n-but-stored\n")  # a neutral key: no rule fires
    code, out, _ = run(["scan", "--commits", f"{base}..HEAD"], tmp_path)
    assert code == ExitCode.ATTENTION and "notes.txt:1: store-value" in out
    assert "Pl41n-but-stored" not in out
    monkeypatch.delenv("TETHER_SECRETS_FILE")
    assert run(["scan", "--commits", f"{base}..HEAD"], tmp_path)[0] == ExitCode.OK


@pytest.mark.parametrize(
    ("path", "text", "allowed"),
    [
        ("a.env", "DB_PASSWORD=Zx8Kq3Vn6Wx1Bc4Hm7Jp  # tether:allow (a fixture)\n", True),
        ("a.env", "DB_PASSWORD=Zx8Kq3tether:allowVn6Wx1Bc4\n", False),  # inside the value
        ("a.env", "DB_PASSWORD=Zx8Kq3Vn6Wx1Bc4Hm7Jp tether:allow\n", False),  # not a comment
        ("a.json", '{"password": "Zx8Kq3Vn6Wx1Bc4Hm7Jp", "note": "# tether:allow"}\n', False),
        ("a.env", f"GITHUB_TOKEN={token()}  # tether:allow\n", False),  # a known format
        (
            "a.key",
            "-----BEGIN PRIVATE KEY----- tether:allow\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n"
            "-----END PRIVATE KEY-----\n",
            False,
        ),  # a private key
        ("a.ini", "password = Zx8Kq3Vn6Wx1Bc4Hm7Jp ; tether:allow\n", True),
    ],
)
def test_tether_allow_works_only_as_a_comment_and_never_for_known_formats(
    path: str, text: str, allowed: bool
) -> None:
    scanner = Scanner(default_rules(), SALT)
    assert (scanner.scan_text(path, text) == []) is allowed


def _stage(repo: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    porcelain.add(str(repo), [str(repo / n) for n in files])


def test_hooks_fail_on_a_file_too_large_to_scan_unless_the_repo_allows_it(
    tmp_path: Path, run: Run
) -> None:
    porcelain.init(str(tmp_path)).close()
    big = b"x = 1\n" * 200_000 + f"TOKEN={token()}\n".encode()  # past 1 MiB: the token hides
    _stage(tmp_path, {"dump.sql": big, "ok.env": b"A=1\n"})
    code, _, err = run(["scan", "--staged"], tmp_path)
    assert code == ExitCode.ATTENTION
    assert "dump.sql: not scanned (larger than 1048576 bytes)" in err
    (tmp_path / "tether.yaml").write_text(
        "version: 1\ntarget:\n  home: /home/u\nscan:\n  allow_unscanned: ['*.sql']\n"
    )
    assert run(["scan", "--staged"], tmp_path)[0] == ExitCode.OK
    assert run(["scan", "dump.sql"], tmp_path)[0] == ExitCode.OK  # not a hook: skipped, named


def test_hooks_search_binary_files_for_known_token_formats(tmp_path: Path, run: Run) -> None:
    porcelain.init(str(tmp_path)).close()
    _stage(tmp_path, {"app.db": b"\0\0SQLite" + f"\0ghtoken\0{token()}\0".encode()})
    code, out, _ = run(["scan", "--staged"], tmp_path)
    assert code == ExitCode.ATTENTION and "app.db:1: github-pat" in out
    _stage(tmp_path, {"app.db": b"\0\0SQLite\0password=hunter2-not-a-format\0"})
    assert run(["scan", "--staged"], tmp_path)[0] == ExitCode.OK  # key rules mean nothing there


# Issue 11: stock config that stopped capture with false positives.


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (
            "a/docker-compose.yml",
            'test: ["CMD-SHELL", "curl --silent --fail localhost:9200/_cluster/health || exit 1"]\n',
        ),
        (
            "a/nginx.conf",
            "# ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-CHACHA20-POLY1305;\n    proxy_pass http://backend:8000;\n",
        ),
    ],
)
def test_real_world_config_is_not_a_finding(path: str, text: str) -> None:
    assert Scanner(default_rules(), SALT).scan_text(path, text) == []


def test_lockfiles_are_skipped_and_named(tmp_path: Path) -> None:
    scanner = Scanner(default_rules(), SALT)
    lock = b'{"packages": {"node_modules/js-tokens": {"version": "4.0.0"}}, "token": "Zx9abcDEF1"}'
    scanner.scan_bytes("app/package-lock.json", lock)
    scanner.scan_bytes("app/.env", b"API_TOKEN=Zx9abcDEFghiJKL12\n")
    assert scanner.result.skipped == [("app/package-lock.json", "lockfile")]
    assert [f.path for f in scanner.result.findings] == ["app/.env"]
