"""Files that are secrets as a whole: Docker secret files, private keys, files whose name says
so, a sealed store export. Such a file goes to git as one placeholder line; its exact bytes go to
the store.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

import yaml

WHOLE_FILE_RULE = "whole-file-secret"
# A name that says the file is a secret: `db_password.txt`, `api-token`, `client_secret`.
_SECRET_NAME = re.compile(r"passw(or)?d|passwd|secret|token|privatekey|private[_.-]key", re.I)
_KEY_NAMES = frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ed25519_sk"})
_KEY_SUFFIXES = frozenset({".key", ".pem"})
# PKCS#12 and Java keystores: binary, and a private key inside whatever their name says.
KEYSTORE_SUFFIXES = frozenset({".p12", ".pfx", ".jks", ".keystore"})
_NOT_SECRETS = frozenset(
    {".example", ".sample", ".template", ".dist", ".md", ".pub", ".j2", ".tmpl", ".tpl"}
    # program source named after what it handles (`github_token.py`, `yaml/tokens.py`)
    | {".py", ".js", ".ts", ".go", ".rs", ".java", ".rb", ".php", ".c", ".h", ".sh", ".lua"}
)
_PRIVATE_KEY = "PRIVATE KEY-----"
_AGE_KEY = "AGE-SECRET-KEY-1"
# The first line of `tether secrets export`'s file (tether.secrets.sealed): encrypted, but in git
# it would be open to an offline guess of its passphrase forever.
SEALED_EXPORT = "tether-secrets "
_COMPOSE = re.compile(r"(?:^|[._-])(?:docker-)?compose(?:[._-][^/]*)?\.ya?ml\Z", re.I)


def names_a_secret(path: str) -> bool:
    """Does the file's name alone say it is a secret?"""
    name = PurePosixPath(path).name
    lowered = name.lower()
    if any(lowered.endswith(s) for s in _NOT_SECRETS):
        return False
    if is_keystore(path):
        return True
    return lowered in _KEY_NAMES or _SECRET_NAME.search(name) is not None


def is_keystore(path: str) -> bool:
    """A PKCS#12 or Java keystore (`.p12`, `.pfx`, `.jks`, `.keystore`)."""
    return PurePosixPath(path).suffix.lower() in KEYSTORE_SUFFIXES


def is_whole_file_secret(path: str, text: str) -> bool:
    """A file to keep out of git whole: named a secret, or holding nothing but a private key."""
    if not text.strip():
        return False
    if names_a_secret(path) or text.startswith(SEALED_EXPORT):
        return True
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _KEY_SUFFIXES and _PRIVATE_KEY in text:
        return True
    stripped = text.strip()
    return (stripped.startswith("-----BEGIN") and stripped.endswith(_PRIVATE_KEY)) or (
        _AGE_KEY in text and all(line.startswith(("#", _AGE_KEY)) for line in _lines(text))
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def is_compose_file(path: str) -> bool:
    return _COMPOSE.search(PurePosixPath(path).name) is not None


def compose_secret_files(path: str, text: str) -> set[str]:
    """The files a compose file declares as secrets (`secrets: NAME: file: PATH`, and `configs:`
    whose name says secret), as paths relative to the same home as `path`."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return set()
    if not isinstance(doc, Mapping):
        return set()
    found: set[str] = set()
    folder = posixpath.dirname(path)
    for section in ("secrets", "configs"):
        entries = doc.get(section)
        if not isinstance(entries, Mapping):
            continue
        for name, spec in entries.items():
            if section == "configs" and not _SECRET_NAME.search(str(name)):
                continue
            target = spec.get("file") if isinstance(spec, Mapping) else None
            if isinstance(target, str) and target and not target.startswith(("/", "~", "$")):
                joined = posixpath.normpath(posixpath.join(folder, target))
                if not joined.startswith("../") and joined != "..":
                    found.add(joined)
    return found


def declared_secret_files(compose_texts: Iterable[tuple[str, str]]) -> set[str]:
    """Every secret file the given compose files (path, text) declare."""
    out: set[str] = set()
    for path, text in compose_texts:
        out |= compose_secret_files(path, text)
    return out
