"""The client reads the server's API version once and refuses versions it does not support."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from preform_pipeline.api import DEFAULT_SUPPORTED_API_VERSIONS, ApiVersion, PreFormClient
from preform_pipeline.api.versions import is_supported, parse_version, require_supported
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import PermanentApiError, UnsupportedApiVersionError
from tests.unit.api.api_fakes import ScriptedServer, ok, scene_json

SCENE = "/scene/scene-1/"
LAYOUT = "/scene/scene-1/auto-layout/"


class TestLazyCheckOfLongOperations:
    """A long operation as a client's first call checks the version first, once, and
    the check's own time counts against the operation's deadline."""

    def test_the_version_is_read_before_the_first_operation_and_only_then(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on("POST", LAYOUT, ok(scene_json()))
        client = make_client(async_operations=False)

        client.auto_layout("scene-1")
        client.auto_layout("scene-1")

        assert [s.path for s in server.sent] == ["/", LAYOUT, LAYOUT]

    def test_an_unsupported_server_gets_no_operation(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.version = "1.2.0"
        server.on("POST", LAYOUT, ok(scene_json()))

        with pytest.raises(UnsupportedApiVersionError):
            make_client(async_operations=False).auto_layout("scene-1")

        assert server.calls() == []

    def test_the_operation_waits_only_what_the_check_left_of_the_deadline(
        self, server: ScriptedServer, clock: ManualClock,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        def slow_version(request: httpx.Request) -> httpx.Response:
            clock.advance(30.0)
            return httpx.Response(200, json={"version": "0.9.12"})

        waits: list[float] = []

        def layout(request: httpx.Request) -> httpx.Response:
            timeouts = request.extensions["timeout"]
            waits.append(timeouts["read"])
            return httpx.Response(200, json=scene_json())

        server.on("GET", "/", slow_version)
        server.on("POST", LAYOUT, layout)
        client = make_client(async_operations=False)

        client.auto_layout("scene-1", deadline=client.deadline_in(100.0))

        assert waits == [pytest.approx(70.0)]


class TestLazyCheck:
    """Before its first call the client checks the version, once."""

    def test_the_contract_version_is_accepted_and_checked_once(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", SCENE, ok(scene_json()))

        client.get_scene("scene-1")
        client.get_scene("scene-1")

        assert [s.path for s in server.sent] == ["/", SCENE, SCENE]
        assert client.api_version == ApiVersion("0.9.12")

    @pytest.mark.parametrize("version", ["1.0.0", "0.8.9", "2.1"])
    def test_an_unsupported_version_is_refused_before_the_call(
        self, version: str, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.version = version
        server.on("GET", SCENE, ok(scene_json()))

        with pytest.raises(UnsupportedApiVersionError) as caught:
            client.get_scene("scene-1")

        message = str(caught.value)
        assert f"Local API {version}" in message
        assert ">=0.9.0,<1.0.0" in message
        assert "PreFormServer release" in message
        assert isinstance(caught.value, PermanentApiError)
        assert server.calls() == []

    def test_an_unsupported_server_is_refused_on_every_call(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.version = "1.2.0"

        for _ in range(2):
            with pytest.raises(UnsupportedApiVersionError):
                client.list_materials()

        assert [s.path for s in server.sent] == ["/", "/"]

    def test_a_version_that_is_not_a_number_is_refused(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.version = "banana"

        with pytest.raises(UnsupportedApiVersionError, match="not a version number"):
            client.list_materials()

    def test_a_failed_check_is_retried_on_the_next_call(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        def down(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        server.on("GET", "/", down, ok({"version": "0.9.12"}))
        server.on("GET", SCENE, ok(scene_json()))

        with pytest.raises(Exception, match="unreachable"):
            client.get_scene("scene-1")
        client.get_scene("scene-1")

        assert [s.path for s in server.sent] == ["/", "/", SCENE]

    def test_the_lazy_check_can_be_turned_off(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.version = "7.0.0"
        server.on("GET", SCENE, ok(scene_json()))
        client = make_client(check_version_on_first_use=False)

        client.get_scene("scene-1")

        assert [s.path for s in server.sent] == [SCENE]


class TestExplicitCheck:
    """check_version() checks on demand against the configured range."""

    def test_check_version_returns_the_version(self, client: PreFormClient) -> None:
        assert client.check_version().version == "0.9.12"

    def test_a_custom_range_is_honoured(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        client = make_client(supported_versions=("0.9.20", "0.10.0"))

        with pytest.raises(UnsupportedApiVersionError, match=r">=0.9.20,<0.10.0"):
            client.check_version()


class TestVersionNumbers:
    """Version strings compare numerically, with the lower bound in and the upper bound out."""

    @pytest.mark.parametrize(
        ("text", "parsed"),
        [
            ("0.9.12", (0, 9, 12)),
            ("1", (1, 0, 0)),
            ("v0.9.3-beta", (0, 9, 3)),
            ("0.10", (0, 10, 0)),
        ],
    )
    def test_parse(self, text: str, parsed: tuple[int, int, int]) -> None:
        assert parse_version(text) == parsed

    @pytest.mark.parametrize(
        ("version", "supported"),
        [("0.9.0", True), ("0.9.12", True), ("0.9.99", True), ("0.8.99", False), ("1.0.0", False)],
    )
    def test_range(self, version: str, supported: bool) -> None:
        assert is_supported(version, DEFAULT_SUPPORTED_API_VERSIONS) is supported

    def test_require_supported_returns_the_parsed_version(self) -> None:
        assert require_supported("0.9.12") == (0, 9, 12)
