"""The git hooks that run `tether scan`: their names and the line that marks them as tether's."""

from __future__ import annotations

HOOK_NAMES = ("pre-commit", "pre-push")
MARKER = "# tether-hook:"  # in every hook tether writes; a hook without it is someone else's
