"""tether.yaml: strict YAML + the JSON Schema in schema/ -> a frozen Manifest."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether import __version__
from tether.config.inventory import GLOB_CHARS, matches
from tether.errors import ManifestError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from tether.config.yamlload import YamlDocument

MANIFEST_NAME = "tether.yaml"
DEFAULT_SOURCE = "configs"
DEFAULT_INVENTORY = "inventory/include-paths.txt"
DEFAULT_SECRETS_FILE = "~/.config/tether/secrets.env"
DEFAULT_BRANCH = "main"
DEFAULT_MESSAGE = "backup: automated snapshot {time}"
DEFAULT_MAX_FILE_SIZE = 1024 * 1024
DEFAULT_SNAPSHOT_TAG = "snapshot/{date}"
DEFAULT_SERVICE_TIMEOUT = 300.0
DEFAULT_READY_TIMEOUT = 120.0


def schema_path() -> Path:
    """The one schema file: packaged into the wheel from schema/, read in place in a checkout."""
    packaged = resources.files("tether").joinpath("_data/manifest.schema.json")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "schema" / "manifest.schema.json"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    # Checked against the metaschema by the test suite, not on every run (30 ms).
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


@dataclass(frozen=True)
class FileOverride:
    pattern: str
    dest: str | None = None
    mode: int | None = None
    dir_mode: int | None = None
    owner: str | None = None
    group: str | None = None
    hosts: tuple[str, ...] = ()
    capture: bool = True
    allow_binary: bool = False
    max_size: int | None = None
    secret: str | None = None  # "whole": the file is one secret, kept out of git
    # The fields the manifest wrote, so an exact path can set a field back to its default.
    given: frozenset[str] = frozenset()

    @property
    def whole_secret(self) -> bool:
        return self.secret == "whole"  # noqa: S105 (a mode word, not a password)

    @property
    def is_glob(self) -> bool:
        return any(c in GLOB_CHARS for c in self.pattern)


@dataclass(frozen=True)
class Service:
    name: str
    paths: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    on_change: tuple[str, ...] = ()
    timeout: float = DEFAULT_SERVICE_TIMEOUT  # seconds per command, then SIGTERM, then SIGKILL
    ready: str | None = None  # retried until it succeeds, before dependents start
    ready_timeout: float = DEFAULT_READY_TIMEOUT


@dataclass(frozen=True)
class HostProfile:
    """One entry of `hosts:`: what differs on that host from the shared manifest."""

    name: str
    home: str | None = None
    inventory: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    secrets_file: str | None = None
    services: tuple[str, ...] | None = None  # None: every service

    def selects(self, path: str) -> bool:
        """Whether a path of the shared allowlist goes to this host (include/exclude)."""
        if self.include and not any(matches(p, path) for p in self.include):
            return False
        return not any(matches(p, path) for p in self.exclude)


@dataclass(frozen=True)
class CaptureSettings:
    remote: str | None = None
    branch: str = DEFAULT_BRANCH
    author: str | None = None
    message: str = DEFAULT_MESSAGE
    max_file_size: int = DEFAULT_MAX_FILE_SIZE


@dataclass(frozen=True)
class Manifest:
    origin: str
    target_home: str
    target_root: str | None = None
    source: str = DEFAULT_SOURCE
    inventory: str = DEFAULT_INVENTORY
    secrets_file: str = DEFAULT_SECRETS_FILE
    secrets_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    files: tuple[FileOverride, ...] = ()
    services: tuple[Service, ...] = ()
    capture: CaptureSettings = CaptureSettings()
    snapshot_tag: str = DEFAULT_SNAPSHOT_TAG
    allow_unscanned: tuple[str, ...] = ()  # repo paths the hooks may let through unscanned
    hosts: Mapping[str, HostProfile] = field(default_factory=dict)

    def for_host(self, profile: HostProfile) -> Manifest:
        """The manifest as `profile`'s host sees it: its home, its store, its services."""
        services = self.services
        if profile.services is not None:
            services = tuple(s for s in services if s.name in profile.services)
        return replace(
            self,
            target_home=(profile.home.rstrip("/") or "/") if profile.home else self.target_home,
            secrets_file=profile.secrets_file or self.secrets_file,
            services=services,
        )

    def override_for(self, path: str) -> FileOverride:
        """Every override matching `path` merged in file order; exact paths win over globs."""
        merged: dict[str, Any] = {}
        ordered = sorted(self.files, key=lambda o: not o.is_glob)  # globs first
        for override in ordered:
            if matches(override.pattern, path):
                merged.update({name: getattr(override, name) for name in override.given})
        return FileOverride(pattern=path, given=frozenset(merged), **merged)

    def secret_names_for(self, path: str) -> dict[str, str]:
        """The `secrets.map` key -> name table that applies to `path`."""
        names: dict[str, str] = {}
        for pattern, table in self.secrets_map.items():
            if matches(pattern, path):
                names.update(table)
        return names


def _mode(value: str | None) -> int | None:
    return int(value, 8) if value is not None else None


def _build(data: Mapping[str, Any], origin: str) -> Manifest:
    target = data["target"]
    secrets = data.get("secrets", {})
    capture = data.get("capture", {})
    files = tuple(
        FileOverride(
            pattern=pattern,
            dest=spec.get("dest"),
            mode=_mode(spec.get("mode")),
            dir_mode=_mode(spec.get("dir_mode")),
            owner=spec.get("owner"),
            group=spec.get("group"),
            hosts=tuple(spec.get("hosts", ())),
            capture=spec.get("capture", True),
            allow_binary=spec.get("allow_binary", False),
            secret=spec.get("secret"),
            max_size=spec.get("max_size"),
            given=frozenset(spec),
        )
        for pattern, spec in data.get("files", {}).items()
    )
    services = tuple(
        Service(
            name=s["name"],
            paths=tuple(s.get("paths", ())),
            after=tuple(s.get("after", ())),
            on_change=tuple(s.get("on_change", ())),
            timeout=s.get("timeout", DEFAULT_SERVICE_TIMEOUT),
            ready=s.get("ready"),
            ready_timeout=s.get("ready_timeout", DEFAULT_READY_TIMEOUT),
        )
        for s in data.get("services", [])
    )
    return Manifest(
        origin=origin,
        target_home=target["home"].rstrip("/") or "/",
        target_root=target.get("root"),
        source=data.get("source", DEFAULT_SOURCE).rstrip("/"),
        inventory=data.get("inventory", DEFAULT_INVENTORY),
        secrets_file=secrets.get("file", DEFAULT_SECRETS_FILE),
        secrets_map={k: dict(v) for k, v in secrets.get("map", {}).items()},
        files=files,
        services=services,
        capture=CaptureSettings(
            remote=capture.get("remote"),
            branch=capture.get("branch", DEFAULT_BRANCH),
            author=capture.get("author"),
            message=capture.get("message", DEFAULT_MESSAGE),
            max_file_size=capture.get("max_file_size", DEFAULT_MAX_FILE_SIZE),
        ),
        snapshot_tag=data.get("snapshots", {}).get("tag", DEFAULT_SNAPSHOT_TAG),
        allow_unscanned=tuple(data.get("scan", {}).get("allow_unscanned", ())),
        hosts={
            name: HostProfile(
                name=name,
                home=spec.get("home"),
                inventory=tuple(spec.get("inventory", ())),
                include=tuple(spec.get("include", ())),
                exclude=tuple(spec.get("exclude", ())),
                secrets_file=spec.get("secrets", {}).get("file"),
                services=tuple(spec["services"]) if "services" in spec else None,
            )
            for name, spec in data.get("hosts", {}).items()
        },
    )


def _json_path(path: list[str | int]) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:  # keys such as `a.txt` or `**/*.env` would read as nested paths
            out += f"[{json.dumps(part)}]"
    return out


def _schema_at(schema_path: list[str | int]) -> Mapping[str, Any]:
    """The sub-schema an error's schema_path leads to (for the names of allowed keys)."""
    node: Any = load_schema()
    for part in schema_path:
        if isinstance(node, Mapping) and "$ref" in node and part not in node:
            node = _resolve_ref(node["$ref"])
        node = node[part]
    if isinstance(node, Mapping) and "$ref" in node:
        node = _resolve_ref(node["$ref"])
    return node if isinstance(node, Mapping) else {}


def _resolve_ref(ref: str) -> Any:
    node: Any = load_schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _describe(error: ValidationError, doc: YamlDocument, origin: str) -> list[tuple[int, int, str]]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        parent = _schema_at(list(error.schema_path)[:-1])
        allowed = sorted(parent.get("properties", {}))
        out = []
        for key in error.instance:
            if key in allowed:
                continue
            line, col = doc.key_position(path, str(key))
            close = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            known = f"; allowed: {', '.join(allowed)}" if allowed else ""
            message = f"unknown key {key!r}{suggestion}{known if not close else ''}"
            out.append((line, col, f"{_json_path([*path, str(key)])}: {message}"))
        if out:
            return out
    line, col = doc.position(path)
    message = error.message
    if error.validator == "type" and path and path[-1] in ("mode", "dir_mode"):
        message = f'{error.instance!r} is not a quoted mode (write it as a string, e.g. "0600")'
    elif error.validator == "pattern" and isinstance(error.instance, str):
        message = f"{error.instance!r} has the wrong form ({_pattern_help(error)})"
    return [(line, col, f"{_json_path(path)}: {message}")]


def _pattern_help(error: ValidationError) -> str:
    description = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    return str(description) if description else f"must match {error.validator_value}"


def _cache_key(text: str) -> str:
    schema = schema_path().read_bytes()
    material = b"\0".join([__version__.encode(), schema, text.encode("utf-8")])
    return hashlib.sha256(material).hexdigest()


def _cached(cache_dir: Path, key: str) -> Any:
    try:
        return json.loads((cache_dir / f"manifest-{key}.json").read_bytes())
    except (OSError, ValueError):
        return None


def _remember(cache_dir: Path, key: str, data: Any) -> None:
    """Keep a valid manifest's data so the next run skips YAML and schema validation."""
    for old in cache_dir.glob("manifest-*.json"):
        old.unlink(missing_ok=True)
    tmp = cache_dir / f".manifest-{key}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(cache_dir / f"manifest-{key}.json")
    except OSError:  # a cache: never worth failing a run for
        tmp.unlink(missing_ok=True)


def parse_manifest(
    text: str, origin: str = MANIFEST_NAME, *, cache_dir: Path | None = None
) -> Manifest:
    """Parse and validate a manifest; every problem is reported, each as `origin:LINE:COL: ...`.

    With `cache_dir`, a manifest already found valid (same bytes, same schema, same tether) is
    read back from there: validation is pure, and jsonschema's import alone costs 30 ms a run.
    """
    key = _cache_key(text) if cache_dir is not None else None
    if cache_dir is not None and key is not None:
        data = _cached(cache_dir, key)
        if isinstance(data, dict):
            return _build(data, origin)
    from jsonschema import Draft202012Validator  # noqa: PLC0415 (see the docstring)

    from tether.config.yamlload import YamlLoadError, load_yaml  # noqa: PLC0415

    try:
        doc = load_yaml(text)
    except YamlLoadError as exc:
        raise ManifestError(
            [f"{origin}:{exc.line}:{exc.column}: {exc.message}"],
            hint="fix the YAML at that line",
        ) from None
    if not isinstance(doc.data, Mapping):
        raise ManifestError(
            [f"{origin}:1:1: $: the manifest must be a mapping with at least version and target"],
            hint="see docs/manifest.md",
        )
    validator = Draft202012Validator(load_schema())
    problems: list[tuple[int, int, str]] = []
    for error in validator.iter_errors(doc.data):
        problems.extend(_describe(error, doc, origin))
    problems.extend(_semantic_problems(doc))
    if problems:
        lines = [f"{origin}:{line}:{col}: {msg}" for line, col, msg in sorted(set(problems))]
        raise ManifestError(lines, hint="see docs/manifest.md")
    if cache_dir is not None and key is not None:
        _remember(cache_dir, key, doc.data)
    return _build(doc.data, origin)


def _semantic_problems(doc: YamlDocument) -> list[tuple[int, int, str]]:
    """What the schema cannot say: a `dest` only for a single path, unique service names."""
    data = doc.data
    problems: list[tuple[int, int, str]] = []
    files = data.get("files")
    if isinstance(files, Mapping):
        for pattern, spec in files.items():
            if (
                isinstance(spec, Mapping)
                and "dest" in spec
                and any(c in GLOB_CHARS for c in pattern)
            ):
                line, col = doc.position(["files", pattern, "dest"])
                where = _json_path(["files", pattern, "dest"])
                problems.append((line, col, f"{where}: a glob cannot have one destination"))
    services = data.get("services")
    if isinstance(services, list):
        seen: set[str] = set()
        for index, service in enumerate(services):
            name = service.get("name") if isinstance(service, Mapping) else None
            if isinstance(name, str):
                if name in seen:
                    line, col = doc.position(["services", index, "name"])
                    problems.append(
                        (line, col, f"$.services[{index}].name: duplicate service {name!r}")
                    )
                seen.add(name)
    return problems


def load_manifest(path: Path, origin: str | None = None) -> Manifest:
    label = origin or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            [f"{label}: no such file"], hint="run `tether init DIR` to create a config repo"
        ) from None
    except UnicodeDecodeError:
        raise ManifestError([f"{label}: not UTF-8 text"], hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ManifestError(
            [f"{label}: cannot read ({exc.strerror})"], hint="check the file's permissions"
        ) from None
    return parse_manifest(text, label)
