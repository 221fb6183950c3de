"""tether: make a host rebuildable from git."""

from __future__ import annotations

__version__ = "0.2.0"
