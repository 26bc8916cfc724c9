"""A TCP relay on loopback whose link can stall: what a node sees of a database behind a
network that stops carrying packets (a switch's buffer, a VPN's re-key, a NAT dropping its
state) without closing anything.

Each connection to the relay is carried to ``upstream`` by two pumps. :meth:`stall` stops
them: what either side sends stays in the kernel's buffers until they fill, nobody is told,
and new connections are accepted but not carried on. :meth:`resume` lets everything held
through; :meth:`reset` ends every connection with a TCP reset on both sides (SO_LINGER 0),
as a network that gave up would. Used by ``bench/soak_kill.py --stall``.

Unlike a link that drops packets, the relay's end of each connection acknowledges what it
holds (TCP does, below the relay): a sender sees no loss, so its kernel's retransmission
limit and TCP keepalives never end a connection stalled here, nor does ``tcp_user_timeout``
while the buffers have room. What the relay shows is the node's own behaviour while its
calls wait, not how long the operating system lets them wait.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass, field

__all__ = ["StallingRelay"]

#: How often a pump looks again at a stall, a reset or a closed pair.
_TICK_S = 0.1


@dataclass
class _Pair:
    """One client's connection and, once carried on, its upstream one."""

    client: socket.socket
    upstream: socket.socket | None = None
    closed: threading.Event = field(default_factory=threading.Event)


class StallingRelay:
    """Relay ``127.0.0.1:port`` → ``upstream_host:upstream_port`` (a context manager)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._flowing = threading.Event()
        self._flowing.set()
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_TICK_S)
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept", daemon=True)
        self.resets = 0

    def __enter__(self) -> StallingRelay:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._flowing.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        self._close_all(abort=False)

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def stall(self) -> None:
        """Stop carrying anything, closing nothing."""
        self._flowing.clear()

    def resume(self) -> None:
        """Carry on: what was held goes through, as a link that came back."""
        self._flowing.set()

    def reset(self) -> None:
        """End every connection with a reset to both sides, then carry new ones again."""
        self._close_all(abort=True)
        self.resets += 1
        self._flowing.set()

    def _close_all(self, *, abort: bool) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(pair, abort=abort)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            pair = _Pair(client)
            with self._lock:
                self._pairs = [p for p in self._pairs if not p.closed.is_set()] + [pair]
            threading.Thread(target=self._carry, args=(pair,), name="relay-pair",
                             daemon=True).start()

    def _carry(self, pair: _Pair) -> None:
        """Connect upstream once the link flows (a stalled link reaches nothing), then pump
        both ways."""
        while not self._flowing.wait(_TICK_S):
            if pair.closed.is_set():
                return
        try:
            pair.upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _close(pair, abort=True)
            return
        if pair.closed.is_set():  # reset while connecting
            _close(pair, abort=True)
            return
        back = threading.Thread(target=self._pump, args=(pair, pair.upstream, pair.client),
                                name="relay-pump", daemon=True)
        back.start()
        self._pump(pair, pair.client, pair.upstream)
        back.join()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not pair.closed.is_set():
                # Nothing is read while stalled: it waits in the kernel's buffers, unseen.
                if not self._flowing.wait(_TICK_S):
                    continue
                readable, _, _ = select.select([source], [], [], _TICK_S)
                if not readable or not self._flowing.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):  # the other pump or a reset closed the pair
            pass
        _close(pair, abort=False)


def _close(pair: _Pair, *, abort: bool) -> None:
    pair.closed.set()
    for sock in (pair.client, pair.upstream):
        if sock is None:
            continue
        with contextlib.suppress(OSError):
            if abort:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
