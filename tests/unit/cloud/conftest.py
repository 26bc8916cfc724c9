"""Fixtures for the Web API client tests: a manual clock, an in-process fake Web API, a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, RateLimiter, WebApiClient
from preform_pipeline.simulator.cloud.testing import FakeWebApi

ClientFactory = Callable[..., WebApiClient]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake_api() -> FakeWebApi:
    return FakeWebApi()


@pytest.fixture
def credentials(fake_api: FakeWebApi) -> Credentials:
    return Credentials(fake_api.client_id, fake_api.client_secret)


@pytest.fixture
def make_client(
    fake_api: FakeWebApi, credentials: Credentials, clock: ManualClock
) -> Iterator[ClientFactory]:
    """Build clients on the fake API and the manual clock; closes them after the test."""
    made: list[WebApiClient] = []

    def make(**overrides: Any) -> WebApiClient:
        creds = overrides.pop("credentials", credentials)
        options: dict[str, Any] = {
            "base_url": fake_api.base_url,
            "transport": fake_api.transport(),
            "clock": clock,
            "sleep": clock.sleep,
        }
        options.update(overrides)
        client = WebApiClient(creds, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> WebApiClient:
    return make_client()


@pytest.fixture
def limiter(clock: ManualClock) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep)
