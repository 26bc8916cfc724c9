"""Ports for local servers: probe upward from the base port, and retry when a server says no.

Probing (binding a socket briefly) is only a hint: another program can take the port between
the probe and the server's own bind. The server's word is final: when it reports the address
in use (:class:`~preform_pipeline.errors.PortInUseError`), :func:`start_on_free_port` marks
the port busy and starts it again on the next one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Final, TypeVar

from preform_pipeline.errors import PortInUseError
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.servers import DEFAULT_PORT_ATTEMPTS
from preform_pipeline.wording import counted

__all__ = ["LOOPBACK", "PortAllocator", "port_is_free", "start_on_free_port"]

#: Local servers listen on the loopback interface only.
LOOPBACK: Final = "127.0.0.1"

_T = TypeVar("_T")
_log = get_logger(__name__)


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` right now (a bind succeeds)."""
    # No SO_REUSEADDR: on Windows it would let us bind over a live listener and say "free".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _os_assigned_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class PortAllocator:
    """Hands out distinct ports to the servers of one pool; thread-safe.

    With ``base_port`` 0 the operating system picks free ports; otherwise ports are tried from
    ``base_port`` upward, ``attempts`` of them, skipping ports the probe finds taken, ports
    already handed out, and ports a server reported in use.
    """

    def __init__(
        self,
        base_port: int,
        attempts: int = DEFAULT_PORT_ATTEMPTS,
        *,
        host: str = LOOPBACK,
        probe: Callable[[int], bool] | None = None,
    ) -> None:
        self.base_port = base_port
        self.attempts = attempts
        self.host = host
        self._probe = probe if probe is not None else (lambda p: port_is_free(p, host))
        self._lock = threading.Lock()
        self._reserved: set[int] = set()
        self._busy: set[int] = set()

    def acquire(self) -> int:
        """Reserve a port; raises :class:`PortInUseError` when none is free."""
        with self._lock:
            for i in range(self.attempts):
                port = _os_assigned_port(self.host) if self.base_port == 0 else self.base_port + i
                if port > 65535:
                    break
                if port in self._reserved or port in self._busy or not self._probe(port):
                    continue
                self._reserved.add(port)
                return port
        last = self.base_port + self.attempts - 1
        where = "from the operating system" if self.base_port == 0 else (
            f"in {self.base_port}-{last}"
        )
        raise PortInUseError(
            f"no free port {where} after {counted(self.attempts, 'attempt')}",
            hint="set servers.base_port to a free range, or 0 to let the system choose",
        )

    def release(self, port: int) -> None:
        """Give a reserved port back (its server stopped)."""
        with self._lock:
            self._reserved.discard(port)

    def report_in_use(self, port: int) -> None:
        """A server could not bind ``port``: never hand it out again in this pool."""
        with self._lock:
            self._reserved.discard(port)
            self._busy.add(port)

    @property
    def reserved(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._reserved)


def start_on_free_port(
    start: Callable[[int], _T], allocator: PortAllocator, *, name: str = ""
) -> _T:
    """Call ``start(port)`` on a reserved port, moving on while it raises PortInUseError.

    The port stays reserved when ``start`` succeeds (release it when the server stops) and is
    released when ``start`` fails otherwise.
    """
    last_error: PortInUseError | None = None
    for _ in range(allocator.attempts):
        port = allocator.acquire()
        try:
            return start(port)
        except PortInUseError as exc:
            allocator.report_in_use(port)
            _log.info("server_port_in_use", server=name, port=port)
            last_error = exc
        except BaseException:
            allocator.release(port)
            raise
    assert last_error is not None  # attempts >= 1 and every attempt raised PortInUseError
    raise last_error
