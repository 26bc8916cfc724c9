"""`counted()`: one rule for "1 build" and "2 builds" in everything a user reads."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from preform_pipeline.wording import (
    REQUEST_START_BYTES,
    counted,
    error_text,
    noun,
    quoted,
    request_start,
    visible,
    visible_lines,
)


class TestCounted:
    """Exactly one takes the singular; every other count takes the plural."""

    def test_one_is_singular(self) -> None:
        assert counted(1, "build") == "1 build"

    def test_zero_and_many_are_plural(self) -> None:
        assert counted(0, "model") == "0 models"
        assert counted(2, "model") == "2 models"

    def test_an_irregular_plural_is_given(self) -> None:
        assert counted(1, "copy", "copies") == "1 copy"
        assert counted(3, "copy", "copies") == "3 copies"

    def test_a_float_is_written_short(self) -> None:
        assert counted(1.0, "day") == "1 day"
        assert counted(30.0, "day") == "30 days"
        assert counted(1.5, "day") == "1.5 days"

    def test_a_noun_of_several_words_takes_its_plural_at_the_end(self) -> None:
        assert counted(1, "audit row") == "1 audit row"
        assert counted(4, "audit row") == "4 audit rows"

    @given(st.integers(min_value=-5, max_value=10**9))
    def test_the_number_is_written_whole_and_the_noun_agrees(self, count: int) -> None:
        number, word = counted(count, "print").split(" ")
        assert number == str(count)
        assert word == noun(count, "print") == ("print" if count == 1 else "prints")


class TestQuoted:
    """A value someone sent is quoted whole when short, else its start and ``...``."""

    def test_a_short_value_is_quoted_whole(self) -> None:
        assert quoted("evil.example") == "'evil.example'"
        assert quoted("a\nb") == "'a\\nb'"

    def test_a_long_value_keeps_its_start_and_its_quotes(self) -> None:
        assert quoted("a" * 101) == "'" + "a" * 100 + "...'"
        assert quoted("a" * 100) == "'" + "a" * 100 + "'"
        assert quoted("it's" * 10, limit=8) == '"it\'sit\'s..."'


class TestVisible:
    """Hidden characters of a name are written out; every other character is kept."""

    def test_controls_and_direction_marks_are_escaped(self) -> None:
        assert visible("rtl\u202egnp.stl") == "rtl\\u202egnp.stl"
        assert visible("C-new\nline\t\x00") == "C-new\\nline\\t\\x00"
        assert visible("a\u200bb\ufeff") == "a\\u200bb\\ufeff"

    def test_letters_of_any_script_and_joiners_are_kept(self) -> None:
        for name in ("Zahn-Ä", "שן-7", "سن\u200cی", "👩\u200d🔬", "<b>&'\""):
            assert visible(name) == name

    def test_a_name_that_is_not_utf8_shows_its_bytes(self) -> None:
        # POSIX names are bytes; Python reads one that is not UTF-8 as half characters,
        # which no console, report or store can write.
        assert visible(os.fsdecode(b"caf\xe9-\xff.stl")) == "caf\\xe9-\\xff.stl"
        assert visible("C-\ud8007") == "C-\\ud8007"  # half of a character from an escape

    @given(st.text())
    def test_nothing_a_terminal_obeys_is_left(self, text: str) -> None:
        # ESC and CSI start terminal commands; a name holding them is shown, not obeyed.
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in visible(text))
        visible(text).encode("utf-8")  # and every one can be written


class TestVisibleLines:
    """Text of several lines keeps its line breaks; every other hidden character is escaped."""

    def test_line_breaks_kept_and_the_rest_escaped(self) -> None:
        assert visible_lines("a\x1b[2J\nb\r\n\u202ec\n") == "a\\x1b[2J\nb\\r\n\\u202ec\n"
        # Only \n breaks a line: the separators splitlines() also breaks at are escaped.
        assert visible_lines("x\x1cy\x85z\x0bw") == "x\\x1cy\\x85z\\x0bw"

    @given(st.text())
    def test_each_line_is_shown_as_visible_shows_it(self, text: str) -> None:
        shown = visible_lines(text)
        assert shown.split("\n") == [visible(line) for line in text.split("\n")]
        assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in shown)


class TestRequestStart:
    """How a refused request began, as a log line may show it: the request line's first
    bytes, never a query string or a header (either may hold a secret)."""

    def test_a_header_after_a_short_request_line_is_not_shown(self) -> None:
        # Review of session 45: "GET /" then a Cookie header put seven characters of a
        # session id into the dashboard's web_bad_request event.
        sent = b"GET /\r\nCookie: pp_session=s3cretTOKEN\r\n\r\n"
        assert request_start(sent) == "GET /"

    def test_a_query_string_is_not_shown(self) -> None:
        assert request_start(b"GET /login?token=s3cret HTTP/1.1\r\n") == "GET /login"

    def test_other_bytes_are_escaped_and_the_start_is_bounded(self) -> None:
        assert request_start(b"\x00\x16\x7f\xffGET") == "\\x00\\x16\\x7f\\xffGET"
        assert request_start(b"GET /" + b"a" * 100) == "GET /" + "a" * (REQUEST_START_BYTES - 5)

    @given(st.binary(max_size=200))
    def test_nothing_after_a_line_end_or_a_question_mark_is_ever_shown(
        self, sent: bytes
    ) -> None:
        shown = request_start(sent)
        assert "?" not in shown and "\\x0d" not in shown and "\\x0a" not in shown
        assert all(0x20 <= ord(c) < 0x7F for c in shown)


class TestErrorText:
    """What an error said, as a reason quotes it: its message, the system's words for an
    OSError without one, and never an empty text or a class's name."""

    def test_an_error_with_a_message_is_its_message(self) -> None:
        assert error_text(TimeoutError("no answer within 30 s")) == "no answer within 30 s"
        assert error_text(OSError(28, "No space left on device")) == (
            "[Errno 28] No space left on device")

    def test_an_os_error_with_only_a_number_is_the_systems_words_for_it(self) -> None:
        bare = OSError()
        bare.errno = 111
        assert error_text(bare) == os.strerror(111)

    def test_an_error_that_says_nothing_says_so(self) -> None:
        assert error_text(OSError()) == "no details given"
        assert error_text(ValueError("  ")) == "no details given"
