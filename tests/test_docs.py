"""Docs stay true: every schema field and every exit code is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from tether.cli import cli
from tether.config.manifest import load_schema
from tether.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[1]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = load_schema()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_fields(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted names of every property, with <glob>/<path>/<key> for maps and [] for lists."""
    node = _resolve(node)
    for name, child in node.get("properties", {}).items():
        dotted = f"{prefix}{name}"
        yield dotted
        yield from schema_fields(child, dotted + ".")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and prefix:
        yield from schema_fields(extra, prefix + "<*>.")
    items = node.get("items")
    if isinstance(items, dict):
        yield from schema_fields(items, prefix.rstrip(".") + "[].")


def _documented(field: str, text: str) -> bool:
    last = field.rsplit(".", 1)[-1]
    if "<*>" not in field and "[]" not in field:
        return f"`{field}`" in text
    # map and list members: the doc names them by their own key under their parent's heading
    return re.search(rf"`[^`]*\b{re.escape(last)}`", text) is not None


def test_every_schema_field_is_documented() -> None:
    text = (ROOT / "docs" / "manifest.md").read_text()
    missing = [f for f in schema_fields(load_schema()) if not _documented(f, text)]
    assert missing == []


def test_field_walk_finds_nested_fields() -> None:
    fields = set(schema_fields(load_schema()))
    assert {"target.home", "capture.max_file_size", "files.<*>.mode", "services[].after"} <= fields


def test_exit_codes_are_documented() -> None:
    text = (ROOT / "docs" / "index.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\|\s*{int(code)}\s*\|", text, re.MULTILINE), code


def test_every_command_is_listed_in_the_index() -> None:
    text = (ROOT / "docs" / "index.md").read_text()
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for name, command in cli.commands.items():
        assert f"`tether {name}" in table, name
        if isinstance(command, click.Group):
            for sub in command.commands:
                assert sub in table, f"{name} {sub}"


def test_architecture_doc_names_only_modules_and_functions_that_exist() -> None:
    import importlib  # noqa: PLC0415

    text = (ROOT / "docs" / "architecture.md").read_text()
    cited = set(re.findall(r"`(tether(?:\.\w+)+)`", text)) - {"tether.yaml"}
    assert len(cited) > 30  # the walk names the modules it goes through
    missing = []
    for name in sorted(cited):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                target: object = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                target = getattr(target, attr, None)
            if target is None:
                missing.append(name)
            break
    assert missing == []
    for path in re.findall(r"`(tests/\w+\.py)`", text):
        assert (ROOT / path).is_file(), path


def test_architecture_doc_lists_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = [
        p.name for p in (ROOT / "src" / "tether").iterdir() if (p / "__init__.py").is_file()
    ]
    for package in packages:
        assert f"`tether.{package}`" in text, package
