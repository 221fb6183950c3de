"""The per-host hash key: content hashes (HMAC-SHA256) that reveal nothing off this host."""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from tether.errors import StateError
from tether.hostfs import fsutil
from tether.state.statedir import REBUILD_HINT

KEY_NAME = "key"


class Keyring:
    """The per-host HMAC key: content hashes that reveal nothing off this host."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def hash(self, data: bytes) -> str:
        return hmac.digest(self._key, data, "sha256").hex()

    def secret_digest(
        self, names: Mapping[str, str], values: Iterable[tuple[str, str | None]]
    ) -> str:
        """One keyed digest of the secret values a file used (and the names map it saw)."""
        canon = json.dumps([sorted(names.items()), sorted(values)], separators=(",", ":"))
        return self.hash(canon.encode("utf-8"))

    @property
    def key_id(self) -> str:
        return self.hash(b"tether key id")[:16]

    def __repr__(self) -> str:
        return "Keyring(***)"


def load_key(state_dir: Path) -> Keyring:
    """Read the key (32 random bytes, 0600), creating it on first use."""
    path = state_dir / KEY_NAME
    if not path.exists():
        _create_key(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: cannot read the hash key ({exc.strerror})") from None
    if len(key) < 32:
        raise StateError(
            f"{path}: the hash key is damaged ({len(key)} bytes)",
            hint=f"remove it and {REBUILD_HINT}",
        )
    return Keyring(key)


def _create_key(path: Path) -> None:
    """Write the key whole under a temp name, then link it in: a run starting at the same
    moment never reads a key still being written (the first link wins, the other is dropped)."""
    tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        fsutil.fsync_dir(path.parent)
    except OSError as exc:
        raise StateError(f"{path}: cannot create the hash key ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
