"""Fixtures for the API client tests: a scripted server, a fake clock, clients on both, and a
hostile front (real HTTP on loopback) that answers as PreFormServer 0.9.12 until told
otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from tests.hostile_http import HostileFront, reply, running_front
from tests.unit.api.api_fakes import BASE_URL, ScriptedServer

#: The version answer of a PreFormServer this client supports.
VERSION_ANSWER = b'{"version": "0.9.12"}'


@pytest.fixture
def front() -> Iterator[HostileFront]:
    """:mod:`tests.hostile_http`'s front, answering ``GET /`` with a supported version; a
    test scripts the answers under test, and a failure inside the front fails it."""
    with running_front() as front:
        front.on("GET", "/", reply(200, VERSION_ANSWER))
        yield front
        front.check()


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
