from __future__ import annotations

import io

import pytest

import tether.commands.progress
from tether.commands.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_on_a_tty_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Tty()
    monkeypatch.setattr(tether.commands.progress, "DELAY", 0.0)
    bar = Progress(enabled=True, stream=stream)
    bar(5, 10)
    bar(10, 10)
    bar.close()
    assert "applying [" in stream.getvalue() and "10/10" in stream.getvalue()
    assert stream.getvalue().endswith("\n")


def test_not_shown_before_a_second_when_piped_or_disabled() -> None:
    quick, piped, off = Tty(), io.StringIO(), Tty()
    Progress(enabled=True, stream=quick)(1, 2)  # under a second
    p = Progress(enabled=True, stream=piped)
    p.start -= 5
    p(1, 2)
    q = Progress(enabled=False, stream=off)  # --json
    q.start -= 5
    q(1, 2)
    assert quick.getvalue() == piped.getvalue() == off.getvalue() == ""
