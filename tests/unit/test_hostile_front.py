"""``tests.hostile_http``'s front itself: what it forwards reaches the client whole, however
long its upstream takes within the client's own time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

import tests.hostile_http as hostile
from tests.hostile_http import running_front

BODY = b'{"version": "slow"}'


@pytest.fixture
def slow_upstream() -> Iterator[tuple[str, threading.Event]]:
    """An upstream that answers its one request only once the event is set."""
    answer = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65_536)
            answer.wait(30)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", answer
    answer.set()
    thread.join(30)
    listener.close()


class TestASlowUpstream:
    """Review rv46-loose: the front cut an upstream answer off at its own 10 s bound
    (``_WAIT_S``), said to the client as "Server disconnected without sending a response"."""

    def test_an_answer_slower_than_the_fronts_own_bound_is_forwarded(
        self, monkeypatch: pytest.MonkeyPatch, slow_upstream: tuple[str, threading.Event]
    ) -> None:
        upstream, answer = slow_upstream
        monkeypatch.setattr(hostile, "_WAIT_S", 0.2)  # the front's bound, made short
        with running_front(upstream) as front:
            # Answered once twice the front's bound has passed (the timer, not a sleep).
            timer = threading.Timer(0.4, answer.set)
            timer.start()
            try:
                response = httpx.get(front.url + "/", timeout=30)
            finally:
                timer.cancel()
            front.check()
        assert (response.status_code, response.content) == (200, BODY)
