"""The secret store sealed with a passphrase, to carry it to a new host (`tether secrets export`).

scrypt turns the passphrase into a key, AES-256-GCM encrypts the names and values with it; both
come from the `cryptography` library (no crypto of our own). The file is ASCII, so it survives a
copy and paste:

    tether-secrets 1
    {"kdf": "scrypt", "log2_n": 17, "r": 8, "p": 1, "salt": ..., "nonce": ..., "check": ...}
    <the ciphertext and its tag, base64, 76 characters a line>

The two header lines are authenticated with the ciphertext (GCM's associated data), so a changed
parameter, salt or nonce fails like a changed ciphertext byte. `check` is 16 further bytes of the
scrypt output: a passphrase that does not give them is reported as wrong before decrypting (it
tells an attacker nothing the tag would not).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tether.errors import SecretError
from tether.secrets.wholefile import SEALED_EXPORT
from tether.stamps import utc_stamp

MAGIC = f"{SEALED_EXPORT}1\n".encode()
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_BYTES, _CHECK_BYTES, _SALT_BYTES, _NONCE_BYTES = 32, 16, 16, 12
# What an import accepts from a header: enough for any sane choice, never a memory bomb.
_LOG2_N, _R, _P, _MAX_MEMORY = range(10, 23), range(1, 33), range(1, 17), 1 << 30
MIN_PASSPHRASE = 8


@dataclass(frozen=True)
class KdfParams:
    """scrypt's cost: N = 2**log2_n, memory about 128 * N * r bytes (128 MiB by default)."""

    log2_n: int = 17
    r: int = 8
    p: int = 1


DEFAULT_PARAMS = KdfParams()


@dataclass(frozen=True)
class Sealed:
    """What an export carries: the store's values, and where the store was (`~/...`)."""

    values: dict[str, str]
    store: str | None
    created: str

    def __repr__(self) -> str:  # never show values
        return f"Sealed(names={len(self.values)}, store={self.store!r}, created={self.created})"


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> tuple[bytes, bytes]:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    length = _KEY_BYTES + _CHECK_BYTES
    kdf = Scrypt(salt=salt, length=length, n=1 << params.log2_n, r=params.r, p=params.p)
    out = kdf.derive(secret)
    return out[:_KEY_BYTES], out[_KEY_BYTES:]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_passphrase(passphrase: str) -> None:
    """The rules for a new passphrase (an import takes whatever the export was sealed with)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise SecretError(
            f"the passphrase is shorter than {MIN_PASSPHRASE} characters",
            hint="choose a longer one: it is all that protects the exported secrets",
        )


def seal(
    values: Mapping[str, str],
    passphrase: str,
    *,
    store: str | None,
    params: KdfParams | None = None,
) -> bytes:
    """The bytes of an export file holding `values` (names and values), sealed by `passphrase`."""
    check_passphrase(passphrase)
    params = params or DEFAULT_PARAMS
    salt, nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
    key, check = _derive(passphrase, salt, params)
    created = utc_stamp()
    header = {
        "kdf": "scrypt",
        "log2_n": params.log2_n,
        "r": params.r,
        "p": params.p,
        "salt": _b64(salt),
        "cipher": "aes-256-gcm",
        "nonce": _b64(nonce),
        "check": _b64(check),
        "created": created,
    }
    head = MAGIC + json.dumps(header, separators=(", ", ": ")).encode("ascii") + b"\n"
    payload = json.dumps({"secrets": dict(sorted(values.items())), "store": store}).encode()
    body = base64.encodebytes(AESGCM(key).encrypt(nonce, payload, head))
    return head + body


def _damaged(origin: str, what: str) -> SecretError:
    return SecretError(
        f"{origin}: {what}",
        hint="export it again from the old host, and copy the file whole",
    )


def _header(data: bytes, origin: str) -> tuple[bytes, dict[str, Any], bytes]:
    if not data.startswith(MAGIC):
        if data.startswith(SEALED_EXPORT.encode()):
            version = data[len(SEALED_EXPORT) :].split(b"\n", 1)[0][:20]
            raise SecretError(
                f"{origin}: export format {version.decode('ascii', 'replace')!r} is not "
                "one this tether reads",
                hint="import it with the tether version that exported it, or a newer one",
            )
        raise _damaged(origin, "not a tether secrets export (no `tether-secrets 1` first line)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise _damaged(origin, "cut short in its header")
    try:
        header = json.loads(data[len(MAGIC) : end])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise _damaged(origin, "its header line is damaged")
    return data[: end + 1], header, data[end + 1 :]


def _field_bytes(header: dict[str, Any], name: str, size: int, origin: str) -> bytes:
    try:
        value = base64.b64decode(header[name], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        value = b""
    if len(value) != size:
        raise _damaged(origin, f"its header's {name} is damaged")
    return value


def _params(header: dict[str, Any], origin: str) -> KdfParams:
    if header.get("kdf") != "scrypt" or header.get("cipher") != "aes-256-gcm":
        raise _damaged(origin, "its header names a cipher this tether does not use")
    fields = [header.get(k) for k in ("log2_n", "r", "p")]
    numbers = [v for v in fields if type(v) is int]
    if len(numbers) != len(fields):
        raise _damaged(origin, "its header's scrypt parameters are damaged")
    params = KdfParams(*numbers)
    if (
        params.log2_n not in _LOG2_N
        or params.r not in _R
        or params.p not in _P
        or 128 * (1 << params.log2_n) * params.r * params.p > _MAX_MEMORY
    ):
        raise _damaged(origin, "its header's scrypt parameters are out of range")
    return params


def unseal(data: bytes, passphrase: str, origin: str) -> Sealed:
    """The values an export holds; a wrong passphrase or a changed byte is one SecretError."""
    head, header, body = _header(data, origin)
    params = _params(header, origin)
    salt = _field_bytes(header, "salt", _SALT_BYTES, origin)
    nonce = _field_bytes(header, "nonce", _NONCE_BYTES, origin)
    check = _field_bytes(header, "check", _CHECK_BYTES, origin)
    key, expected = _derive(passphrase, salt, params)
    if not secrets.compare_digest(check, expected):
        raise SecretError(
            f"{origin}: wrong passphrase", hint="give the passphrase the export was made with"
        )
    try:
        ciphertext = base64.b64decode(b"".join(body.split()), validate=True)
        payload = json.loads(AESGCM(key).decrypt(nonce, ciphertext, head))
    except (binascii.Error, ValueError, InvalidTag, RecursionError):
        raise _damaged(origin, "altered or damaged (it fails authentication)") from None
    values = payload.get("secrets") if isinstance(payload, dict) else None
    store = payload.get("store") if isinstance(payload, dict) else None
    if (
        not isinstance(values, dict)
        or not all(isinstance(v, str) and _NAME.fullmatch(n) for n, v in values.items())
        or not isinstance(store, str | None)
    ):  # authenticated, so written by something other than tether: refuse it all the same
        raise _damaged(origin, "its contents are not a secret store")
    created = header.get("created")
    return Sealed(dict(values), store, created if isinstance(created, str) else "")


def home_relative(path: Path) -> str:
    """`path` as `~/...` when it is under the home, so an import finds the same place."""
    home = Path("~").expanduser()
    if home != Path("/") and home.is_absolute() and path.is_relative_to(home):
        return f"~/{path.relative_to(home).as_posix()}"
    return str(path)
