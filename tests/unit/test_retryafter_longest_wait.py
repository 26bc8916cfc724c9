"""The longest Retry-After a request may wait now, and which bound's words say so
(retryafter.longest_wait): the shortest of the one wait's limit, what is left of the total,
and the caller's time; where two bounds come to the same seconds, the earlier one's words
are kept (s45-mutants), so the same wait is not refused in two wordings."""

from __future__ import annotations

import math

from preform_pipeline.retryafter import MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_TOTAL_S, longest_wait


def _just_over(seconds: float) -> float:
    """Time left whose "at most all of it" is exactly ``seconds``."""
    return math.nextafter(seconds, math.inf)


class TestATie:
    def test_with_the_longest_wait_keeps_its_words(self) -> None:
        assert longest_wait(0.0, time_left=(_just_over(MAX_RETRY_AFTER_S), "the request's")) \
            == (MAX_RETRY_AFTER_S, "")

    def test_with_what_is_left_of_the_total_keeps_its_words(self) -> None:
        bound, words = longest_wait(1000.0, time_left=(_just_over(MAX_RETRY_AFTER_TOTAL_S
                                                                  - 1000.0), "the operation's"))

        assert bound == MAX_RETRY_AFTER_TOTAL_S - 1000.0
        assert words.startswith(f"the {MAX_RETRY_AFTER_TOTAL_S - 1000.0:.0f} s left of the "
                                f"{MAX_RETRY_AFTER_TOTAL_S:.0f} s a request waits")


class TestTheCallersTime:
    def test_shorter_than_both_is_the_bound_and_named_as_theirs(self) -> None:
        bound, words = longest_wait(0.0, time_left=(30.0, "the operation's"))

        assert bound < 30.0 and bound == math.nextafter(30.0, -math.inf)
        assert words == "the 30 s left of the operation's time"

    def test_gone_already_is_said_as_none_left(self) -> None:
        # The clock may pass the caller's end between its read and this one.
        bound, words = longest_wait(0.0, time_left=(-2.0, "the request's"))

        assert bound < 0.0
        assert words == "the 0 s left of the request's time"
