"""Only a 200 answer to GET / is healthy: client errors, server errors and redirects are not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
