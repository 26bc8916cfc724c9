"""Fixtures for the verification tests: a manual clock, the in-process fake Web API, a client
on both, a job store in the test's folder (helpers: verify_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.simulator.cloud.testing import FakeWebApi

ClientFactory = Callable[..., WebApiClient]


@pytest.fixture
def fake_api() -> FakeWebApi:
    return FakeWebApi(default_per_page=100)


@pytest.fixture
def make_client(fake_api: FakeWebApi, clock: ManualClock) -> Iterator[ClientFactory]:
    made: list[WebApiClient] = []

    def make(**overrides: Any) -> WebApiClient:
        options: dict[str, Any] = {
            "base_url": fake_api.base_url,
            "transport": fake_api.transport(),
            "clock": clock,
            "sleep": clock.sleep,
        }
        options.update(overrides)
        client = WebApiClient(Credentials(fake_api.client_id, fake_api.client_secret), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> WebApiClient:
    return make_client()
