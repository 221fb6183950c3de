"""Which host of a many-host repo this run is: --host, TETHER_HOST, else the short hostname."""

from __future__ import annotations

import os

HOST_ENV = "TETHER_HOST"
HOSTS_FOLDER = "hosts"


def short_hostname() -> str:
    import socket  # noqa: PLC0415 (most runs are told their host, or never ask)

    return socket.gethostname().split(".", 1)[0]


def host_name(requested: str | None = None) -> str:
    """The name this host goes by: given, else $TETHER_HOST, else the machine's short name."""
    return requested or os.environ.get(HOST_ENV) or short_hostname()


def overlay_folder(host: str, source: str) -> str:
    """Where a host's own copies live in the repo: hosts/<name>/<source>."""
    return f"{HOSTS_FOLDER}/{host}/{source}"
