"""The readers' whole-array number guard, with numpy's conversion after it, accepts exactly
what the patterns of ``preform_pipeline/geometry/numerals.py`` do (the patterns name the
offender of a refused file; the guard decides on the usual path)."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from preform_pipeline.geometry.numerals import (
    is_text_index,
    is_text_number,
    is_xml_index,
    is_xml_number,
    text_indices_may_pass,
    text_numbers_may_pass,
    xml_indices_may_pass,
    xml_numbers_may_pass,
)

# The characters the forms are made of, and those Python's float() and int() also take.
_ALPHABET = "0123456789+-.eE _\t\n\u0661\u00a0infatyINF"


def _converts(text: str | bytes, dtype: type) -> bool:
    try:
        np.array([text], dtype=np.bytes_ if isinstance(text, bytes) else None).astype(dtype)
    except (ValueError, OverflowError):
        return False
    return True


class TestGuardIsTheRule:
    """The whole-array guard with numpy's conversion accepts exactly the rule's patterns."""

    @given(st.text(_ALPHABET, max_size=8))
    def test_xml_numbers(self, text: str) -> None:
        assert (xml_numbers_may_pass([text]) and _converts(text, np.float64)) == (
            is_xml_number(text))

    @given(st.text(_ALPHABET, max_size=8))
    def test_xml_indices(self, text: str) -> None:
        taken = xml_indices_may_pass([text]) and _converts(text, np.int64)
        assert (taken and int(text) >= 0) == is_xml_index(text)

    # A NUL too: numpy drops a token's trailing NULs ("1\x00" converts as 1), so the text's
    # NUL (one memchr) sends the reader to the patterns.
    @given(st.text(_ALPHABET.replace(" ", "").replace("\t", "").replace("\n", "") + "\x00",
                   min_size=1, max_size=8))
    @example(text="1\x00")  # random draws seldom end a number in a NUL
    @example(text="12\x00\x00")
    def test_text_numbers_and_indices(self, text: str) -> None:
        token = text.encode()
        held = np.array([token], dtype=np.bytes_).tobytes()
        nul = b"\x00" in token
        assert (text_numbers_may_pass(held, nul_in_text=nul) and _converts(token, np.float64)
                ) == is_text_number(token)
        assert (text_indices_may_pass(held, nul_in_text=nul) and _converts(token, np.int64)
                ) == is_text_index(token)
