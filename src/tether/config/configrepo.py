"""A config repo read from a SourceTree: its manifest, its inventory, its tracked paths."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

from tether.config.hosts import host_name, overlay_folder
from tether.config.inventory import Inventory, is_glob, parse_inventory
from tether.config.manifest import MANIFEST_NAME, HostProfile, Manifest, parse_manifest
from tether.config.sourcetree import SourceTree
from tether.errors import InventoryError, ManifestError, SourceError, UsageError

Layer = Literal["shared", "host"]


@dataclass(frozen=True)
class ConfigRepo:
    tree: SourceTree
    manifest: Manifest
    inventory: Inventory
    # The host profile applied (None: a repo without `hosts:`, or the shared view) and the
    # extra allowlists it names.
    profile: HostProfile | None = None
    extra: tuple[Inventory, ...] = ()

    @property
    def host(self) -> str | None:
        return self.profile.name if self.profile is not None else None

    @cached_property
    def source_files(self) -> list[str]:
        """Every file in the source folder, relative to it."""
        return self.tree.files_under(self.manifest.source)

    @cached_property
    def overlay(self) -> frozenset[str]:
        """The paths this host has its own copy of, under hosts/<name>/<source>/."""
        if self.profile is None:
            return frozenset()
        return frozenset(
            self.tree.files_under(overlay_folder(self.profile.name, self.manifest.source))
        )

    @property
    def inventories(self) -> tuple[Inventory, ...]:
        return (self.inventory, *self.extra)

    @property
    def has_globs(self) -> bool:
        return any(is_glob(p) for inv in self.inventories for p in inv.patterns)

    def select(self, candidates: Collection[str]) -> list[str]:
        """The candidates this host's allowlist names: the shared one through the profile's
        include/exclude, plus the profile's own inventories; sorted."""
        shared = self.inventory.select(candidates)
        if self.profile is None:
            return shared
        chosen = {p for p in shared if self.profile.selects(p)}
        for inventory in self.extra:
            chosen.update(inventory.select(candidates))
        return sorted(chosen)

    @cached_property
    def tracked_paths(self) -> list[str]:
        """The allowlisted paths (globs expanded against the source folder), sorted."""
        if not self.has_globs:
            return self.select(())  # literal paths only: no need to walk the tree
        return self.select(sorted(set(self.source_files) | self.overlay))

    def layer(self, path: str) -> Layer:
        return "host" if path in self.overlay else "shared"

    def source_path(self, path: str) -> str:
        """Where an inventory path lives in the repo: the host's overlay when it has one."""
        if self.profile is not None and path in self.overlay:
            return f"{overlay_folder(self.profile.name, self.manifest.source)}/{path}"
        return f"{self.manifest.source}/{path}"

    def shared_path(self, path: str) -> str:
        return f"{self.manifest.source}/{path}"

    def host_path(self, path: str) -> str:
        assert self.profile is not None, "host_path() without a host"
        return f"{overlay_folder(self.profile.name, self.manifest.source)}/{path}"

    def for_host(self, name: str) -> ConfigRepo:
        """The repo as host `name` sees it; a usage error naming the known hosts if unknown."""
        hosts = self.manifest.hosts
        profile = hosts.get(name)
        if profile is None:
            raise UsageError(
                f"host {name!r} is not in hosts: of {self.manifest.origin} "
                f"(known: {', '.join(sorted(hosts))})",
                hint="pass --host NAME or set TETHER_HOST",
            )
        extra = tuple(_read_inventory(self.tree, relpath) for relpath in profile.inventory)
        return replace(self, manifest=self.manifest.for_host(profile), profile=profile, extra=extra)


def _origin(tree: SourceTree, relpath: str) -> str:
    return relpath if tree.revision is None else f"{tree.label}:{relpath}"


def _text(tree: SourceTree, relpath: str, error: type[ManifestError | InventoryError]) -> str:
    origin = _origin(tree, relpath)
    try:
        data = tree.read_bytes(relpath)
    except SourceError as exc:
        raise error([f"{origin}: cannot read ({exc.message})"], hint=exc.hint) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error([f"{origin}: not UTF-8 text"], hint="save the file as UTF-8") from None


def _read_inventory(tree: SourceTree, relpath: str) -> Inventory:
    if not tree.is_file(relpath):
        raise InventoryError(
            [f"{_origin(tree, relpath)}: no such file"],
            hint="create it with one path per line, or fix the inventory: lists of tether.yaml",
        )
    return parse_inventory(_text(tree, relpath, InventoryError), _origin(tree, relpath))


def open_config_repo(
    tree: SourceTree,
    *,
    cache_dir: Path | None = None,
    host: str | None = None,
    shared: bool = False,
) -> ConfigRepo:
    """Read and check tether.yaml and the inventory; raise the first kind of error found.

    A manifest with `hosts:` is read as the host `host` (else $TETHER_HOST, else the short
    hostname) sees it; `shared=True` keeps the shared view (validate checks every host)."""
    repo = _open_shared(tree, cache_dir)
    if shared or not repo.manifest.hosts:
        return repo
    return repo.for_host(host_name(host))


def _open_shared(tree: SourceTree, cache_dir: Path | None) -> ConfigRepo:
    if not tree.is_file(MANIFEST_NAME):
        raise SourceError(
            f"{tree.label}: no {MANIFEST_NAME} here",
            hint="point --source at a config repo, or create one with `tether init DIR`",
        )
    manifest = parse_manifest(
        _text(tree, MANIFEST_NAME, ManifestError), _origin(tree, MANIFEST_NAME), cache_dir=cache_dir
    )
    if not tree.is_file(manifest.inventory):
        raise InventoryError(
            [f"{_origin(tree, manifest.inventory)}: no such file"],
            hint="create it with one path per line, or set `inventory:` in tether.yaml",
        )
    inventory = _read_inventory(tree, manifest.inventory)
    return ConfigRepo(tree=tree, manifest=manifest, inventory=inventory)
