"""Job keys: their form, and the round trip through a printer's job name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preform_pipeline.store import (
    DEFAULT_MAX_JOB_NAME_LENGTH,
    embed_key,
    extract_key,
    is_key,
    new_key,
    normalize_key,
)
from preform_pipeline.store.keys import KEY_ALPHABET, KEY_LENGTH

KEY = "PP-4K7QX0M2ZD"
OTHER = "PP-0000000001"


class TestKeys:
    """Keys are short, canonical and distinct."""

    def test_a_new_key_is_the_prefix_and_ten_base32_characters(self) -> None:
        key = new_key()
        assert key.startswith("PP-") and len(key) == 3 + KEY_LENGTH
        assert all(c in KEY_ALPHABET for c in key[3:]) and is_key(key)

    def test_fixed_bits_give_a_fixed_key(self) -> None:
        assert new_key(0) == "PP-0000000000"
        assert new_key(1) == "PP-0000000001"
        assert new_key((1 << 50) - 1) == "PP-ZZZZZZZZZZ"
        with pytest.raises(ValueError):
            new_key(1 << 50)

    def test_many_new_keys_are_all_different(self) -> None:
        keys = {new_key() for _ in range(10_000)}
        assert len(keys) == 10_000

    def test_typed_keys_are_normalised(self) -> None:
        assert normalize_key(" pp-4k7qxom2zd ") == KEY  # o read as 0
        assert normalize_key("PP-1LI0000000") == "PP-1110000000"
        assert normalize_key("PP-4K7QX0M2Z") is None  # too short
        assert normalize_key("PP-4K7QX0M2ZU") is None  # U is not in the alphabet
        assert normalize_key("12") is None
        assert not is_key("pp-4k7qx0m2zd")


class TestJobNames:
    """A key embedded in a job name is found again, whatever surrounds it."""

    def test_the_key_is_appended_to_the_name(self) -> None:
        assert embed_key("case 7 crowns", KEY) == f"case 7 crowns {KEY}"
        assert embed_key("", KEY) == KEY

    def test_embedding_twice_embeds_once(self) -> None:
        once = embed_key("case 7", KEY)
        assert embed_key(once, KEY) == once

    @pytest.mark.parametrize(
        "name",
        [
            f"case 7 crowns {KEY}",
            f"case7_{KEY}",
            f"[{KEY}] arch",
            f"{KEY.lower()}",
            f"order-12-{KEY}.form",
            f"(copy) case 7 {KEY}",
        ],
    )
    def test_the_key_is_extracted_from_names_with_other_text(self, name: str) -> None:
        assert extract_key(name) == KEY

    @pytest.mark.parametrize(
        "name",
        ["case 7 crowns", f"x{KEY}", f"{KEY}9", "PP-4K7QX0M2Z", "PP-", "PP-4K7QX0M2ZDX"],
    )
    def test_names_without_a_standalone_key_have_none(self, name: str) -> None:
        assert extract_key(name) is None

    def test_the_last_key_wins_when_the_file_name_already_held_one(self) -> None:
        assert extract_key(embed_key(f"reprint of {OTHER}", KEY)) == KEY

    def test_a_long_name_is_shortened_but_the_key_is_kept_whole(self) -> None:
        name = embed_key("x" * 500, KEY)
        assert len(name) == DEFAULT_MAX_JOB_NAME_LENGTH and name.endswith(" " + KEY)
        assert embed_key("abcdef", KEY, max_length=len(KEY) + 4) == f"abc {KEY}"

    def test_control_characters_do_not_reach_the_printer(self) -> None:
        assert embed_key("case\n7\tcrowns\x00", KEY) == f"case 7 crowns {KEY}"

    def test_an_invalid_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a job key"):
            embed_key("case", "PP-short")

    @given(name=st.text(max_size=200), bits=st.integers(min_value=0, max_value=(1 << 50) - 1))
    def test_any_name_round_trips_its_key(self, name: str, bits: int) -> None:
        key = new_key(bits)
        embedded = embed_key(name, key)
        assert extract_key(embedded) == key
        assert len(embedded) <= DEFAULT_MAX_JOB_NAME_LENGTH
