"""Long operations sent as one blocking request: no polls, a wait bounded by the deadline,
and a timeout that says which limit ended it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import ServerTimeoutError
from tests.unit.api.api_fakes import ScriptedServer, ok, scene_json

SUPPORT = "/scene/scene-1/auto-support/"
LAYOUT = "/scene/scene-1/auto-layout/"


def _read_timeout(request: httpx.Request) -> float:
    timeouts = request.extensions["timeout"]
    assert isinstance(timeouts, dict)
    value = timeouts["read"]
    assert isinstance(value, float)
    return value


def _hang(clock: ManualClock) -> Callable[[httpx.Request], httpx.Response]:
    """An answer that never comes: the client's read timeout passes on ``clock``."""

    def hang(request: httpx.Request) -> httpx.Response:
        clock.advance(_read_timeout(request))
        raise httpx.ReadTimeout("timed out", request=request)

    return hang


class TestOneRequest:
    """A blocking client sends each operation once, waits for its answer, and never polls."""

    def test_the_operation_is_one_request_and_progress_ends_at_one(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on("POST", LAYOUT, ok(scene_json(model_ids=("m-1", "m-2"))))
        client = make_client(async_operations=False)
        seen: list[float] = []

        scene = client.auto_layout("scene-1", progress=seen.append)

        assert scene.model_ids == ("m-1", "m-2")
        assert [(s.method, s.path, s.params) for s in server.calls()] == [
            ("POST", LAYOUT, {})
        ]
        assert seen == [1.0]

    def test_the_wait_is_bounded_by_the_deadline_not_the_request_timeout(
        self, server: ScriptedServer, clock: ManualClock,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        waits: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            waits.append(_read_timeout(request))
            return ok({})

        server.on("POST", SUPPORT, answer)
        client = make_client(async_operations=False, timeout=600.0)

        client.auto_support("scene-1", deadline=clock.monotonic() + 42.0)

        assert waits == [pytest.approx(42.0)]

    def test_requests_carry_the_client_headers(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        headers: list[httpx.Headers] = []

        def answer(request: httpx.Request) -> httpx.Response:
            headers.append(request.headers)
            return ok({})

        server.on("POST", SUPPORT, answer)
        make_client(async_operations=False).auto_support("scene-1")

        assert headers[0]["accept"] == "application/json"
        assert headers[0]["user-agent"].startswith("preform-pipeline/")
        assert headers[0]["content-type"] == "application/json"


class TestTimeouts:
    """A blocking operation that outlives its wait says whether its deadline ended it."""

    def test_the_deadline_ending_the_wait_is_named(
        self, server: ScriptedServer, clock: ManualClock,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        server.on("POST", SUPPORT, _hang(clock))
        client = make_client(async_operations=False, timeout=600.0)

        with pytest.raises(ServerTimeoutError) as caught:
            client.auto_support("scene-1", deadline=clock.monotonic() + 3.0)

        assert "deadline passed" in caught.value.message
        assert caught.value.request is not None
        assert caught.value.request.operation == "autoSupport"

    def test_the_request_timeout_ending_the_wait_is_not_called_the_deadline(
        self, server: ScriptedServer, clock: ManualClock,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        server.on("POST", SUPPORT, _hang(clock))
        client = make_client(async_operations=False, timeout=10.0)

        with pytest.raises(ServerTimeoutError) as caught:
            client.auto_support("scene-1", deadline=clock.monotonic() + 900.0)

        assert "deadline" not in caught.value.message
        assert "10 s" in caught.value.message

    def test_a_deadline_already_past_sends_nothing(
        self, server: ScriptedServer, clock: ManualClock,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        client = make_client(async_operations=False, check_version_on_first_use=False)

        with pytest.raises(ServerTimeoutError) as caught:
            client.auto_support("scene-1", deadline=clock.monotonic() - 1.0)

        assert "before the request was sent" in caught.value.message
        assert server.sent == []
