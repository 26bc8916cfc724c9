"""Hostile requests to the dashboard over real HTTP on 127.0.0.1 (session 31).

Session 31's sweep found three: an action's ``next`` holding a tab or line break sent the
browser to another host (a URL parser drops those characters, so ``/\\t/evil.example``
became ``//evil.example`` once the done= token was added), a search longer than SQLite's
LIKE pattern limit was a 500 with a traceback on the server's console, and so was a search
or recipe filter holding a NUL on a PostgreSQL store (its text cannot hold one).
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs
from uvicorn.protocols.http.h11_impl import H11Protocol

from preform_pipeline.clock import ManualClock
from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.web import WebServer
from preform_pipeline.web import app as web_app
from preform_pipeline.web import server as web_server
from preform_pipeline.web.app import MAX_BODY_BYTES
from preform_pipeline.web.badrequests import MAX_PEERS, SAY_EVERY_S, Pacer, SaidAsEvent
from tests.multinode_farm import wait_until
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.unit.web import clients
from tests.unit.web.conftest import OPERATOR_SECRET, Served, logged_in, refused, serving

#: Past SQLite's longest LIKE pattern (50,000 bytes), inside what a request line may hold.
HUGE_SEARCH = 60_000


class TestActionsReturnToThisSite:
    """After an action the browser goes to a page of this dashboard, whatever ``next`` held."""

    @pytest.mark.parametrize("cut", ["\t", "\n", "\r", "\x7f"],
                             ids=["tab", "line-feed", "carriage-return", "delete"])
    def test_a_control_character_in_next_returns_to_the_queue(
        self, served: Served, cut: str
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = client.post(f"/builds/{served.held_id}/approve",
                                 data={"csrf": csrf, "next": f"/{cut}/evil.example/"})
            assert answer.status_code == 303
            location = answer.headers["location"]
            assert httpx.URL(served.url).join(location).host == "127.0.0.1", location
            assert location.startswith("/?done=")
            page = client.get(location)
        assert page.status_code == 200
        assert "approved" in page.text
        assert served.store.get_build(served.held_id).state is JobState.WAITING_FOR_PRINTER


class TestSearchesLongerThanAnyName:
    """A search the store cannot run is refused on the dashboard's page; one it can is run."""

    @pytest.mark.parametrize("page", ["/", "/history"])
    def test_a_huge_search_is_a_400_page_that_says_how_long_one_may_be(
        self, served: Served, page: str
    ) -> None:
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = client.get(page, params={"q": "C" * HUGE_SEARCH})
        assert answer.status_code == 400
        assert ("a search of 60,000 characters is longer than the dashboard searches for "
                "(1,000 at most)") in answer.text
        assert "search for a part of a case id, file name or key" in answer.text

    def test_a_search_of_the_longest_length_is_run(self, served: Served) -> None:
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            longest = client.get("/", params={"q": "C" * 1000})
            beyond = client.get("/", params={"q": "C" * 1001})
        assert longest.status_code == 200
        assert "a search of" not in longest.text
        assert beyond.status_code == 400
        assert "a search of 1,001 characters" in beyond.text


@pytest.fixture(scope="module")
def served_on_postgres(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster,
    users: tuple[WebUser, ...]
) -> Iterator[Served]:
    """The dashboard on a PostgreSQL store of its own, with a build held for approval: one
    for the module (a database and its schema cost a second a test), whose tests change
    nothing in it: each asks for something refused before the store is written."""
    url = pg_cluster.create_database(f"web_{uuid.uuid4().hex[:12]}")
    with PostgresJobStore(url, password=PG_PASSWORD) as store, serving(
        store, tmp_path_factory.mktemp("on-postgres"), users
    ) as served:
        yield served


class TestNulsInFilters:
    """A NUL in the search or the recipe filter is refused on the page, on PostgreSQL too."""

    @pytest.mark.parametrize("page", ["/", "/history"])
    @pytest.mark.parametrize("field", ["q", "recipe"])
    def test_the_page_says_so_and_the_queue_is_still_served(
        self, served_on_postgres: Served, page: str, field: str
    ) -> None:
        client, _ = logged_in(served_on_postgres, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = client.get(page, params={field: "C-\x007"})
            queue = client.get(page, params={"q": "C-7"})
        assert answer.status_code == 400
        assert "a search or recipe filter may not hold a NUL character" in answer.text
        assert queue.status_code == 200 and "C-7.stl" in queue.text


class TestActionTargets:
    """A case action's target that no case could have is refused as such, saying why."""

    def test_a_file_posted_as_the_target_is_refused_as_a_file(self, served: Served) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = client.post("/cases/cancel", data={"csrf": csrf, "next": "/"},
                                 files={"target": ("case-C-7.txt", b"case:C-7", "text/plain")})
        assert answer.status_code == 400
        assert ("the field &#39;target&#39; holds a file (&#39;case-C-7.txt&#39;): "
                "a file is not accepted there") in answer.text
        assert "UploadFile" not in answer.text
        assert served.store.list_jobs()[0].state is JobState.AWAITING_APPROVAL

    @pytest.mark.parametrize("action", ["retry", "cancel"])
    @pytest.mark.parametrize("target", ["PP-\x00-1", "case:C-\x007"], ids=["key", "case"])
    def test_a_nul_in_the_target_on_postgres_is_no_such_case_not_a_store_failure(
        self, served_on_postgres: Served, action: str, target: str
    ) -> None:
        client, csrf = logged_in(served_on_postgres, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = refused(client, client.post(
                f"/cases/{action}", data={"csrf": csrf, "next": "/", "target": target}))
        shown = target.replace("\x00", "\\x00")
        assert f"no case or job '{shown}' in the job store" in answer.said
        assert "multi-node" not in answer.page and "database log" not in answer.page
        # Nothing changed (the module's tests share the store).
        assert [j.state for j in served_on_postgres.store.list_jobs()] == [
            JobState.AWAITING_APPROVAL]

    def test_a_huge_target_is_quoted_cut_short(self, served: Served) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = refused(client, client.post(
                "/cases/retry", data={"csrf": csrf, "target": "C" * 100_000}))
        assert f"no case or job '{'C' * 100}...' in the job store" in answer.said
        assert "C" * 101 not in answer.page


class TestBodiesLargerThanAnyForm:
    """A body past the dashboard's limit is refused before it is read, logged in or not."""

    def test_an_announced_huge_login_is_a_413_and_the_dashboard_goes_on(
        self, served: Served
    ) -> None:
        body = b"name=olivia&secret=" + b"x" * (MAX_BODY_BYTES + 1)
        with clients.Client(base_url=served.url) as client, capture_logs() as events:
            answer = client.post("/login", content=body, headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            assert answer.status_code == 413
            assert answer.text == (f"refused: the request's body is {len(body):,} bytes; the "
                                   f"dashboard takes at most {MAX_BODY_BYTES:,} bytes (its "
                                   "forms send a few hundred)")
        assert [e for e in events if e["event"] == "web_body_refused"] == [
            {"event": "web_body_refused", "log_level": "warning", "path": "/login",
             "size": f"{len(body):,} bytes", "limit": MAX_BODY_BYTES}]
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            assert client.get("/").status_code == 200

    def test_an_unannounced_endless_body_is_cut_at_the_limit(self, served: Served) -> None:
        sent = 0

        def endless() -> Iterator[bytes]:
            nonlocal sent
            chunk = b"x" * 65_536
            while sent < 64 * MAX_BODY_BYTES:  # stops the test if nothing refuses it
                sent += len(chunk)
                yield chunk

        with clients.Client(base_url=served.url) as client, capture_logs() as events:
            try:
                answer = client.post("/cases/retry", content=endless(), headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
            except httpx.HTTPError:  # the server may close while the client still sends
                answer = None
        assert sent < 64 * MAX_BODY_BYTES
        if answer is not None:
            assert answer.status_code == 413
        assert [e["size"] for e in events if e["event"] == "web_body_refused"] == [
            f"more than {MAX_BODY_BYTES:,} bytes"]

    def test_a_form_just_under_the_limit_is_read(self, served: Served) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        target = "C" * (MAX_BODY_BYTES - 200)
        with closing(client):
            answer = refused(client, client.post(
                "/cases/retry", data={"csrf": csrf, "target": target}))
        assert f"no case or job '{'C' * 100}...' in the job store" in answer.said


class TestRequestsNoParserTakes:
    """A request uvicorn cannot parse is answered 400 and leaves nothing on the console
    (session 44's fuzzing: a HEAD with a malformed chunked body printed two tracebacks)."""

    @pytest.mark.parametrize("method", [b"HEAD", b"GET", b"POST"])
    def test_a_malformed_chunked_body_is_a_400_and_no_traceback(
        self, served: Served, method: bytes, caplog: pytest.LogCaptureFixture
    ) -> None:
        with _connected(served.url) as sock:
            sock.sendall(method + b" /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
            answer = _to_the_close(sock)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert [r.getMessage() for r in caplog.records if r.exc_info] == []


class TestBodiesCutShort:
    """A client that goes away before its body is whole gets nothing read for it, and the
    console no traceback (session 44's fuzzing: Starlette's ClientDisconnect, 102 times)."""

    @pytest.mark.parametrize("path", ["/login", "/cases/retry", "/logout"])
    def test_the_request_is_dropped_and_said_as_an_event(
        self, served: Served, path: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        with capture_logs() as logs, _connected(served.url) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         "Content-Length: 100\r\n\r\nname=olivia".encode())
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(65536)  # the server closes without an answer
            wait_until("web_client_gone", lambda: _said(logs, "web_client_gone"), 10)
            served_after = clients.get(f"{served.url}/healthz")
        assert answer == b""
        assert served_after.status_code == 200
        assert [r.getMessage() for r in caplog.records if r.exc_info] == []
        gone = [e for e in logs if e["event"] == "web_client_gone"]
        assert gone == [{"event": "web_client_gone", "log_level": "info", "path": path,
                         "received": "11 bytes"}]


def _said(logs: list[dict[str, object]], event: str) -> bool:
    return any(e["event"] == event for e in list(logs))


class TestTheProtocolHook:
    """The dashboard's h11 protocol (``web/server.py``, session 44) leaves every request it
    can parse as uvicorn answers it, and a uvicorn without the method it overrides is said at
    start, served by uvicorn's own protocol (review of session 44)."""

    def test_keep_alive_head_and_a_whole_file_on_one_connection(self, served: Served) -> None:
        url = httpx.URL(served.url)
        conn = http.client.HTTPConnection(url.host, url.port, timeout=10)
        try:
            conn.request("HEAD", "/login")
            head = conn.getresponse()
            assert (head.status, head.read()) == (200, b"")
            assert int(head.headers["content-length"]) > 0
            first = conn.sock
            conn.request("GET", "/static/style.css")
            css = conn.getresponse()
            body = css.read()
            assert conn.sock is first and first is not None  # the same connection, kept
        finally:
            conn.close()
        assert css.status == 200
        assert body == (Path(web_app.__file__).parent / "static" / "style.css").read_bytes()

    def test_a_uvicorn_without_the_hooked_method_is_said_and_served(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delattr(H11Protocol, "send_400_response")
        with capture_logs() as logs:
            chosen = web_server._http_protocol()
        assert chosen == "auto"
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "web_protocol_unhooked"]

    def test_the_installed_uvicorn_is_hooked(self) -> None:
        chosen = web_server._http_protocol()
        assert isinstance(chosen, type) and issubclass(chosen, web_server.HttpProtocol)

    def test_each_server_keeps_its_own_record_of_bad_requests(self) -> None:
        first, second = web_server._http_protocol(), web_server._http_protocol()
        assert isinstance(first, type) and issubclass(first, web_server.HttpProtocol)
        assert isinstance(second, type) and issubclass(second, web_server.HttpProtocol)
        assert first.bad_requests is not second.bad_requests


#: What a browser sends first when https:// is typed for the dashboard's http:// address.
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32))


def _connected(url: str) -> socket.socket:
    """A raw connection to the dashboard at ``url``, to send what no HTTP client would."""
    address = httpx.URL(url)
    return socket.create_connection((address.host, address.port), timeout=10)


def _to_the_close(sock: socket.socket) -> bytes:
    """What ``sock`` receives until the server closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _sent(url: str, data: bytes) -> tuple[bytes, int]:
    """``data`` sent on a connection of its own; the answer (to the server's close) and the
    client's port."""
    with _connected(url) as sock:
        sock.sendall(data)
        return _to_the_close(sock), int(sock.getsockname()[1])


def _first_answer(sock: socket.socket) -> bytes:
    """The first answer on ``sock``, head and body whole (it has a Content-Length)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(1)
    found = re.search(rb"content-length: (\d+)", received, re.I)
    assert found is not None, received
    length = int(found.group(1))
    while len(received.split(b"\r\n\r\n", 1)[1]) < length:
        received += sock.recv(1)
    return received


def _bad_requests(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == "web_bad_request"]


class TestRequestsNoParserTakesAreSaid:
    """A request h11 cannot parse is one ``web_bad_request`` event saying who sent it, what
    was wrong and how it began, not uvicorn's bare "Invalid HTTP request received." line,
    and garbage sent again and again is said once a minute, counted (session 45)."""

    def test_a_tls_hello_is_one_warning_with_the_peer_and_a_hint(
        self, served: Served, caplog: pytest.LogCaptureFixture
    ) -> None:
        with capture_logs() as logs:
            answer, port = _sent(served.url, TLS_HELLO)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert _bad_requests(logs) == [{
            "event": "web_bad_request", "log_level": "warning", "client": "127.0.0.1",
            "port": port, "reason": "illegal request line",
            # none printable; cut at its first line end (0x0a), as any request's start is
            "start": "".join(f"\\x{b:02x}" for b in TLS_HELLO[:TLS_HELLO.index(b"\n")]),
            "hint": "the client spoke TLS (https://) to this plain-HTTP dashboard: open its "
                    "http:// address"}]
        assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []

    def test_a_header_value_h11_quotes_is_not_logged(self, served: Served) -> None:
        with capture_logs() as logs:
            answer, _ = _sent(served.url, b"GET /login?token=s3cret-query HTTP/1.1\r\n"
                                          b"Host: 127.0.0.1\r\n"
                                          b"Authorization Bearer s3cret\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        [said] = _bad_requests(logs)
        assert (said["reason"], said["start"]) == ("illegal header line", "GET /login")
        assert "s3cret" not in repr(logs)

    def test_a_cookie_after_a_short_request_line_is_not_logged(self, served: Served) -> None:
        # Review of session 45: the first 32 bytes of "GET /" and a Cookie header reached
        # seven characters of the session id.
        with capture_logs() as logs:
            answer, _ = _sent(served.url, b"GET /\r\nCookie: pp_session=s3cretTOKEN\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        [said] = _bad_requests(logs)
        assert (said["reason"], said["start"]) == ("illegal request line", "GET /")
        assert "s3cret" not in repr(logs)

    @pytest.mark.parametrize("pipelined", [False, True], ids=["after-the-answer", "pipelined"])
    def test_garbage_after_an_answered_request_is_said_as_it_began(
        self, served: Served, pipelined: bool
    ) -> None:
        with capture_logs() as logs, _connected(served.url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if pipelined:
                sock.sendall(b"\x00garbage\r\n\r\n")
            answers = _first_answer(sock)
            if not pipelined:
                sock.sendall(b"\x00garbage\r\n\r\n")
            answers += _to_the_close(sock)  # the server closes after its 400
        assert answers.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"HTTP/1.1 400 Bad Request\r\n" in answers
        assert [e["start"] for e in _bad_requests(logs)] == ["\\x00garbage"]

    def test_the_rest_of_a_body_answered_unread_is_never_said_as_a_start(
        self, served: Served
    ) -> None:
        # Review of session 45: a POST refused for its Host is answered before its body is
        # read; the body's bytes (here a login form's password) were kept as the start of
        # the next request, and logged when that one was garbage.
        body = b"name=olivia&secret=s3cret-password"
        with capture_logs() as logs, _connected(served.url) as sock:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: evil.example\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            answers = _first_answer(sock)  # refused before a byte of the body was sent
            sock.sendall(body + b"\x00garbage\r\n\r\n")
            answers += _to_the_close(sock)
        assert answers.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert answers.count(b"HTTP/1.1 400 Bad Request\r\n") == 2
        [said] = _bad_requests(logs)
        # Came in one read with the body's rest, the garbage's start is not known; in two,
        # it is its own.
        assert said.get("start") in (None, "\\x00garbage")
        assert "s3cret" not in repr(logs)

    def test_garbage_again_and_again_is_said_once_a_minute_and_counted(
        self, tmp_path: Path, users: tuple[WebUser, ...]
    ) -> None:
        clock = ManualClock()
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        server = WebServer(store, WebSettings(port=0, users=users), clock=clock)
        server.start()
        try:
            with capture_logs() as logs:
                for _ in range(5):
                    _sent(server.url, b"\x00garbage\r\n\r\n")
                assert len(_bad_requests(logs)) == 1
                clock.advance(SAY_EVERY_S)
                _sent(server.url, b"\x00garbage\r\n\r\n")
        finally:
            server.stop()
            store.close()
        said = _bad_requests(logs)
        assert [(e.get("unsaid"), e.get("unsaid_within_s")) for e in said] == [
            (None, None), (4, SAY_EVERY_S)]


class TestUvicornsOtherLines:
    """uvicorn's other warnings are structured events too, each line once a minute
    (session 45: an ``Upgrade: websocket`` request printed two bare lines, the second
    advising a pip install)."""

    def test_an_upgrade_request_is_answered_and_said_as_two_events_once(
        self, served: Served, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # None said yet, on a clock no load can move past the minute between the requests.
        monkeypatch.setattr(web_server._SAID_AS_EVENT, "_pacer", Pacer(ManualClock()))
        upgrade = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                   b"Upgrade: websocket\r\n\r\n")
        with capture_logs() as logs:
            for _ in range(2):
                with _connected(served.url) as sock:
                    sock.sendall(upgrade)
                    answer = _first_answer(sock)
                assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        said = [e for e in logs if e["event"] == "web_server_warning"]
        assert [(e["log_level"], str(e["message"]).split(".")[0]) for e in said] == [
            ("warning", "Unsupported upgrade request"),
            ("warning", "No supported WebSocket library detected")]
        assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []


    def test_an_error_keeps_its_record_and_traceback(self) -> None:
        # An exception in the app is a fault: its record (and traceback) stays where the
        # tests above look for one, not turned into an event.
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                                       "Exception in ASGI application\n", (), sys.exc_info())
        with capture_logs() as logs:
            kept = SaidAsEvent().filter(record)
        assert (kept, logs) == (True, [])


class TestThePacersMemory:
    """However many addresses send garbage, the pacer remembers at most ``MAX_PEERS`` of them:
    the quiet ones are forgotten first, then those said longest ago (review of session 45)."""

    def test_a_scan_from_many_addresses_is_remembered_at_most_max_peers(self) -> None:
        clock = ManualClock()
        pacer = Pacer(clock)
        scanned = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(3 * MAX_PEERS)]
        for address in scanned:  # all within the minute: none is quiet yet
            assert pacer.admit(address) == 0
            clock.advance(0.001)
        assert len(pacer) == MAX_PEERS
        # The newest is still paced; the first, forgotten, is said again (with no count).
        assert (pacer.admit(scanned[-1]), pacer.admit(scanned[0])) == (None, 0)

    def test_the_quiet_are_forgotten_before_one_still_sending(self) -> None:
        clock = ManualClock()
        pacer = Pacer(clock)
        for n in range(MAX_PEERS - 1):
            pacer.admit(f"10.0.{n // 256}.{n % 256}")
        clock.advance(SAY_EVERY_S)
        assert pacer.admit("192.0.2.1") == 0  # the table is full, this one said just now
        assert pacer.admit("192.0.2.2") == 0  # a newcomer: the quiet ones make room
        assert len(pacer) == 2
        assert pacer.admit("192.0.2.1") is None  # still paced, and counted


class TestAnApprovalCutShort:
    """A logged-in approval whose body stops short leaves the build held (review of session
    44: the body limit drops such a request before any action runs)."""

    def test_the_build_stays_held(self, served: Served) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        client.close()
        body = f"csrf={csrf}"
        with capture_logs() as logs, _connected(served.url) as sock:
            sock.sendall(f"POST /builds/{served.held_id}/approve HTTP/1.1\r\n"
                         f"Host: 127.0.0.1\r\nCookie: {cookies}\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         f"Content-Length: {len(body) + 50}\r\n\r\n{body}".encode())
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(65536) == b""
            # uvicorn closes the socket as it hands the app the disconnect: wait for the event.
            wait_until("web_client_gone", lambda: _said(logs, "web_client_gone"), 10)
        assert [e["event"] for e in logs if e["event"].startswith("web_")] == [
            "web_client_gone"]
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL
