"""Fixtures for the API client tests: a scripted server, a fake clock, clients on both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from tests.unit.api.api_fakes import BASE_URL, ScriptedServer


@pytest.fixture
def server() -> ScriptedServer:
    return ScriptedServer()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_client(
    server: ScriptedServer, clock: ManualClock
) -> Iterator[Callable[..., PreFormClient]]:
    made: list[PreFormClient] = []

    def make(**kwargs: Any) -> PreFormClient:
        kwargs.setdefault("transport", server.transport())
        kwargs.setdefault("clock", clock)
        client = PreFormClient(BASE_URL, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., PreFormClient]) -> PreFormClient:
    return make_client()
