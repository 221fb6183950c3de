"""A config repo read from a SourceTree: its manifest, its inventory, its tracked paths."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tether.config.inventory import Inventory, parse_inventory
from tether.config.manifest import MANIFEST_NAME, Manifest, parse_manifest
from tether.config.sourcetree import SourceTree
from tether.errors import InventoryError, ManifestError, SourceError


@dataclass(frozen=True)
class ConfigRepo:
    tree: SourceTree
    manifest: Manifest
    inventory: Inventory

    @cached_property
    def source_files(self) -> list[str]:
        """Every file in the source folder, relative to it."""
        return self.tree.files_under(self.manifest.source)

    @cached_property
    def tracked_paths(self) -> list[str]:
        """The allowlisted paths (globs expanded against the source folder), sorted."""
        if not any(entry.is_glob for entry in self.inventory.entries):
            return self.inventory.select(())  # literal paths only: no need to walk the tree
        return self.inventory.select(self.source_files)

    def source_path(self, path: str) -> str:
        """Where an inventory path lives in the repo."""
        return f"{self.manifest.source}/{path}"


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


def open_config_repo(tree: SourceTree, *, cache_dir: Path | None = None) -> ConfigRepo:
    """Read and check tether.yaml and the inventory; raise the first kind of error found."""
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
    inventory = parse_inventory(
        _text(tree, manifest.inventory, InventoryError), _origin(tree, manifest.inventory)
    )
    return ConfigRepo(tree=tree, manifest=manifest, inventory=inventory)
