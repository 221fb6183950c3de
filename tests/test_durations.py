"""Durations in systemd's spelling."""

from __future__ import annotations

import pytest

from tether.agent.durations import format_duration, parse_duration
from tether.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("30", 30),
        ("5m", 300),
        ("15min", 900),
        ("1h", 3600),
        ("1h 30min", 5400),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("500ms", 0.5),
        ("1.5h", 5400),
        (" 10 sec ", 10),
        ("0", 0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "-5s", "1h and 2m", "m5"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        parse_duration(text, "--interval")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30s"), (900, "15min"), (3600, "1h"), (5400, "1h 30min"), (90061, "1d 1h 1min 1s")],
)
def test_format_round_trips(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_format_zero() -> None:
    assert format_duration(0) == "0"
