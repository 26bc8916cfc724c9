"""A value far longer than any the Local API contract describes, in an answer that breaks it.

Session 47's fuzzer answered a label with ``warnings`` of 10,000 numbers: the client refused
it, rightly, but quoted the whole list, and the build's reason filled 70 KB of the console and
the log. Every refusal of an answer's shape (``MalformedResponse``) is now cut to a few
hundred characters, keeping the field, what was expected and the value's start and end.
"""

from __future__ import annotations

import json

import pytest

from preform_pipeline.api import EulerAngles, LabelOptions, Position, PreFormClient
from preform_pipeline.api._parse import MESSAGE_CHARS, MalformedResponse
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import ServerInternalError, ServerTimeoutError
from tests.hostile_http import HostileFront, reply

SCENE = "/scene/abc/"
#: The most a refusal may fill of a build's reason, as the console, the log and the error file
#: show it (the request, the call and the refusal): six lines of an 80-column terminal. Review
#: rv48-mutants: the bounds were MESSAGE_CHARS plus a margin, so a cut of 3,000 characters
#: (ten screens of numbers) passed as well as one of 300.
REASON_CHARS = 480
LABEL = LabelOptions(model_id="m1", label="A1", position=Position(0.0, 0.0, 5.0),
                     orientation=EulerAngles(0.0, 0.0, 0.0), font_size_mm=3, depth_mm=0.5)



class TestAHugeValueIsQuotedInPart:
    """The refusal names the field and what was expected, and quotes only part of the value."""

    def test_ten_thousand_warnings_that_are_numbers(self, front: HostileFront) -> None:
        front.on("POST", SCENE + "label/",
                 reply(200, json.dumps({"warnings": list(range(10_000))})))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.label("abc", LABEL)
        said = caught.value.message
        assert "unreadable answer: warnings: expected a list of strings, got [0, 1, 2" in said
        assert "9998, 9999]" in said and "characters cut" in said
        assert len(said) <= REASON_CHARS, said  # with the request's url and call

    def test_an_operation_status_of_escapes_is_quoted_escaped_and_cut(
        self, front: HostileFront
    ) -> None:
        front.on("POST", SCENE + "auto-orient/", reply(202, b'{"operationId": "op1"}'))
        front.on("GET", "/operations/op1/", reply(200, json.dumps(
            {"id": "op1", "status": "\x1b[2J" * 5_000, "progress": 0.5})))
        with PreFormClient(front.url, timeout=5, async_operations=True) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.auto_orient("abc")
        said = caught.value.message
        assert "unreadable answer: status: unknown operation status '\\x1b[2J" in said
        assert "\x1b" not in said
        assert len(said) <= REASON_CHARS, said


class TestASecretInTheQuotedValue:
    """The cut keeps whole words from the start and the end of the refusal: it must not keep a
    token and leave out the ``Bearer`` before it, by which the log's rule knows it for one
    (review rv47-fuzz: 48 numbers, the token, 12 numbers showed the token whole)."""

    TOKEN = "tok-rv47-3f9a8c1d2e7b6a5f4e3d"

    def _warnings(self, before: int, after: int) -> list[object]:
        return [*range(before), f"Bearer {self.TOKEN}", *range(after)]

    def test_a_label_answer_quoting_a_bearer_token_shows_none_of_it(
        self, front: HostileFront
    ) -> None:
        front.on("POST", SCENE + "label/",
                 reply(200, json.dumps({"warnings": self._warnings(48, 12)})))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.label("abc", LABEL)
        said = caught.value.message
        assert "unreadable answer: warnings: expected a list of strings, got [0, 1, 2" in said
        assert "'Bearer [redacted]'" in said
        assert "3f9a8c" not in said

    @pytest.mark.parametrize("tokens", [
        {"access_token": [TOKEN], "refresh_token": "r"},
        {"access_token": "a", "refresh_token": {"value": TOKEN}},
    ], ids=["access-token-list", "refresh-token-object"])
    def test_a_login_answer_of_another_shape_does_not_quote_its_token(
        self, front: HostileFront, tokens: dict[str, object]
    ) -> None:
        # No "Bearer" before a token quoted as a value: the log's rule cannot know it for one.
        front.on("POST", "/login/", reply(200, json.dumps(tokens)))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.login("ada@lab.example", "pw-not-this")
        said = caught.value.message
        assert "token: expected a string, got a " in said
        assert "is a secret)" in said
        assert "3f9a8c" not in said

    def test_wherever_the_cut_falls_no_part_of_the_token_is_kept(self) -> None:
        shown = [
            str(MalformedResponse(
                f"warnings: expected a list of strings, got {self._warnings(before, after)!r}"))
            for before in range(0, 100, 2) for after in range(0, 40, 3)
        ]
        assert [s for s in shown if "3f9a8c" in s or "6a5f4e3d" in s] == []
        assert all(len(s) <= MESSAGE_CHARS for s in shown)


class TestAProgressOutsideItsRange:
    """An operation's progress outside 0.0 to 1.0 is no progress known, not a percentage."""

    @pytest.mark.parametrize("progress", [1.5, -1.0, float("nan")])
    def test_the_deadline_error_shows_no_percentage(
        self, front: HostileFront, progress: float
    ) -> None:
        front.on("POST", SCENE + "auto-orient/", reply(202, b'{"operationId": "op1"}'))
        front.on("GET", "/operations/op1/", reply(200, json.dumps(
            {"id": "op1", "status": "IN_PROGRESS", "progress": progress})))
        # On a manual clock the polls' sleeps pass at once: the deadline is met, not waited.
        with PreFormClient(front.url, timeout=5, clock=ManualClock()) as client, \
                pytest.raises(ServerTimeoutError) as caught:
            client.auto_orient("abc", deadline=client.deadline_in(30))
        assert "operation op1 was still in progress when its deadline passed" \
            in caught.value.message


class TestNumbersJsonCannotHold:
    """NaN, infinity and integers too large for a float are no number of the contract: the
    answer is unreadable, not a print time of NaN (which crashed run's summary)."""

    @pytest.mark.parametrize("total", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 400])
    def test_a_print_time_that_is_no_finite_number_is_refused(
        self, front: HostileFront, total: str
    ) -> None:
        front.on("POST", SCENE + "estimate-print-time/", reply(
            200, '{"total_print_time_s": ' + total + ', "preprint_time_s": 10}'))
        with PreFormClient(front.url, timeout=5, async_operations=False) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.estimate_print_time("abc")
        assert "unreadable answer: total_print_time_s: expected a " in caught.value.message
