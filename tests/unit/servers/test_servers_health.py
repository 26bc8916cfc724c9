"""Health check: GET / answered in time means healthy; silence, refusal or errors do not."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from preform_pipeline.answers import MAX_ANSWER_BYTES
from preform_pipeline.servers.health import HealthResult, check_health
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.server import SimulatorServer
from preform_pipeline.urlauth import CREDENTIALS_REFUSED
from tests.hostile_http import (
    NGINX_HTTPS_PORT_PAGE,
    Answer,
    drip,
    huge,
    reply,
    running_front,
)


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = json.dumps({"version": "0.9.12"}).encode()
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _answered(answer: Answer) -> HealthResult:
    """One check of a loopback front answering ``GET /`` with ``answer``."""
    with running_front() as front:
        front.on("GET", "/", answer)
        result = check_health(front.url, timeout_s=5)
        front.check()
    return result


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


class TestCheckHealth:
    """check_health never raises for a server-side problem; it says what it saw."""

    def test_a_live_server_is_healthy_and_reports_its_version(
        self, http_server: ThreadingHTTPServer
    ) -> None:
        result = check_health(_url(http_server), timeout_s=2)
        assert result.healthy
        assert result.version == "0.9.12"

    def test_an_error_status_is_unhealthy(self, http_server: ThreadingHTTPServer) -> None:
        http_server.status = 503  # type: ignore[attr-defined]
        result = check_health(_url(http_server), timeout_s=2)
        assert not result.healthy
        assert "503" in result.detail

    def test_a_refused_connection_is_unhealthy(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        result = check_health(f"http://127.0.0.1:{port}", timeout_s=2)
        assert not result.healthy
        assert "unreachable" in result.detail

    def test_a_hung_server_is_unhealthy_after_the_timeout(self) -> None:
        # Listening but never answering: the connection is accepted by the kernel's backlog.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            result = check_health(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=0.3)
        assert not result.healthy
        assert "hung" in result.detail
        assert 0.3 <= result.elapsed_s < 3

    def test_the_request_is_get_slash_even_with_a_trailing_slash(self) -> None:
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(f"{request.method} {request.url}")
            return httpx.Response(200, json={"version": "0.9.12"})

        result = check_health("http://printhost:44388/", transport=httpx.MockTransport(handler))
        assert result.healthy
        assert seen == ["GET http://printhost:44388/"]


class TestHostileAnswers:
    """A check never outlasts its timeout, nor holds more than a bounded answer."""

    def test_an_answer_dripping_in_is_a_hung_server(self) -> None:
        body = json.dumps({"version": "0.9.12"}).encode() + b" " * 40
        with running_front() as front:
            front.on("GET", "/", drip(200, body, every_s=0.1))
            started = time.monotonic()
            result = check_health(front.url, timeout_s=1.0)
            front.check()
        assert time.monotonic() - started < 3.0
        assert not result.healthy
        assert result.detail == "no answer within 1 s (hung)"

    def test_a_200_mb_answer_is_refused_within_bounded_memory(self) -> None:
        with running_front() as front:
            front.on("GET", "/", huge(200 * 1024 * 1024, framing="close"))
            tracemalloc.start()
            try:
                result = check_health(front.url, timeout_s=10.0)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            front.check()
        assert not result.healthy
        assert "over the 32 MiB limit" in result.detail
        assert peak < 2 * MAX_ANSWER_BYTES

    def test_a_proxy_in_the_environment_is_not_used(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Port 9 (discard) on loopback: nothing listens there; through it the check fails.
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, "http://127.0.0.1:9")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with running_front() as front:
            front.on("GET", "/", reply(200, b'{"version": "0.9.12"}'))
            result = check_health(front.url, timeout_s=5.0)
            front.check()
        assert result.healthy, result.detail


class TestAnsweredButUnusable:
    """A server that answers as none this client can use is refused, saying why and what
    helps; one that may come back (a proxy's 502, a 503) is only unhealthy."""

    @pytest.mark.parametrize("status", [404, 405])
    def test_no_version_endpoint_is_refused_with_the_range(self, status: int) -> None:
        with running_front() as front:
            front.on("GET", "/", reply(status, "<html>Not Found</html>",
                                       content_type="text/html"))
            result = check_health(front.url, timeout_s=5)
            front.check()
        assert (result.healthy, result.detail) == (False, f"GET / answered HTTP {status}")
        assert result.refusal is not None
        assert result.refusal.startswith(
            f"the server has no Local API version endpoint (GET / answered {status}): it is "
            "not a PreFormServer, or one older than Local API 0.9.0; this client supports "
            ">=0.9.0,<1.0.0")
        assert "check that the address belongs to a PreFormServer" in result.refusal

    def test_a_proxy_asking_for_https_is_refused_naming_the_scheme(self) -> None:
        with running_front() as front:
            front.on("GET", "/", reply(400, NGINX_HTTPS_PORT_PAGE, content_type="text/html"))
            result = check_health(front.url, timeout_s=5)
        assert result.healthy is False
        assert result.refusal == (
            'the server answered HTTP 400 "The plain HTTP request was sent to HTTPS port": its '
            "address needs https:// (use the https:// address of this server)")

    def test_a_401_is_refused_saying_the_url_wants_a_user_and_password(self) -> None:
        # Review (rv45-small): the branch's health-side 401 was tested only through a run.
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(401, text="<html>401 Authorization Required</html>")

        result = check_health("http://olivia:wrong%40pw@printhost:44388", timeout_s=5,
                              transport=httpx.MockTransport(answer))

        assert (result.healthy, result.refusal) == (
            False, f"GET / answered HTTP 401 ({CREDENTIALS_REFUSED})")
        basic = "Basic " + base64.b64encode(b"olivia:wrong@pw").decode()
        assert [(str(r.url), r.headers.get("Authorization")) for r in sent] == [
            ("http://printhost:44388/", basic)]

    @pytest.mark.parametrize("status, body", [
        (502, "<html>502 Bad Gateway</html>"), (503, ""), (400, "<html>Bad Request</html>"),
    ])
    def test_an_answer_that_may_change_is_not_a_refusal(self, status: int, body: str) -> None:
        with running_front() as front:
            front.on("GET", "/", reply(status, body, content_type="text/html"))
            result = check_health(front.url, timeout_s=5)
        assert (result.healthy, result.refusal) == (False, None)

    @pytest.mark.parametrize("content_type, body, what", [
        ("text/html; charset=utf-8", "<!DOCTYPE html><html><head><title>\n  Synology  "
         "DiskStation\n</title></head><body>sign in</body></html>",
         'an HTML page titled "Synology DiskStation"'),
        ("text/html", "<html><body>It works!</body></html>", "an HTML page"),
        ("application/json", '{"status": "ok"}', 'JSON without a "version" string'),
        ("application/json", '{"version": 12}', 'JSON without a "version" string'),
        ("text/plain; charset=utf-8", "OK", "text/plain content"),
        ("", "", "an empty answer"),
        # No content type: a page is still told by how it starts.
        ("", "<!DOCTYPE html><html><head><title>Router</title></head></html>",
         'an HTML page titled "Router"'),
        ("", "OK", "content that is not JSON"),
        ("", "\n  <html><head><title>Printer</title></head></html>",
         'an HTML page titled "Printer"'),
        ("text/html", "<title>Login</title><form>sign in</form>", 'an HTML page titled "Login"'),
    ], ids=["nas-page", "untitled-page", "json-no-version", "json-number", "text", "empty",
            "untyped-page", "untyped-text", "untyped-indented-page", "typed-fragment"])
    def test_a_200_that_is_no_version_is_refused_saying_what_answered(
        self, content_type: str, body: str, what: str
    ) -> None:
        result = _answered(reply(200, body, content_type=content_type))
        assert (result.healthy, result.version) == (False, None)
        assert 0 < result.elapsed_s < 5
        assert result.detail == "GET / answered HTTP 200 without a Local API version"
        assert result.refusal == (
            f"the server answered GET / with {what}, where a PreFormServer answers its Local "
            'API version (JSON {"version": "0.9.12"}; this client supports >=0.9.0,<1.0.0): '
            "another web server answers at this address (a NAS's or a router's page, or a "
            "wrong port) (check the host and the port, and that PreFormServer runs there)")

    @pytest.mark.parametrize("version", ["1.0.0", "0.8.9", "2.3"])
    def test_a_version_outside_the_range_is_refused_naming_both(self, version: str) -> None:
        result = _answered(reply(200, json.dumps({"version": version})))
        assert (result.healthy, result.version) == (False, version)
        assert 0 < result.elapsed_s < 5
        assert result.detail == f"unsupported Local API version {version!r}"
        assert result.refusal == (
            f"the server speaks Local API {version}; this client supports >=0.9.0,<1.0.0 "
            "(written against 0.9.12) (run a PreFormServer release whose API version is in "
            "that range, or upgrade preform-pipeline)")

    def test_a_version_that_is_no_number_is_refused(self) -> None:
        result = _answered(reply(200, b'{"version": "latest"}'))
        assert result.healthy is False
        assert result.refusal is not None
        assert result.refusal.startswith(
            "the server reports Local API version 'latest', which is not a version number")

    @pytest.mark.parametrize("version", ["0.9.0", "0.9.12", "0.9.40-beta"])
    def test_a_version_inside_the_range_is_healthy(self, version: str) -> None:
        result = _answered(reply(200, json.dumps({"version": version})))
        assert (result.healthy, result.version, result.refusal) == (True, version, None)

    def test_the_simulator_answers_as_a_usable_preformserver(self, tmp_path: Path) -> None:
        engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
        with SimulatorServer(engine, port=0) as server:
            result = check_health(server.url, timeout_s=5)
            server.check()
        assert (result.healthy, result.detail, result.refusal) == (
            True, "version 0.9.12", None)

    def test_no_answer_at_all_is_not_a_refusal(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        result = check_health(f"http://127.0.0.1:{port}", timeout_s=5)
        assert (result.healthy, result.refusal) == (False, None)
