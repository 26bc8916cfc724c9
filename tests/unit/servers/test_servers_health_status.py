"""Only a 200 answer to GET / is healthy: client errors, server errors and redirects are not."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from preform_pipeline.servers.health import check_health


class _StatusHandler(BaseHTTPRequestHandler):
    """Answers GET / with the status the test set, and a version body like PreFormServer's."""

    def do_GET(self) -> None:
        status: int = self.server.status  # type: ignore[attr-defined]
        body = b"" if status == 204 else json.dumps({"version": "0.9.12"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if 300 <= status < 400:
            self.send_header("Location", "/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def status_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _check(server: ThreadingHTTPServer, status: int) -> tuple[bool, str, str | None]:
    server.status = status  # type: ignore[attr-defined]
    result = check_health(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=5)
    return result.healthy, result.detail, result.version


class TestStatusCodes:
    """The health check reports a non-200 answer as unhealthy and names the status."""

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 429, 499])
    def test_a_client_error_answer_is_unhealthy(
        self, status_server: ThreadingHTTPServer, status: int
    ) -> None:
        healthy, detail, version = _check(status_server, status)
        assert not healthy
        assert detail == f"GET / answered HTTP {status}"
        assert version is None

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_a_server_error_answer_is_unhealthy(
        self, status_server: ThreadingHTTPServer, status: int
    ) -> None:
        healthy, detail, _ = _check(status_server, status)
        assert not healthy
        assert detail == f"GET / answered HTTP {status}"

    @pytest.mark.parametrize("status", [201, 204, 301, 302])
    def test_other_answers_than_200_are_unhealthy(
        self, status_server: ThreadingHTTPServer, status: int
    ) -> None:
        healthy, detail, _ = _check(status_server, status)
        assert not healthy
        assert str(status) in detail

    def test_a_200_answer_is_healthy_with_the_version_it_reports(
        self, status_server: ThreadingHTTPServer
    ) -> None:
        assert _check(status_server, 200) == (True, "version 0.9.12", "0.9.12")


def _answering(status: int, content: bytes, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=content)

    return httpx.MockTransport(handler)


class TestWhatTheResultSays:
    """Every result is a plain bool, a detail, the version or None, and the time it took."""

    def test_a_refused_connection_is_false_with_a_time_and_no_version(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        result = check_health(f"http://127.0.0.1:{port}", timeout_s=5)
        assert result.healthy is False
        assert result.version is None
        assert 0 < result.elapsed_s < 5

    def test_a_hung_server_is_false_after_the_timeout(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            result = check_health(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=0.2)
        assert (result.healthy, result.detail, result.version) == (
            False, "no answer within 0.2 s (hung)", None
        )
        assert 0.2 <= result.elapsed_s < 5

    def test_an_error_status_is_false_with_a_time(
        self, status_server: ThreadingHTTPServer
    ) -> None:
        status_server.status = 404  # type: ignore[attr-defined]
        result = check_health(f"http://127.0.0.1:{status_server.server_address[1]}", timeout_s=5)
        assert result.healthy is False
        assert 0 < result.elapsed_s < 5

    def test_a_healthy_answer_carries_its_time(self, status_server: ThreadingHTTPServer) -> None:
        status_server.status = 200  # type: ignore[attr-defined]
        result = check_health(f"http://127.0.0.1:{status_server.server_address[1]}", timeout_s=5)
        assert result.healthy is True
        assert 0 < result.elapsed_s < 5

    @pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"version": 12}', b"{}"])
    def test_a_200_without_a_version_string_is_refused_without_a_version(
        self, content: bytes
    ) -> None:
        seen: list[httpx.Request] = []
        result = check_health("http://server.test", transport=_answering(200, content, seen))
        assert (result.healthy, result.detail, result.version) == (
            False, "GET / answered HTTP 200 without a Local API version", None
        )
        assert result.refusal is not None and "another web server" in result.refusal

    def test_an_answer_without_a_content_type_is_said_as_content(self) -> None:
        result = check_health("http://server.test", transport=_answering(200, b"OK", []))
        assert result.refusal is not None
        assert result.refusal.startswith(
            "the server answered GET / with content that is not JSON, where a PreFormServer")

    def test_the_check_asks_for_the_root_below_the_servers_url(self) -> None:
        seen: list[httpx.Request] = []
        check_health("http://server.test/preform/BOX", transport=_answering(200, b"{}", seen))
        check_health("http://server.test/preform/BOX/", transport=_answering(200, b"{}", seen))
        assert [str(r.url) for r in seen] == ["http://server.test/preform/BOX/"] * 2
        assert [r.method for r in seen] == ["GET", "GET"]

    def test_a_proxy_from_the_environment_is_never_used(
        self, status_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A user's proxy settings must not sit between the pipeline and its own servers."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            dead_proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, dead_proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        status_server.status = 200  # type: ignore[attr-defined]
        result = check_health(f"http://127.0.0.1:{status_server.server_address[1]}", timeout_s=5)
        assert result.healthy is True, result.detail
