"""The Local API client against a server (or proxy, or network) that misbehaves.

Each test talks real HTTP over loopback to :mod:`tests.hostile_http`'s front, which answers
``GET /`` as a PreFormServer 0.9.12 would and the request under test as a broken one does.
Both ways the client reaches a server are tried: its own transport (plain ``http://``) and
httpx's (``https://`` servers, and any ``transport=`` given).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import TypeVar

import httpx
import pytest

from preform_pipeline.answers import MAX_ANSWER_BYTES
from preform_pipeline.api import PreFormClient, SceneSettings
from preform_pipeline.errors import (
    ApiError,
    RequestRejectedError,
    ServerInternalError,
    ServerTimeoutError,
    ServerUnreachableError,
    TransientApiError,
    UnsupportedApiVersionError,
)
from tests.hostile_http import (
    NGINX_HTTPS_PORT_PAGE,
    Answer,
    HostileFront,
    drip,
    huge,
    raw,
    reply,
    running_front,
)

SCENE = "/scene/abc/"
ApiErrorT = TypeVar("ApiErrorT", bound=ApiError)
FORM4 = SceneSettings("FORM-4-0", "FLGPBK05", 0.05, "DEFAULT")

TRANSPORTS = [pytest.param(False, id="own-transport"), pytest.param(True, id="httpx-transport")]



def _client(front: HostileFront, httpx_transport: bool, timeout: float) -> PreFormClient:
    transport = httpx.HTTPTransport() if httpx_transport else None
    return PreFormClient(front.url, timeout=timeout, transport=transport)


def _scene_error(
    front: HostileFront, httpx_transport: bool, answer: Answer, kind: type[ApiErrorT]
) -> ApiErrorT:
    """The ``kind`` of error ``getScene`` raises when the front answers it with ``answer``."""
    front.on("GET", SCENE, answer)
    client = _client(front, httpx_transport, timeout=5)
    try:
        with pytest.raises(kind) as caught:
            client.get_scene("abc")
    finally:
        client.close()
    return caught.value


class TestHugeAnswers:
    """A body far larger than any Local API answer is refused, and memory stays bounded."""

    @pytest.mark.parametrize("httpx_transport", TRANSPORTS)
    @pytest.mark.parametrize("framing", ["length", "chunked", "close"])
    def test_a_200_mb_body_is_refused_within_bounded_memory(
        self, front: HostileFront, framing: str, httpx_transport: bool
    ) -> None:
        front.on("GET", SCENE, huge(200 * 1024 * 1024, framing=framing))
        client = _client(front, httpx_transport, timeout=10)
        client.check_version()
        tracemalloc.start()
        try:
            with pytest.raises(ServerInternalError) as caught:
                client.get_scene("abc")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            client.close()
        error = caught.value
        assert "over the 32 MiB limit" in error.message
        assert "something other than PreFormServer" in (error.hint or "")
        assert error.request is not None and error.request.operation == "getScene"
        # Read whole, the 200 MB took 630 MB; the refusal keeps at most the limit in hand.
        assert peak < 2 * MAX_ANSWER_BYTES


class TestSlowAnswers:
    """An answer that keeps arriving, a byte at a time, still ends with its request's time."""

    @pytest.mark.parametrize("httpx_transport", TRANSPORTS)
    def test_a_dripping_answer_times_out_at_the_request_timeout(
        self, front: HostileFront, httpx_transport: bool
    ) -> None:
        # Each byte comes well within any per-read timeout; the whole takes 6 s.
        front.on("GET", SCENE, drip(200, b'{"id": "abc", "models": []}' + b" " * 32,
                                    every_s=0.1))
        client = _client(front, httpx_transport, timeout=1.0)
        client.check_version()
        started = time.monotonic()
        with pytest.raises(ServerTimeoutError) as caught:
            client.get_scene("abc")
        client.close()
        assert time.monotonic() - started < 3.0
        assert "no answer within 1 s" in caught.value.message


class TestSceneGone:
    """A server that lost the build's scene (restarted between two calls) fails the attempt,
    not the build: the error is transient, so the build starts again."""

    @pytest.mark.parametrize(
        ("method", "path", "status", "body"),
        [
            pytest.param("GET", SCENE, 404, b'{"detail": "Not Found"}', id="getScene-404"),
            pytest.param("POST", SCENE + "auto-orient/", 400,
                         b'{"error": {"code": "SCENE_NOT_FOUND", "message": "no scene abc"}}',
                         id="autoOrient-SCENE_NOT_FOUND"),
        ],
    )
    def test_a_forgotten_scene_is_a_transient_error(
        self, front: HostileFront, method: str, path: str, status: int, body: bytes
    ) -> None:
        front.on(method, path, reply(status, body))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(TransientApiError) as caught:
            if method == "GET":
                client.get_scene("abc")
            else:
                client.auto_orient("abc")
        assert "no longer has scene abc (was it restarted?)" in caught.value.message
        assert caught.value.status_code == status

    def test_another_not_found_stays_a_refusal(self, front: HostileFront) -> None:
        front.on("POST", SCENE + "auto-orient/", reply(
            400, b'{"error": {"code": "MODEL_NOT_FOUND", "message": "no model m1"}}'))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(RequestRejectedError) as caught:
            client.auto_orient("abc")
        assert caught.value.code == "MODEL_NOT_FOUND"


class TestOlderServer:
    """An endpoint the server does not have is said as such, with the versions that matter."""

    @pytest.mark.parametrize("status", [404, 405])
    def test_a_missing_endpoint_names_both_versions(
        self, front: HostileFront, status: int
    ) -> None:
        front.rules.clear()
        front.on("GET", "/", reply(200, b'{"version": "0.9.3"}'))
        front.on("POST", SCENE + "auto-orient/", reply(status, b'{"detail": "Not Found"}'))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(RequestRejectedError) as caught:
            client.auto_orient("abc")
        error = caught.value
        assert error.message.endswith(
            f"the server has no POST /scene/abc/auto-orient/ endpoint (autoOrient; HTTP "
            f"{status}): it speaks Local API 0.9.3, older than the 0.9.12 this client is "
            "written against"
        )
        assert error.hint == "update PreFormServer to a release with Local API 0.9.12 or later"

    def test_a_missing_endpoint_on_a_current_server_points_at_a_proxy(
        self, front: HostileFront
    ) -> None:
        front.on("POST", SCENE + "auto-orient/", reply(404, b""))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(RequestRejectedError) as caught:
            client.auto_orient("abc")
        assert caught.value.message.endswith(", although it speaks Local API 0.9.12")
        assert "a proxy in front of PreFormServer" in (caught.value.hint or "")

    @pytest.mark.parametrize("status", [404, 405])
    def test_a_server_without_the_version_endpoint_is_told_the_versions_needed(
        self, status: int
    ) -> None:
        with running_front() as front:
            front.on("GET", "/", reply(status, b'{"detail": "Not Found"}'))
            with PreFormClient(front.url, timeout=5) as client, \
                    pytest.raises(UnsupportedApiVersionError) as caught:
                client.create_scene(FORM4)
            front.check()
        assert caught.value.message.endswith(
            f"the server has no Local API version endpoint (GET / answered {status}): it is not "
            "a PreFormServer, or one older than Local API 0.9.0; this client supports "
            ">=0.9.0,<1.0.0 (written against 0.9.12)"
        )
        # Nothing else was sent to a server that is not one.
        assert [r.path for r in front.seen] == ["/"]

    def test_a_missing_endpoint_before_the_version_is_known(self, front: HostileFront) -> None:
        front.on("POST", SCENE + "auto-orient/", reply(405, b""))
        with PreFormClient(front.url, timeout=5, check_version_on_first_use=False) as client, \
                pytest.raises(RequestRejectedError) as caught:
            client.auto_orient("abc")
        assert caught.value.message.endswith(
            "(autoOrient; HTTP 405): its Local API may be older than the 0.9.12 this client "
            "is written against"
        )


class TestNotThePreFormServer:
    """A redirect or a TLS answer is said as what it is, with what helps."""

    @pytest.mark.parametrize("httpx_transport", TRANSPORTS)
    def test_a_redirect_names_where_it_points(
        self, front: HostileFront, httpx_transport: bool
    ) -> None:
        portal = (("Location", "http://portal.example/login?token=abc"),)
        error = _scene_error(front, httpx_transport, reply(302, b"", headers=portal),
                             ServerInternalError)
        assert error.message.endswith(
            "server answered 302, a redirect to http://portal.example/login, which "
            "PreFormServer never sends"
        )
        assert "token=abc" not in str(error)
        assert "something other than PreFormServer" in (error.hint or "")

    def test_a_tls_answer_to_plain_http_asks_for_https(self, front: HostileFront) -> None:
        front.on("GET", SCENE, raw(b"\x15\x03\x01\x00\x02\x02\x50"))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerUnreachableError) as caught:
            client.get_scene("abc")
        assert "the server answered in TLS, not plain HTTP" in caught.value.message
        assert caught.value.hint == "use the https:// address of this server"

    @pytest.mark.parametrize("httpx_transport", TRANSPORTS)
    def test_a_proxys_https_port_page_asks_for_https(
        self, front: HostileFront, httpx_transport: bool
    ) -> None:
        page = reply(400, NGINX_HTTPS_PORT_PAGE, content_type="text/html")
        error = _scene_error(front, httpx_transport, page, RequestRejectedError)
        assert error.message.endswith(
            '(getScene): the server answered HTTP 400 "The plain HTTP request was sent to '
            'HTTPS port": its address needs https://')
        assert error.hint == "use the https:// address of this server"
        assert error.status_code == 400

    def test_https_to_a_plain_server_asks_for_http(self, front: HostileFront) -> None:
        url = front.url.replace("http://", "https://")
        with PreFormClient(url, timeout=5) as client, \
                pytest.raises(ServerUnreachableError) as caught:
            client.get_api_version()
        assert "speak TLS at this address" in (caught.value.hint or "")
