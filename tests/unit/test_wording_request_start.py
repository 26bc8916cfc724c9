"""What a log line shows of a request a server refused (wording.request_start): its first bytes,
cut at the query string, any byte that is not printable ASCII escaped (s45-mutants: the rules
the dashboard's and the simulators' server tests did not reach)."""

from __future__ import annotations

from preform_pipeline.wording import REQUEST_START_BYTES, request_start


class TestAQueryString:
    def test_is_cut_at_its_first_question_mark_whatever_follows(self) -> None:
        # A token's value may hold a "?" of its own: nothing after the first is shown.
        assert request_start(b"GET /scene?token=s3cr?t HTTP/1.1\r\n") == "GET /scene"


class TestBytesShownAsTheyAre:
    def test_are_printable_ascii_only(self) -> None:
        assert request_start(b" ~\x7f\x1f") == " ~\\x7f\\x1f"

    def test_are_the_first_of_a_long_start(self) -> None:
        assert request_start(b"A" * (REQUEST_START_BYTES + 8)) == "A" * REQUEST_START_BYTES
