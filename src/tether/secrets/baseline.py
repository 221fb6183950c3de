"""The scan baseline: accepted findings as keyed fingerprints, never the secrets themselves.

`.tether-baseline.json` holds a random per-repo salt and HMAC-SHA256 fingerprints of
(path, rule, secret). Without the salt a fingerprint says nothing; with it, a guess still
needs the path and the rule, and the baseline never holds a plain or unsalted hash.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError
from tether.hostfs.fsutil import write_atomic
from tether.secrets.scan import Finding

BASELINE_NAME = ".tether-baseline.json"
VERSION = 1


@dataclass(frozen=True)
class Baseline:
    salt: bytes
    fingerprints: frozenset[str]


def new_salt() -> bytes:
    return secrets.token_bytes(32)


def load_baseline(path: Path) -> Baseline | None:
    """The baseline at `path`, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise TetherError(
            f"{path}: cannot read the baseline ({exc})",
            hint="fix or delete it, then run `tether scan --update-baseline`",
        ) from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"expected version {VERSION}")
        salt = bytes.fromhex(data["salt"])
        if len(salt) < 16:
            raise ValueError("salt too short")
        prints = frozenset(str(entry["fingerprint"]) for entry in data["findings"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TetherError(
            f"{path}: not a tether baseline ({exc})",
            hint="delete it and run `tether scan --update-baseline`",
        ) from None
    return Baseline(salt, prints)


def write_baseline(path: Path, salt: bytes, findings: Sequence[Finding]) -> None:
    """Write atomically: a temp file beside it, then rename, so a crash leaves the old one."""
    unique = {(f.path, f.rule, f.fingerprint) for f in findings}
    payload = {
        "version": VERSION,
        "about": "tether scan baseline: accepted findings as HMAC-SHA256(salt, path, rule, "
        "secret); regenerate with `tether scan --update-baseline`",
        "salt": salt.hex(),
        "findings": [{"path": p, "rule": r, "fingerprint": fp} for p, r, fp in sorted(unique)],
    }
    text = json.dumps(payload, indent=2) + "\n"
    try:
        write_atomic(path, text.encode("utf-8"), 0o644)  # committed, like any file of the repo
    except OSError as exc:
        raise TetherError(
            f"{path}: cannot write the baseline ({exc.strerror})",
            hint="check the folder's permissions and free space",
        ) from None
