"""The placeholder contract: filling, blocking on a missing value, bare REDACTED, masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.secrets.render import env_name, has_marker, mask, placeholder, render


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_any_value_fills_byte_exactly(value: str) -> None:
    data = b'a: "__REDACTED_A_B__"\nb: __REDACTED_C__\n'
    lookup = {"A_B": value, "C": value[::-1]}.get
    expected = f'a: "{value}"\nb: {value[::-1]}\n'.encode()
    assert render(data, lookup).data == expected


def test_missing_blocks_and_names_what_is_missing() -> None:
    rendered = render(b"x: __REDACTED_A__ __REDACTED_B__\n", {"A": "1"}.get)
    assert rendered.data is None
    assert rendered.missing == ("B",)
    assert rendered.used == ("A",)


def test_no_marker_is_returned_as_is() -> None:
    data = b"plain: text\n"
    assert render(data, {}.get).data is data
    assert not has_marker(data)


def test_bare_redacted_from_map_then_from_store_key() -> None:
    data = b"key: REDACTED\nWIREGUARD_PRIVATE_KEY: REDACTED\n"
    lookup = {"HOMEPAGE_WIDGET_KEY": "k1", "WIREGUARD_PRIVATE_KEY": "wg"}.get
    rendered = render(data, lookup, {"key": "HOMEPAGE_WIDGET_KEY"})
    assert rendered.data == b"key: k1\nWIREGUARD_PRIVATE_KEY: wg\n"


def test_bare_redacted_without_a_name_blocks() -> None:
    rendered = render(b"a: 1\nkey: REDACTED\n", {}.get)
    assert rendered.data is None
    assert rendered.missing == ("REDACTED@line2",)


def test_redacted_inside_a_word_is_not_a_marker() -> None:
    assert render(b"UNREDACTED_THING: x\n", {}.get).data == b"UNREDACTED_THING: x\n"


@pytest.mark.parametrize(
    ("text", "name"),
    [("Wireguard private-key", "WIREGUARD_PRIVATE_KEY"), ("PlexOnlineToken", "PLEX_ONLINE_TOKEN"),
     ("2fa", "S_2FA"), ("", "SECRET"), ("a__b", "A_B")],
)  # fmt: skip
def test_env_name(text: str, name: str) -> None:
    assert env_name(text) == name
    assert placeholder(name) == f"__REDACTED_{name}__"


def test_placeholder_rejects_bad_names() -> None:
    for bad in ("a", "A__B", "A_", "_A", "A-B"):
        with pytest.raises(ValueError, match="not a secret name"):
            placeholder(bad)


def test_mask_longest_first() -> None:
    secrets = {"SHORT": "abcd", "LONG": "abcdefgh"}
    assert mask("x abcdefgh y abcd z", secrets) == "x (secret LONG) y (secret SHORT) z"
