"""``tests.stalling_relay``'s relay itself (the soak's stalled database link): stalled, it
carries nothing either way and closes nothing, and reads nothing, so a sender's buffers fill;
resumed, what waited goes through; reset, both sides are told by a TCP reset. Against a real
echo server on loopback, which records what reached it."""

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
    """Echoes each connection's bytes back; records what reached it, and how each connection
    ended. :meth:`say` sends from the server's side unasked (a reply to nothing)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = threading.Semaphore(0)
        self.endings: list[str] = []
        self.ended = threading.Semaphore(0)
        self.received = bytearray()
        self._arrived = threading.Condition()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def say(self, data: bytes) -> None:
        self._conns[-1].sendall(data)

    def got_more_than(self, count: int, within_s: float) -> bool:
        """Whether more than ``count`` bytes reached the server within ``within_s``."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.received) > count, within_s)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.release()
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        ending = "closed"
        with conn:
            try:
                while data := conn.recv(65536):
                    with self._arrived:
                        self.received += data
                        self._arrived.notify_all()
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


@pytest.fixture
def stalled(relay: StallingRelay) -> Iterator[socket.socket]:
    """A connection through the relay that carried a first exchange, then the link stalled."""
    with _carried(relay) as sock:
        relay.stall()
        yield sock


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


def _fill(sock: socket.socket) -> int:
    """Send until the buffers on the way are full; how many bytes they took (at most 256 MB:
    loopback's hold a few)."""
    sock.setblocking(False)
    taken = 0
    try:
        for _ in range(4096):
            taken += sock.send(bytes(65536))
    except BlockingIOError:
        return taken
    finally:
        sock.settimeout(WAIT_S)
    raise AssertionError(f"{taken} bytes sent and the buffers on the way never filled")


def _nothing_comes(sock: socket.socket) -> bool:
    sock.settimeout(QUIET_S)
    try:
        return sock.recv(100) == b"never"
    except TimeoutError:
        return True
    finally:
        sock.settimeout(WAIT_S)


def _comes_once_resumed(relay: StallingRelay, sock: socket.socket, data: bytes) -> None:
    """Nothing reaches ``sock`` while the link stalls; ``data`` does once it carries on."""
    assert _nothing_comes(sock)
    relay.resume()
    assert sock.recv(100) == data


class TestAStalledLink:
    def test_carries_nothing_and_closes_nothing_then_resumed_delivers_what_waited(
        self, relay: StallingRelay, echo: EchoServer, stalled: socket.socket
    ) -> None:
        stalled.sendall(b"held")
        assert not echo.got_more_than(len(b"before"), QUIET_S)  # held on the way there
        _comes_once_resumed(relay, stalled, b"held")
        stalled.close()
        assert echo.ended.acquire(timeout=WAIT_S)
        assert echo.endings == ["closed"]

    def test_carries_nothing_from_the_server_then_resumed_delivers_it(
        self, relay: StallingRelay, echo: EchoServer, stalled: socket.socket
    ) -> None:
        echo.say(b"unasked")
        _comes_once_resumed(relay, stalled, b"unasked")

    def test_reads_nothing_so_the_senders_buffers_fill(
        self, echo: EchoServer, stalled: socket.socket
    ) -> None:
        first = _fill(stalled)
        assert not echo.got_more_than(len(b"before"), QUIET_S)
        # Nobody drains them meanwhile: only the kernel's buffers may grow a little (a relay
        # that reads on while stalled takes about as much again).
        assert _fill(stalled) < first / 2

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
        self, relay: StallingRelay, echo: EchoServer, stalled: socket.socket
    ) -> None:
        relay.reset()
        with pytest.raises(ConnectionResetError):
            stalled.recv(100)
        assert echo.ended.acquire(timeout=WAIT_S)
        assert echo.endings == ["reset"]
        assert not relay.stalled
        with _client(relay) as again:
            again.sendall(b"after")
            assert again.recv(100) == b"after"
