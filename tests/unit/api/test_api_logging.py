"""Each request logs one structured debug event, and credentials never reach a log."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import RequestRejectedError, ServerUnreachableError
from preform_pipeline.logging import capture_logs
from tests.unit.api.api_fakes import ScriptedServer, ok, scene_json

PASSWORD = "hunter2-correct-horse"
TOKEN = "eyJhbGciOi.secret-token-value"


class TestRequestEvents:
    """One api_request event per exchange: method, path, operation, status, elapsed_ms."""

    def test_a_successful_request_logs_its_status_and_duration(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        def slow(request: httpx.Request) -> httpx.Response:
            clock.advance(0.25)
            return ok(scene_json())

        server.on("GET", "/scene/scene-1/", slow)

        with capture_logs() as events:
            client.get_scene("scene-1")

        requests = [e for e in events if e["event"] == "api_request"]
        assert [e["path"] for e in requests] == ["/", "/scene/scene-1/"]
        last = requests[-1]
        assert last["log_level"] == "debug"
        assert last["method"] == "GET"
        assert last["operation"] == "getScene"
        assert last["status"] == 200
        assert last["elapsed_ms"] == pytest.approx(250.0)

    def test_a_request_without_an_answer_logs_the_failure(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        def reset(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadError("connection reset by peer", request=request)

        server.on("GET", "/scene/scene-1/", reset)

        with capture_logs() as events, pytest.raises(ServerUnreachableError):
            client.get_scene("scene-1")

        last = [e for e in events if e["event"] == "api_request"][-1]
        assert last["status"] is None
        assert last["error"] == "ReadError"


class TestSecrets:
    """Login credentials and returned tokens appear in no log event and no repr."""

    @pytest.mark.parametrize(
        "login",
        [
            lambda c: c.login("ada@example.com", PASSWORD),
            lambda c: c.login_with_token(TOKEN),
        ],
        ids=["password", "access_token"],
    )
    def test_credentials_are_not_logged(
        self,
        login: Callable[[PreFormClient], object],
        server: ScriptedServer,
        client: PreFormClient,
    ) -> None:
        server.on("POST", "/login/", ok({"access_token": TOKEN, "refresh_token": TOKEN}))

        with capture_logs() as events:
            tokens = login(client)

        assert any(e["event"] == "api_request" and e["path"] == "/login/" for e in events)
        text = repr(events) + repr(tokens)
        assert PASSWORD not in text
        assert TOKEN not in text

    def test_a_rejected_login_does_not_echo_the_password(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on(
            "POST",
            "/login/",
            httpx.Response(400, json={"error": {"code": "BAD_LOGIN", "message": "wrong password"}}),
        )

        with capture_logs() as events, pytest.raises(RequestRejectedError) as caught:
            client.login("ada@example.com", PASSWORD)

        assert PASSWORD not in repr(events) + str(caught.value) + repr(caught.value.request)
