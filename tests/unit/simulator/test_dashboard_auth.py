"""The Dashboard simulator's tokens and rate limits, on a manual clock."""

from __future__ import annotations

import base64

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.logging import capture_logs
from preform_pipeline.simulator.cloud.auth import AuthFailure, TokenStore
from preform_pipeline.simulator.cloud.limits import RateLimits, SlidingWindow

CLIENT = "app-id"
SECRET = "s3cret-value-never-logged"
GOOD = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tokens(clock: ManualClock) -> TokenStore:
    return TokenStore(CLIENT, SECRET, lifetime_s=60, clock=clock.monotonic)


def refusal(call: object, *args: object) -> AuthFailure:
    assert callable(call)
    with pytest.raises(AuthFailure) as caught:
        call(*args)
    return caught.value


class TestTokenEndpoint:
    """Tokens are issued for the right credentials only, answered as the contract shows."""

    def test_the_right_credentials_get_a_bearer_token(self, tokens: TokenStore) -> None:
        answer = tokens.answer(tokens.grant(GOOD))

        assert answer["token_type"] == "Bearer"
        assert answer["expires_in"] == 60
        assert answer["scope"] == "developer-api"
        assert tokens.authenticate(f"Bearer {answer['access_token']}") == CLIENT

    def test_http_basic_credentials_work_too(self, tokens: TokenStore) -> None:
        basic = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()

        grant = tokens.grant({"grant_type": "client_credentials"}, f"Basic {basic}")

        assert grant.user == CLIENT

    @pytest.mark.parametrize(
        ("form", "status", "error"),
        [
            ({**GOOD, "client_secret": "wrong"}, 400, "invalid_grant"),
            ({**GOOD, "client_id": "someone-else"}, 401, "invalid_client"),
            ({"grant_type": "client_credentials"}, 401, "invalid_client"),
            ({**GOOD, "grant_type": "password"}, 400, "unsupported_grant_type"),
            ({k: v for k, v in GOOD.items() if k != "grant_type"}, 400, "invalid_request"),
        ],
    )
    def test_anything_else_is_refused_with_an_oauth_error(
        self, tokens: TokenStore, form: dict[str, str], status: int, error: str
    ) -> None:
        failure = refusal(tokens.grant, form)

        assert (failure.status, failure.body["error"]) == (status, error)
        assert tokens.issued == 0

    def test_secrets_and_tokens_never_reach_the_log(self, tokens: TokenStore) -> None:
        with capture_logs() as logs:
            grant = tokens.grant(GOOD)
            tokens.revoke({"token": grant.value, "client_id": CLIENT, "client_secret": SECRET})
            refusal(tokens.grant, {**GOOD, "client_secret": "wrong"})

        text = repr(logs) + repr(grant) + repr(tokens)
        assert SECRET not in text
        assert grant.value not in text


class TestTokenLifetime:
    """A token works until its lifetime has passed or it is revoked."""

    def test_it_expires_after_its_lifetime(self, tokens: TokenStore, clock: ManualClock) -> None:
        header = f"Bearer {tokens.grant(GOOD).value}"
        clock.advance(59.9)
        assert tokens.authenticate(header) == CLIENT

        clock.advance(0.1)
        failure = refusal(tokens.authenticate, header)

        assert failure.status == 401
        assert "expired" in failure.body["detail"]

    def test_a_revoked_token_is_refused(self, tokens: TokenStore) -> None:
        grant = tokens.grant(GOOD)

        known = tokens.revoke({"token": grant.value, "client_id": CLIENT, "client_secret": SECRET})

        assert known is True
        assert refusal(tokens.authenticate, f"Bearer {grant.value}").status == 401

    def test_revoking_needs_the_client_secret(self, tokens: TokenStore) -> None:
        grant = tokens.grant(GOOD)

        failure = refusal(
            tokens.revoke, {"token": grant.value, "client_id": CLIENT, "client_secret": "no"}
        )

        assert (failure.status, failure.body) == (401, {"error": "invalid_client"})
        assert tokens.authenticate(f"Bearer {grant.value}") == CLIENT

    @pytest.mark.parametrize("token", [None, ""], ids=["absent", "empty"])
    @pytest.mark.parametrize("secret", [SECRET, "no"], ids=["right secret", "wrong secret"])
    def test_revoking_no_token_is_an_invalid_request_before_the_secret_is_checked(
        self, tokens: TokenStore, token: str | None, secret: str
    ) -> None:
        grant = tokens.grant(GOOD)
        form = {"client_id": CLIENT, "client_secret": secret}
        if token is not None:
            form["token"] = token

        failure = refusal(tokens.revoke, form)

        assert (failure.status, failure.body) == (
            400, {"error": "invalid_request", "error_description": "Missing token parameter."}
        )
        assert tokens.revoked == 0
        assert tokens.authenticate(f"Bearer {grant.value}") == CLIENT

    @pytest.mark.parametrize("header", [None, "", "Bearer", "Token abc", "Bearer unknown"])
    def test_requests_without_a_live_token_are_unauthorised(
        self, tokens: TokenStore, header: str | None
    ) -> None:
        assert refusal(tokens.authenticate, header).status == 401


class TestSlidingWindows:
    """At most N requests per key in any window; a refusal says when to come back."""

    def test_the_request_past_the_limit_is_refused_until_the_window_moves(
        self, clock: ManualClock
    ) -> None:
        window = SlidingWindow(3, 10.0, "10 s", clock.monotonic)
        taken = [window.take("ip")]
        clock.advance(4)
        taken += [window.take("ip"), window.take("ip")]

        refused = window.take("ip")
        clock.advance(5.5)
        still_refused = window.take("ip")
        clock.advance(0.5)
        allowed_again = window.take("ip")

        assert taken == [None, None, None]
        assert refused is not None and refused.retry_after_s == 6
        assert still_refused is not None and still_refused.retry_after_s == 1
        assert allowed_again is None

    def test_refused_requests_do_not_count(self, clock: ManualClock) -> None:
        window = SlidingWindow(1, 1.0, "second", clock.monotonic)
        window.take("k")
        for _ in range(5):
            window.take("k")

        assert window.used("k") == 1

    def test_keys_are_counted_apart_and_zero_means_no_limit(self, clock: ManualClock) -> None:
        limits = RateLimits(per_second=1, hourly=0, clock=clock.monotonic)

        assert limits.take_ip("10.0.0.1") is None
        assert limits.take_ip("10.0.0.2") is None
        assert limits.take_ip("10.0.0.1") is not None
        assert all(limits.take_user("u") is None for _ in range(5000))

    def test_the_hourly_limit_tells_how_long_to_wait(self, clock: ManualClock) -> None:
        limits = RateLimits(per_second=0, hourly=2, clock=clock.monotonic)
        limits.take_user("u")
        clock.advance(100)
        limits.take_user("u")

        refused = limits.take_user("u")

        assert refused is not None
        assert refused.retry_after_s == 3500
        assert "1500" not in refused.detail() and "2 requests per hour" in refused.detail()
