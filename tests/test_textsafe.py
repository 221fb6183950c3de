"""Text fit to print: URL credentials masked, control characters escaped."""

from __future__ import annotations

from tether.textsafe import has_control, mask_url, printable


def test_printable_escapes_control_characters_but_tab() -> None:
    assert printable("plain name.conf") == "plain name.conf"
    assert printable("a\tb") == "a\tb"
    assert printable("e\x1b[31mRED\x1b[0m.conf") == "e\\x1b[31mRED\\x1b[0m.conf"
    assert printable("two\nlines\r") == "two\\nlines\\r"
    assert printable("osc\x1b]0;title\x07") == "osc\\x1b]0;title\\x07"
    assert printable("c1\x9b") == "c1\\x9b"
    assert printable("unicode é ok") == "unicode é ok"
    assert has_control("x\ny") and not has_control("x y")


def test_mask_url_hides_passwords_and_http_tokens() -> None:
    assert mask_url("https://bob:hunter2@git.example/r.git") == "https://bob:***@git.example/r.git"
    assert mask_url("https://ghp_token@git.example/r.git") == "https://***@git.example/r.git"
