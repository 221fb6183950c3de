"""docs/manifest.md and docs/inventory.md must stay true to the schema and the code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.config import manifest as mf
from tether.config.inventory import matches, parse_inventory
from tether.errors import InventoryError

DOCS = Path(__file__).resolve().parents[1] / "docs"
MANIFEST_DOC = (DOCS / "manifest.md").read_text(encoding="utf-8")
INVENTORY_DOC = (DOCS / "inventory.md").read_text(encoding="utf-8")


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _fields(node: dict[str, Any], schema: dict[str, Any], prefix: str) -> Iterator[str]:
    """Every dotted field name below `node`: `a.b`, `files.<glob>.mode`, `services[].name`."""
    node = _resolve(node, schema)
    if node.get("type") == "array":
        yield from _fields(node["items"], schema, prefix + "[]")
        return
    for key, child in node.get("properties", {}).items():
        name = f"{prefix}.{key}" if prefix else key
        yield name
        yield from _fields(child, schema, name)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        names = node.get("propertyNames", {})
        placeholder = "<name>" if names.get("$ref") == "#/$defs/hostName" else "<glob>"
        placeholder = placeholder if names else "<key>"
        name = f"{prefix}.{placeholder}"
        yield name
        yield from _fields(extra, schema, name)


def _sections() -> dict[str, str]:
    """`### `name`` headings of docs/manifest.md -> the text up to the next heading."""
    parts = re.split(r"^### `([^`]+)`\n", MANIFEST_DOC, flags=re.MULTILINE)
    return {
        parts[i]: re.split(r"^##", parts[i + 1], flags=re.MULTILINE)[0]
        for i in range(1, len(parts), 2)
    }


def test_every_schema_field_has_its_own_section_and_no_other_does() -> None:
    schema = mf.load_schema()
    fields = list(_fields(schema, schema, ""))
    assert "files.<glob>.mode" in fields and "services[].on_change" in fields
    assert "secrets.map.<glob>.<key>" in fields
    assert sorted(_sections()) == sorted(fields)


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("source", mf.DEFAULT_SOURCE),
        ("inventory", mf.DEFAULT_INVENTORY),
        ("secrets.file", mf.DEFAULT_SECRETS_FILE),
        ("capture.branch", mf.DEFAULT_BRANCH),
        ("capture.message", mf.DEFAULT_MESSAGE),
        ("capture.max_file_size", str(mf.DEFAULT_MAX_FILE_SIZE)),
        ("snapshots.tag", mf.DEFAULT_SNAPSHOT_TAG),
    ],
)
def test_documented_defaults_are_the_codes(field: str, default: str) -> None:
    row = next(line for line in _sections()[field].splitlines() if line.startswith("| default"))
    assert f"`{default}`" in row


def test_every_section_has_a_type_and_a_default() -> None:
    for field, text in _sections().items():
        assert "| type |" in text, field
        assert "| default |" in text, field


def _table(doc: str, name: str) -> list[list[str]]:
    block = doc.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->", maxsplit=1)[0]
    rows = [line for line in block.strip().splitlines()[2:] if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


GLOB_ROWS = _table(INVENTORY_DOC, "glob-examples")


@pytest.mark.parametrize(("pattern", "path", "verdict"), GLOB_ROWS)
def test_glob_examples_in_inventory_doc_are_true(pattern: str, path: str, verdict: str) -> None:
    assert verdict in ("yes", "no")
    assert matches(pattern.strip("`"), path.strip("`")) is (verdict == "yes")


def test_rejected_lines_in_inventory_doc_are_rejected_for_the_reason_given() -> None:
    section = INVENTORY_DOC.split("## Rejected lines")[1].split("##")[0]
    checked = 0
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        lines, why = re.findall(r"`([^`]+)`", cells[0]), cells[1].replace("`", "'")
        for line in lines:
            with pytest.raises(InventoryError) as caught:
                parse_inventory(line + "\n", "include-paths.txt")
            assert caught.value.problems[0].startswith("include-paths.txt:1: ")
            assert why.split(" (")[0] in caught.value.problems[0], (line, why)
            checked += 1
    assert checked >= 6
    with pytest.raises(InventoryError, match="control character"):
        parse_inventory("x\ty\n", "include-paths.txt")
