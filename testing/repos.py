"""Small builders shared by tests (config repos in temp folders)."""

from __future__ import annotations

from pathlib import Path

MINIMAL_MANIFEST = "version: 1\ntarget:\n  home: /home/demo\n"


def make_config_repo(
    root: Path,
    files: dict[str, str] | None = None,
    *,
    manifest: str = MINIMAL_MANIFEST,
    inventory: str | None = None,
) -> Path:
    """A config repo in `root`: tether.yaml, the inventory and configs/<files>."""
    files = files or {}
    root.mkdir(parents=True, exist_ok=True)
    (root / "tether.yaml").write_text(manifest)
    (root / "inventory").mkdir(exist_ok=True)
    listed = inventory if inventory is not None else "".join(f"{p}\n" for p in files)
    (root / "inventory" / "include-paths.txt").write_text(listed)
    for rel, text in files.items():
        target = root / "configs" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root
