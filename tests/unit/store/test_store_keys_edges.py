"""Job keys at the edges: names cut at the key's length, at a space, and clear errors."""

from __future__ import annotations

import pytest

from preform_pipeline.store import embed_key, new_key

KEY = new_key(123_456_789)


class TestEmbeddingAtTheLimits:
    """A name never pushes the key past the limit; a cut never leaves a double space."""

    def test_a_limit_of_exactly_the_keys_length_gives_the_key_alone(self) -> None:
        assert embed_key("case 7", KEY, max_length=len(KEY)) == KEY

    def test_no_room_for_a_space_and_a_letter_gives_the_key_alone(self) -> None:
        assert embed_key("case 7", KEY, max_length=len(KEY) + 1) == KEY

    def test_a_cut_at_a_space_leaves_a_single_space_before_the_key(self) -> None:
        embedded = embed_key("abc def", KEY, max_length=len(KEY) + 5)
        assert embedded == f"abc {KEY}"

    def test_a_limit_shorter_than_the_key_is_refused_saying_so(self) -> None:
        with pytest.raises(ValueError, match=f"max_length {len(KEY) - 1} is shorter than the key"):
            embed_key("case", KEY, max_length=len(KEY) - 1)

    def test_a_value_beyond_fifty_bits_is_refused_saying_so(self) -> None:
        with pytest.raises(ValueError, match=r"a key holds 50 bits, got -1"):
            new_key(-1)
