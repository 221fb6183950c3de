"""Durations written the way systemd writes them: `30s`, `5m`, `15min`, `1h 30min`, `2d`."""

from __future__ import annotations

import re

from tether.errors import UsageError

_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_PART = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)")


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in `text` (systemd.time(7) time spans; a bare number is seconds)."""
    rest = text.strip()
    if not rest:
        raise UsageError(f"{option}: empty duration", hint="write e.g. 30s, 5min, 1h")
    total = 0.0
    while rest:
        match = _PART.match(rest)
        if match is None or match["unit"] not in _UNITS:
            raise UsageError(
                f"{option}: {text!r} is not a duration",
                hint="write e.g. 30s, 5m, 15min, 1h, 1h 30min, 2d",
            )
        total += float(match["number"]) * _UNITS[match["unit"]]
        rest = rest[match.end() :].lstrip()
    return total


def format_duration(seconds: float) -> str:
    """The shortest systemd spelling of whole seconds: 90 -> `1min 30s`, 3600 -> `1h`."""
    left = round(seconds)
    if left <= 0:
        return "0"
    parts = []
    for name, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        amount, left = divmod(left, size)
        if amount:
            parts.append(f"{amount}{name}")
    return " ".join(parts)
