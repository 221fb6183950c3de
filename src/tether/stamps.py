"""The time stamps and content ids tether writes into its records."""

from __future__ import annotations

import datetime as dt
import hashlib


def utc_stamp() -> str:
    """Now, as the ledger, backups, the lock info and captures write it (UTC, ISO 8601)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_blob_id(data: bytes) -> str:
    """The id git gives these bytes as a blob, so a commit's tree can be compared unread."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
