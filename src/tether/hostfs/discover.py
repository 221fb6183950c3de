"""What under a home is config worth restoring, and what never is (data, caches, media).

`tether add` refuses what `skip_reason` names; `tether init --from-host` proposes an allowlist
from a bounded walk of the home with the same judgement.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

# Folder names (any case) that hold data, caches, databases, media or logs: never config.
DATA_FOLDERS = frozenset(
    {
        ".cache", ".git", ".npm", ".venv", "__pycache__", "backup", "backups", "cache", "caches",
        "data", "database", "databases", "db", "downloads", "log", "logs", "media", "metadata",
        "movies", "music", "node_modules", "photos", "pictures", "postgres", "recordings", "tmp",
        "temp", "trash", ".trash", "transcode", "transcodes", "tv", "venv", "videos",
        "crash reports",
    }
)  # fmt: skip
# File name endings (any case) of databases, media, archives, logs and run-time files.
DATA_SUFFIXES = (
    ".db", ".db-shm", ".db-wal", ".sqlite", ".sqlite3", ".sqlite-shm", ".sqlite-wal", ".rdb",
    ".log", ".pid", ".sock", ".lock", ".mp4", ".mkv", ".avi", ".mov", ".mp3", ".flac", ".m4a",
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".iso", ".img", ".qcow2", ".tar", ".gz", ".tgz",
    ".zip", ".7z", ".xz", ".bz2", ".bak", ".old", ".tmp", ".swp",
)  # fmt: skip
COMPOSE_NAMES = frozenset(
    {"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"}
)
# What a config file looks like by its name's ending, below a service's folder.
CONFIG_SUFFIXES = (
    ".yml", ".yaml", ".toml", ".conf", ".cfg", ".ini", ".json", ".xml", ".env", ".properties",
)  # fmt: skip
# Folders named after these services are config folders even without a compose file.
KNOWN_SERVICES = frozenset(
    {
        "adguard", "authelia", "authentik", "bazarr", "caddy", "gitea", "grafana",
        "home-assistant", "homeassistant", "homepage", "immich", "jellyfin", "lidarr",
        "loki", "mosquitto", "nextcloud", "nginx", "overseerr", "pihole", "pi-hole", "plex",
        "portainer", "prometheus", "prowlarr", "qbittorrent", "radarr", "readarr", "sonarr",
        "syncthing", "tautulli", "traefik", "uptime-kuma", "vaultwarden", "wireguard",
        "zigbee2mqtt",
    }
)  # fmt: skip
MAX_CONFIG_SIZE = 256 * 1024  # a bigger file is data, not config
MAX_DEPTH = 4  # folders below the home the walk enters
MAX_ENTRIES = 20_000  # names the walk looks at before it stops


def skip_reason(relpath: str) -> str | None:
    """Why the file `relpath` (below the home) is data, not config; None when it may be config."""
    parts = relpath.split("/")
    for folder in parts[:-1]:
        if folder.lower() in DATA_FOLDERS:
            return f"inside a data folder ({folder}/)"
    if parts[-1].lower().endswith(DATA_SUFFIXES):
        return "a database, media, archive, log or run-time file"
    return None


def looks_like_config(relpath: str) -> bool:
    name = relpath.rsplit("/", 1)[-1].lower()
    return (
        name in COMPOSE_NAMES
        or name == ".env"
        or name.endswith(CONFIG_SUFFIXES)
        or name.startswith(".env.")
    )


@dataclass
class Proposal:
    """An allowlist proposed from a home: per service folder, the files found."""

    services: dict[str, list[str]] = field(default_factory=dict)  # folder -> relpaths
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, why)
    truncated: bool = False

    @property
    def paths(self) -> list[str]:
        return sorted(p for found in self.services.values() for p in found)


def _is_service_folder(folder: Path, names: list[str]) -> bool:
    return folder.name.lower() in KNOWN_SERVICES or any(n in COMPOSE_NAMES for n in names)


def propose(home: Path) -> Proposal:
    """Walk `home` breadth first (bounded: MAX_DEPTH folders deep, MAX_ENTRIES names; links never
    followed) for service folders (a compose file, or a known service's name) and their config
    files. Service folders sit near the top, so a big tree elsewhere stops the walk late."""
    found = Proposal()
    seen = 0
    queue: deque[tuple[Path, str, int, str | None]] = deque([(home, "", 0, None)])
    while queue:
        here, rel, depth, service = queue.popleft()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError:
            continue
        seen += len(entries)
        if seen > MAX_ENTRIES:
            found.truncated = True
            break
        names = [e.name for e in entries]
        if service is None and rel and _is_service_folder(here, names):
            service = rel
        for entry in entries:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name.lower() in DATA_FOLDERS:
                    found.skipped.append((sub + "/", "data, cache or media folder"))
                elif depth < MAX_DEPTH:
                    queue.append((Path(entry.path), sub, depth + 1, service))
            elif service is not None and looks_like_config(sub):
                why = _file_reason(Path(entry.path), sub)
                if why is None:
                    found.services.setdefault(service, []).append(sub)
                else:
                    found.skipped.append((sub, why))
    return found


def _file_reason(path: Path, relpath: str) -> str | None:
    why = skip_reason(relpath)
    if why is not None:
        return why
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "a symlink (tether never follows links)"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_CONFIG_SIZE:
        return f"over {MAX_CONFIG_SIZE // 1024} KiB (data, not config)"
    return None


def home_relative(path: str, home_dir: str) -> tuple[str | None, str | None]:
    """(the path below `home_dir`, None) for a host file `tether add` may take, else (None, why).

    `path` is absolute or relative to the current folder; the file must be a regular file below
    the home, with no symlink on the way down from the home, and not data."""
    given = Path(os.path.abspath(path))  # noqa: PTH100 (normalise '..' without following links)
    home = Path(os.path.normpath(home_dir))
    rel = _below(given, home)
    if rel is None:  # the home or the path may be reached through a link above the home
        rel = _below(given.parent.resolve() / given.name, home.resolve())
    if rel is None:
        return None, f"outside the home {home}"
    current = home
    for part in rel.split("/"):
        current /= part
        try:
            st = current.lstat()
        except FileNotFoundError:
            return None, "no such file on the host"
        except OSError as exc:
            return None, f"cannot read ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            return None, f"{current} is a symlink; tether never follows links"
    if stat.S_ISDIR(st.st_mode):
        return None, f"a folder; name its files, or write '{rel}/**' in the allowlist by hand"
    if not stat.S_ISREG(st.st_mode):
        return None, "not a regular file"
    why = skip_reason(rel)
    if why is not None:
        return None, f"{why}: data, not config"
    return rel, None


def _below(path: Path, folder: Path) -> str | None:
    try:
        rel = path.relative_to(folder).as_posix()
    except ValueError:
        return None
    return None if rel == "." else rel


def render_proposal(found: Proposal, home: str) -> str:
    """The allowlist file `tether init --from-host` writes: the proposal, commented, to edit."""
    lines = [
        f"# Proposed by `tether init --from-host` from what was found under {home}.",
        "# One path per line, relative to target.home; globs: * ? **. Edit freely: delete a",
        "# line to stop tracking a file, add one (or `tether add PATH`), then `tether capture`.",
        "# Never proposed: data, cache, database, media and log folders or files, links, files",
        f"# over {MAX_CONFIG_SIZE // 1024} KiB.",
    ]
    if found.truncated:
        lines.append(f"# The walk stopped after {MAX_ENTRIES} names: look further by hand.")
    for service, paths in sorted(found.services.items()):
        lines += ["", f"# {service}", *paths]
    if found.skipped:
        lines += ["", "# Left out as data, not config (a file here can still be listed by hand):"]
        lines += [f"# {path}    ({why})" for path, why in found.skipped[:40]]
        if len(found.skipped) > 40:
            lines.append(f"# ... and {len(found.skipped) - 40} more")
    return "\n".join(lines) + "\n"
