"""The Web API client honours a 503's Retry-After as it does a 429's, within the longest wait.

Through the httpx transport seam (the fake Web API) and the manual clock: a wait is the
clock's, nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime as http_date
from typing import TypeVar

import httpx
import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.cloud.auth import TOKEN_PATH
from preform_pipeline.cloud.ratelimit import resume_time
from preform_pipeline.errors import CloudRateLimitError, CloudUnavailableError
from preform_pipeline.retryafter import MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_TOTAL_S
from preform_pipeline.simulator.cloud.testing import FakeWebApi, ScriptedAnswer

ClientFactory = Callable[..., WebApiClient]
PRINTERS = "/developer/v1/printers/"
DAY_S = 86_400


def _sent(api: FakeWebApi) -> list[httpx.Request]:
    return [r for r in api.api_requests() if r.url.path == PRINTERS]


def _waited(client: WebApiClient, api: FakeWebApi, clock: ManualClock,
            answer: ScriptedAnswer) -> float:
    """Seconds a request waited once ``answer`` came first (the token already fetched)."""
    client.list_printers()
    api.script(answer)
    before = clock.monotonic()
    client.list_printers()
    return clock.monotonic() - before


ErrorT = TypeVar("ErrorT", bound=Exception)


def _refusal(client: WebApiClient, api: FakeWebApi, answer: ScriptedAnswer,
             kind: type[ErrorT]) -> ErrorT:
    """The ``kind`` of error a request meets once ``answer`` came first."""
    client.list_printers()
    api.script(answer)
    with pytest.raises(kind) as caught:
        client.list_printers()
    return caught.value


def _unavailable(retry_after: str | None = None) -> ScriptedAnswer:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return ScriptedAnswer(503, json={"detail": "down for maintenance"}, headers=headers,
                          path=PRINTERS)


class TestAnUnavailableWebApiThatSaysWhen:
    """A 503 with a Retry-After is waited out and the request sent again."""

    def test_its_seconds_are_waited_and_the_request_sent_again(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        with capture_logs() as logs:
            assert _waited(client, fake_api, clock, _unavailable("7")) == pytest.approx(7)
        assert len(_sent(fake_api)) == 3
        [event] = [e for e in logs if e["event"] == "web_api_unavailable"]
        assert (event["status"], event["retry_after_s"], event["log_level"]) == (
            503, 7, "warning")

    def test_its_http_date_is_waited(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        when = http_date(clock.now() + timedelta(seconds=42), usegmt=True)
        assert _waited(client, fake_api, clock, _unavailable(when)) == pytest.approx(42, abs=1)

    def test_it_holds_back_no_other_request(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # Not a rate limit: the limiter (and a ledger's other processes) are not held.
        client = make_client(max_wait_s=10)
        _refusal(client, fake_api, _unavailable("1800"), CloudUnavailableError)
        client.list_printers()
        assert clock.slept == 0

    def test_without_retry_after_it_fails_at_once_as_before(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        error = _refusal(client, fake_api, _unavailable(), CloudUnavailableError)
        assert error.retry_after_s is None
        assert f"{PRINTERS}: the Web API failed (HTTP 503) (" in str(error)
        assert clock.slept == 0 and len(_sent(fake_api)) == 2

    def test_the_longest_wait_itself_is_waited_once_and_the_next_is_past_the_total(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # Session 44: each of its tries waited the hour, three hours for one call; the hour
        # is now what the call's waits come to in all.
        hour = _unavailable(f"{MAX_RETRY_AFTER_S:.0f}")
        client.list_printers()
        fake_api.script(*[hour] * 4)
        with pytest.raises(CloudUnavailableError) as caught:
            client.list_printers()
        error = caught.value
        assert clock.slept == pytest.approx(MAX_RETRY_AFTER_S)
        assert (f"{PRINTERS}: the Web API failed and asked to wait {MAX_RETRY_AFTER_S:.0f} s "
                f"(until {resume_time(clock.now(), MAX_RETRY_AFTER_S)}), longer than the 0 s "
                f"left of the {MAX_RETRY_AFTER_TOTAL_S:.0f} s a request waits for Retry-After "
                f"answers in all (it had waited {MAX_RETRY_AFTER_S:.0f} s): not waited, the "
                "request was not sent again (HTTP 503) (") in str(error)


class TestTheTotalOfOneRequestsWaits:
    """Each Retry-After within the hour, a call's waits together come to the hour at most
    (retryafter.MAX_RETRY_AFTER_TOTAL_S); the error of the one not waited says so."""

    def test_a_503s_second_wait_past_what_is_left_is_not_waited_and_said(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client.list_printers()
        fake_api.script(_unavailable("2000"), _unavailable("2000"))
        with capture_logs() as logs, pytest.raises(CloudUnavailableError) as caught:
            client.list_printers()

        assert clock.slept == pytest.approx(2000) and len(_sent(fake_api)) == 3
        assert caught.value.retry_after_s == 2000
        assert ("asked to wait 2000 s (until "
                f"{resume_time(clock.now(), 2000)}), longer than the 1600 s left of the "
                f"{MAX_RETRY_AFTER_TOTAL_S:.0f} s a request waits for Retry-After answers in "
                "all (it had waited 2000 s): not waited") in str(caught.value)
        events = [e for e in logs if e["event"] == "web_api_unavailable"]
        assert [(e["waited_s"], e["log_level"]) for e in events] == [
            (0, "warning"), (2000, "info")]

    def test_a_429s_too(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        limited = ScriptedAnswer(429, headers={"Retry-After": "2000"}, path=PRINTERS)
        client.list_printers()
        fake_api.script(limited, limited)
        with pytest.raises(CloudRateLimitError) as caught:
            client.list_printers()

        assert clock.slept == pytest.approx(2000) and len(_sent(fake_api)) == 3
        assert "longer than the 1600 s left of the" in str(caught.value)

    def test_waits_within_the_total_are_all_waited(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client.list_printers()
        fake_api.script(*[_unavailable(f"{MAX_RETRY_AFTER_TOTAL_S / 3:.0f}")] * 3)
        client.list_printers()  # three waits of a third: the whole total, and answered
        assert clock.slept == pytest.approx(MAX_RETRY_AFTER_TOTAL_S)
        assert len(_sent(fake_api)) == 1 + 4


class TestAnAnswerThatCarriesNoWait:
    """Only a 429 and a 503 say when to come back: another status's Retry-After is not read."""

    def test_a_500s_retry_after_is_not_said(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        broken = ScriptedAnswer(500, json={"detail": "boom"}, headers={"Retry-After": "120"},
                                path=PRINTERS)
        error = _refusal(client, fake_api, broken, CloudUnavailableError)
        assert error.retry_after_s is None
        assert f"{PRINTERS}: the Web API failed (HTTP 500) (" in str(error)
        assert str(error).endswith("try again later)")
        assert clock.slept == 0


class TestAWaitLongerThanTheRequestTakes:
    """A Retry-After past the longest wait fails the request at once, saying until when."""

    def test_a_503_for_a_day_is_not_waited_and_says_so(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        error = _refusal(client, fake_api, _unavailable(str(DAY_S)), CloudUnavailableError)
        until = resume_time(clock.now(), DAY_S)
        assert error.retry_after_s == DAY_S
        assert (f"the Web API failed and asked to wait {DAY_S} s (until {until}), longer than "
                f"the {MAX_RETRY_AFTER_S:.0f} s a request waits for a Retry-After at most: not "
                "waited, the request was not sent again (HTTP 503)") in str(error)
        assert error.hint is not None and f"try again after {until}" in error.hint
        assert clock.slept == 0 and len(_sent(fake_api)) == 2

    def test_a_429_for_a_day_does_not_hang_a_client_that_waits(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        day = ScriptedAnswer(429, headers={"Retry-After": str(DAY_S)}, path=PRINTERS)
        error = _refusal(client, fake_api, day, CloudRateLimitError)
        assert error.retry_after_s == DAY_S and "not waited" in str(error)
        # The hold stands for every request of the day, each refused at once, not slept.
        with pytest.raises(CloudRateLimitError) as again:
            client.list_printers()
        assert again.value.retry_after_s == pytest.approx(DAY_S)
        assert clock.slept == 0 and len(_sent(fake_api)) == 2

    def test_a_503_longer_than_the_callers_wait_is_its_error_with_the_time(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        error = _refusal(make_client(max_wait_s=10), fake_api, _unavailable("120"),
                         CloudUnavailableError)
        assert error.retry_after_s == 120
        assert f"asked to wait 120 s (until {resume_time(clock.now(), 120)}) (HTTP 503)" in (
            str(error))
        assert clock.slept == 0


class TestTheTokenEndpoint:
    """The token request goes through the same rule (its waited 503: test_cloud_client.py,
    ``test_a_429_or_503_on_the_token_endpoint_is_retried_too``)."""

    def test_a_503_for_a_day_says_until_when(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        fake_api.script(ScriptedAnswer(503, headers={"Retry-After": str(DAY_S)},
                                       path=TOKEN_PATH))
        with pytest.raises(CloudUnavailableError) as caught:
            client.list_printers()
        assert caught.value.retry_after_s == DAY_S
        assert f"until {resume_time(clock.now(), DAY_S)}" in str(caught.value)
        assert clock.slept == 0
