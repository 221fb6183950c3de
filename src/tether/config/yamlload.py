"""A strict YAML loader: duplicate keys rejected, positions kept, no surprise types.

PyYAML's SafeLoader follows YAML 1.1, so `on`, `yes` and `2026-11-22` silently become
booleans and dates. A manifest author who writes `hosts: [on]` or a tag format means a string,
so only `true`/`false` are booleans here and timestamps stay strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml


class _StrictLoader(yaml.SafeLoader):
    pass


# Drop YAML 1.1's timestamp and yes/no/on/off booleans; re-add plain true/false below.
_StrictLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class DuplicateKeyError(yaml.MarkedYAMLError):
    pass


def _construct_mapping(
    loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DuplicateKeyError(
                None, None, f"duplicate key {key!r} (each key may appear once)", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    root: yaml.Node | None

    def position(self, path: Sequence[str | int]) -> tuple[int, int]:
        """1-based line and column of the node at `path`, or of its nearest existing parent."""
        node = self.root
        if node is None:
            return (1, 1)
        for part in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                child = node.value[part] if 0 <= part < len(node.value) else None
            if child is None:
                break
            node = child
        return (node.start_mark.line + 1, node.start_mark.column + 1)

    def key_position(self, path: Sequence[str | int], key: str) -> tuple[int, int]:
        """Position of the key `key` inside the mapping at `path` (for unknown-key errors)."""
        line, col = self.position(path)
        node = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(part)), node)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if 0 <= part < len(node.value) else node
        if isinstance(node, yaml.MappingNode):
            for k, _ in node.value:
                if k.value == key:
                    return (k.start_mark.line + 1, k.start_mark.column + 1)
        return (line, col)


class YamlLoadError(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


MAX_DEPTH = 64  # nesting deeper than this is no config a person wrote


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH at the collection that opens the next level.

    PyYAML's composer recurses once per level (thousands of `[` overflow the stack), its parser
    does not: so the depth is counted over the parser's events before anything is composed.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_StrictLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                raise YamlLoadError(line, col, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _position_of(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document strictly; raise YamlLoadError with a position."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # checks the characters: a NUL byte is refused here
        _check_depth(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        return YamlDocument(data=data, root=node)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, controls)
        line, col = _position_of(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlLoadError(
            line, col, f"character U+{code:04X} is not allowed in YAML; remove it"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlLoadError(line, col, problem) from None
    except yaml.YAMLError as exc:
        raise YamlLoadError(1, 1, f"invalid YAML: {exc}") from None
    except ValueError as exc:  # e.g. a value PyYAML's constructors reject
        raise YamlLoadError(1, 1, str(exc)) from None
    finally:
        if loader is not None:
            loader.dispose()
