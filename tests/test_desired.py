from __future__ import annotations

from tether.desired import destination, names_host


def test_destination() -> None:
    assert destination("/", "/home/a", "x/y", None) == "/home/a/x/y"
    assert destination("/host", "/home/a", "x/y", None) == "/host/home/a/x/y"
    assert destination("/host/", "/", "x", None) == "/host/x"
    assert destination("/host", "/home/a", "x", "/etc/../etc/x.conf") == "/host/etc/x.conf"


def test_hosts_filter_full_or_short_name() -> None:
    assert names_host(("nas",), "nas.lan")
    assert names_host(("nas.lan",), "nas.lan")
    assert not names_host(("pi",), "nas.lan")
