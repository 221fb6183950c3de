"""Every `--json` output, from real runs, against its published schema (schema/output/*.json)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest

from testing.gitrepos import commit, init_bare
from tether.cli import cli, main
from tether.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schema" / "output"
HOME = "/home/u"
SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MANIFEST = f"""version: 1
target:
  home: {HOME}
secrets:
  map:
    app/.env:
      DB_PASSWORD: APP_DB_PASSWORD
services:
  - name: app
    paths: ["app/**"]
    on_change: ["true"]
  - name: notes
    paths: ["notes/**"]
    after: [app]
    on_change: ["true"]
"""
INVENTORY = "app/.env\napp/a.conf\nnotes/*.txt\n"
ENTROPY = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC2dF4gH6jK8"


def _run(*args: str) -> tuple[int, Any]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    assert code in (ExitCode.OK, ExitCode.ATTENTION), (args, code, err.getvalue())
    return code, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """Each output name -> the documents real runs printed, in states with content: a host
    captured into a bare remote (one file held), restored elsewhere, drifted, snapshotted."""
    tmp = tmp_path_factory.mktemp("json")
    remote = init_bare(tmp / "remote.git")
    commit(
        remote,
        {"tether.yaml": MANIFEST.encode(), "inventory/include-paths.txt": INVENTORY.encode()},
        "init",
    )
    host_root = tmp / "host"
    home = host_root / HOME.lstrip("/")
    (home / "app").mkdir(parents=True)
    (home / "notes").mkdir()
    (home / "app" / ".env").write_text("DB_PASSWORD=s3cr3tPassw0rdXyz\nPORT=80\n")
    (home / "app" / "a.conf").write_text("a = 1\n")
    (home / "notes" / "a.txt").write_text("hello\n")
    (home / "notes" / "leak.txt").write_text(f"hello\nx: {ENTROPY}\n")
    store = tmp / "secrets.env"
    host = ["--target-root", str(host_root), "--state-dir", str(tmp / "state"),
            "--secrets-file", str(store)]  # fmt: skip
    found: dict[str, list[Any]] = {}

    def record(name: str, *args: str) -> Any:
        _code, doc = _run(*args)
        found.setdefault(name, []).append(doc)
        return doc

    repo = ["--repo", str(remote)]
    record("capture", "capture", *repo, *host, "--json")  # one file held
    (home / "notes" / "leak.txt").unlink()
    (home / "notes" / "b.txt").write_text("more\n")
    record("capture", "add", str(home / "notes" / "b.txt"), *repo, *host, "--json")
    # Restore onto an empty host, then drift a file there.
    other_root = tmp / "other"
    other_root.mkdir()
    other = ["--target-root", str(other_root), "--state-dir", str(tmp / "state2"),
             "--secrets-file", str(store)]  # fmt: skip
    record("reconcile", "reconcile", *repo, *other, "--json")
    record("reconcile", "reconcile", *repo, *other, "--apply", "--json")
    (other_root / HOME.lstrip("/") / "app" / "a.conf").write_text("a = 2\n")
    plan_file = tmp / "plan.json"
    assert main(["reconcile", *repo, *other, "--out", str(plan_file)]) == ExitCode.ATTENTION
    record("reconcile", "reconcile", *repo, *other, "--json")
    record("reconcile", "reconcile", *repo, *other, "--rebuild-ledger", "--json")
    record("reconcile", "apply", str(plan_file), "--state-dir", str(tmp / "state2"), "--json")
    record("reconcile", "reconcile", *repo, *other, "--apply", "--overwrite", "--json")
    record("ls", "ls", *repo, *other, "--json")
    record("status", "status", "--state-dir", str(tmp / "state2"), "--json")
    record("status", "status", "--state-dir", str(tmp / "state"), "--json")  # a held capture
    record("backups", "backups", "--state-dir", str(tmp / "state2"), "--json")
    record("services", "services", *repo, *other, "--json")
    record("services-run", "services", *repo, *other, "run", "app", "--json")
    record("doctor", "doctor", *repo, *other, "--json")
    record("validate", "validate", *repo, "--json")
    record("fleet", "fleet", *repo, "--state-dir", str(tmp / "state2"), "--json")
    record("snapshot", "snapshot", *repo, "--state-dir", str(tmp / "state2"), "--json")
    record("snapshot", "snapshot", *repo, "--state-dir", str(tmp / "state2"), "--push", "--json")
    record("snapshots", "snapshots", *repo, "--state-dir", str(tmp / "state2"), "--json")
    checkout = tmp / "checkout"
    checkout.mkdir()
    (checkout / "app.env").write_text(f"API_TOKEN={ENTROPY}\n")
    record("scan", "scan", str(checkout), "--json")
    config = tmp / "config"
    (config / "inventory").mkdir(parents=True)
    (config / "tether.yaml").write_text(MANIFEST)
    (config / "inventory" / "include-paths.txt").write_text(INVENTORY)
    (config / "configs" / "app").mkdir(parents=True)
    (config / "configs" / "app" / ".env").write_text("DB_PASSWORD=${DB_PASSWORD}\n")
    for name in ("list", "check"):
        record(f"secrets-{name}", "secrets", name, "--source", str(config),
               "--secrets-file", str(store), "--json")  # fmt: skip
    return found


@cache
def schema(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def json_commands() -> list[str]:
    """Every command taking --json, as its schema's name (`secrets list` -> secrets-list)."""

    def walk(command: click.Command, path: list[str]) -> Iterator[str]:
        if any("--json" in getattr(p, "opts", ()) for p in command.params):
            yield "-".join(path)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    return sorted(walk(cli, []))


# Commands whose --json prints the output of another: `add` is a capture, `apply` a reconcile.
SAME_OUTPUT = {"add": "capture", "apply": "reconcile"}


def test_every_json_command_has_a_schema_and_every_schema_a_command() -> None:
    names = {SAME_OUTPUT.get(n, n) for n in json_commands()}
    assert names == {p.stem for p in SCHEMAS.glob("*.json")}


def test_every_output_validates_against_its_schema(outputs: dict[str, list[Any]]) -> None:
    assert set(outputs) == {p.stem for p in SCHEMAS.glob("*.json")}
    for name, docs in outputs.items():
        validator = jsonschema.Draft202012Validator(schema(name))
        for doc in docs:
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in
                      validator.iter_errors(doc)]  # fmt: skip
            assert not errors, f"{name}: {errors[:5]}"
            assert doc["schema_version"] == 1


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                yield from value
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def test_every_key_is_snake_case_and_every_schema_is_strict() -> None:
    for path in SCHEMAS.glob("*.json"):
        doc = schema(path.stem)
        bad = sorted({k for k in _keys(doc) if not SNAKE.fullmatch(k)})
        assert not bad, f"{path.name}: {bad}"
        assert doc["properties"]["schema_version"] == {"const": 1}, path.name
        assert "schema_version" in doc["required"], path.name
        assert doc.get("additionalProperties") is False, path.name


def test_a_renamed_key_fails_validation(outputs: dict[str, list[Any]]) -> None:
    doc = dict(outputs["status"][0])
    doc["lastAppliedRevision"] = doc.pop("last_applied_revision")  # the key before snake_case
    errors = [e.message for e in jsonschema.Draft202012Validator(schema("status")).iter_errors(doc)]
    assert any("'last_applied_revision' is a required property" in e for e in errors), errors
    assert any("'lastAppliedRevision' was unexpected" in e for e in errors), errors


# The JSON examples in the docs, in file order, and the output each one shows.
DOC_EXAMPLES = {
    "agent.md": ["status"],
    "capture.md": ["capture"],
    "fleet.md": ["reconcile", "fleet"],
    "reconcile.md": ["reconcile"],
}


def test_every_key_a_docs_example_shows_is_in_that_output_schema() -> None:
    blocks: dict[str, list[str]] = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        found = re.findall(r"```json\n(.*?)```", page.read_text(), flags=re.DOTALL)
        if found:
            blocks[page.name] = found
    assert {k: len(v) for k, v in blocks.items()} == {k: len(v) for k, v in DOC_EXAMPLES.items()}
    for page, texts in blocks.items():
        for text, name in zip(texts, DOC_EXAMPLES[page], strict=True):
            shown = set(re.findall(r'"([A-Za-z_]+)":', text))
            missing = shown - set(_keys(schema(name)))
            assert not missing, f"docs/{page}: {sorted(missing)} not in schema/output/{name}.json"
