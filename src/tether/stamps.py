"""The time stamps and content ids tether writes into its records."""

from __future__ import annotations

import datetime as dt


def _utc(when: float | None) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if when is None else dt.datetime.fromtimestamp(when, dt.UTC)


def utc_stamp(when: float | None = None) -> str:
    """`when` (unix time; default now) as every record of tether writes it: UTC, ISO 8601, Z."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc_stamp(text: str) -> float | None:
    """The unix time of a `utc_stamp`, or None for anything else."""
    try:
        parsed = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=dt.UTC).timestamp()


def file_stamp(when: float | None = None) -> str:
    """The same instant for file and ref names (no colons): 20260101T100000Z."""
    return _utc(when).strftime("%Y%m%dT%H%M%SZ")


def git_blob_id(data: bytes) -> str:
    """The id git gives these bytes as a blob, so a commit's tree can be compared unread."""
    import hashlib  # noqa: PLC0415 (loads OpenSSL: not for every command)

    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
