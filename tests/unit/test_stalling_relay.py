"""``tests.stalling_relay``'s relay itself (the soak's stalled database link): stalled, it
carries nothing and closes nothing; resumed, what waited goes through; reset, both sides are
told by a TCP reset. Against a real echo server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.stalling_relay import StallingRelay

#: How long a look for something that must not come lasts (a stall carries nothing at all).
QUIET_S = 0.3
WAIT_S = 10.0


class EchoServer:
    """Echoes each connection's bytes back; records how each connection ended."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = threading.Semaphore(0)
        self.endings: list[str] = []
        self.ended = threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.release()
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        ending = "closed"
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except ConnectionResetError:
                ending = "reset"
        self.endings.append(ending)
        self.ended.release()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.listener.close()


@pytest.fixture
def relay(echo: EchoServer) -> Iterator[StallingRelay]:
    with StallingRelay("127.0.0.1", echo.port) as running:
        yield running


def _client(relay: StallingRelay) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _carried(relay: StallingRelay) -> socket.socket:
    """A connection through the relay that has carried a first exchange."""
    sock = _client(relay)
    sock.sendall(b"before")
    assert sock.recv(100) == b"before"
    return sock


def _nothing_comes(sock: socket.socket) -> bool:
    sock.settimeout(QUIET_S)
    try:
        return sock.recv(100) == b"never"
    except TimeoutError:
        return True
    finally:
        sock.settimeout(WAIT_S)


class TestAStalledLink:
    def test_carries_nothing_and_closes_nothing_then_resumed_delivers_what_waited(
        self, relay: StallingRelay, echo: EchoServer
    ) -> None:
        with _carried(relay) as sock:
            relay.stall()
            sock.sendall(b"held")
            assert _nothing_comes(sock)
            relay.resume()
            assert sock.recv(100) == b"held"
        assert echo.ended.acquire(timeout=WAIT_S)
        assert echo.endings == ["closed"]

    def test_a_connection_made_while_stalled_reaches_the_server_only_once_resumed(
        self, relay: StallingRelay, echo: EchoServer
    ) -> None:
        relay.stall()
        with _client(relay) as sock:
            sock.sendall(b"hello")
            assert not echo.accepted.acquire(timeout=QUIET_S)
            relay.resume()
            assert echo.accepted.acquire(timeout=WAIT_S)
            assert sock.recv(100) == b"hello"


class TestAResetLink:
    def test_both_sides_are_told_by_a_reset_and_new_connections_are_carried_again(
        self, relay: StallingRelay, echo: EchoServer
    ) -> None:
        with _carried(relay) as sock:
            relay.stall()
            relay.reset()
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
        assert echo.ended.acquire(timeout=WAIT_S)
        assert echo.endings == ["reset"]
        assert not relay.stalled
        with _client(relay) as again:
            again.sendall(b"after")
            assert again.recv(100) == b"after"
