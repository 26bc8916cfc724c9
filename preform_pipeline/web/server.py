"""Running the dashboard: uvicorn on its own thread (``watch --serve``) or in front (``serve``).

The server binds ``web.host`` (127.0.0.1 unless the settings say otherwise). uvicorn's own
access log is off: request lines may carry query strings, and the dashboard logs its own
structured events (logins, refusals, actions with the user's name), never a secret.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Final, TextIO

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import PipelineError
from preform_pipeline.hotfolder.files import jobs_command
from preform_pipeline.interrupts import stop_on_signals
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.settings.web import WebSettings
from preform_pipeline.store import JobStore
from preform_pipeline.web.app import create_app
from preform_pipeline.web.badrequests import BadRequests, SaidAsEvent
from preform_pipeline.web.sources import LiveSources, daemon_sources
from preform_pipeline.wording import REQUEST_START_BYTES

if TYPE_CHECKING:
    from preform_pipeline.cloud.client import WebApiClient
    from preform_pipeline.hotfolder.daemon import HotFolderDaemon

__all__ = ["STARTUP_TIMEOUT_S", "HttpProtocol", "WebServer", "serving"]

log = get_logger(__name__)

#: How long starting may take before it counts as failed (binding a port is quick).
STARTUP_TIMEOUT_S: Final = 20.0


#: The logger uvicorn's protocols write to: while the dashboard's protocol is in use, its
#: warnings are structured events, and its line for a refused request is dropped
#: (``web_bad_request`` says it).
_UVICORN_ERRORS: Final = "uvicorn.error"
_SAID_AS_EVENT: Final = SaidAsEvent()


class HttpProtocol(H11Protocol):
    """uvicorn's h11 protocol, which says a request it cannot parse as one structured event
    and whose answer to it never fails itself.

    uvicorn answers such a request with a 400 and a line of text; when the request was a HEAD
    (with a malformed chunked body, say), h11 refuses that text, since an answer to HEAD has
    no body, and its LocalProtocolError reached asyncio, which printed "Fatal error:
    protocol.data_received() call failed." and two tracebacks on the dashboard's console.
    The 400's head is sent by then; the connection is closed, as after any 400.

    The request is said as ``web_bad_request`` (``web/badrequests.py``), each peer at most
    once a minute; :func:`_http_protocol` gives each server its own subclass with its own
    :attr:`bad_requests`.
    """

    #: The server's record of malformed requests (set on the subclass each server makes).
    bad_requests: ClassVar[BadRequests]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The first bytes of the request under way: how a refused request began. None while
        #: what arrives is the rest of a body the app answered without reading (a refused
        #: Host, say): those bytes are no request's start, and may be a form's password.
        self._start: bytearray | None = bytearray()

    def data_received(self, data: bytes) -> None:
        if self._start is None and self.conn.their_state is h11.IDLE:
            # That body has ended and uvicorn began the next cycle: what h11 holds unread
            # is the next request's start.
            self._start = bytearray(self.conn.trailing_data[0][:REQUEST_START_BYTES])
        if self._start is not None:
            room = REQUEST_START_BYTES - len(self._start)
            if room > 0:
                self._start += data[:room]
        super().data_received(data)

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY:
            # Answered before its body was read: the body's rest comes first (uvicorn skips
            # it), and where the next request begins is only known once it has.
            self._start = None
        else:
            # The next request on this connection begins with what h11 holds unread: bytes
            # that came while this one was answered (super() parses them next).
            self._start = bytearray(self.conn.trailing_data[0][:REQUEST_START_BYTES])
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this only while it handles h11's RemoteProtocolError, which says
        # what was wrong. With the start unknown (the body's rest and the next request came
        # in one read), the event has no start rather than the body's bytes.
        self.bad_requests.say(self.client, None if self._start is None else bytes(self._start),
                              sys.exc_info()[1])
        try:
            super().send_400_response(msg)
        except h11.LocalProtocolError:
            self.transport.close()


#: The uvicorn method :class:`HttpProtocol` overrides; the same from uvicorn 0.29 to 0.55.
_HOOKED: Final = "send_400_response"


def _http_protocol(clock: Clock = SYSTEM_CLOCK) -> type[H11Protocol] | str:
    """:class:`HttpProtocol` (a subclass of its own, with its own record of bad requests)
    while uvicorn's h11 protocol still has the method it overrides; otherwise uvicorn's own
    choice, said as a warning at start: an override of a method no longer called would
    silently do nothing, and a traceback per bad request is the lesser harm than a dashboard
    that does not start."""
    if callable(getattr(H11Protocol, _HOOKED, None)):
        # Added once (addFilter keeps one of each): only with the hook in place, since
        # without it uvicorn's line is all that says a request was refused.
        logging.getLogger(_UVICORN_ERRORS).addFilter(_SAID_AS_EVENT)

        class ServerHttpProtocol(HttpProtocol):
            bad_requests = BadRequests(clock)

        return ServerHttpProtocol
    log.warning("web_protocol_unhooked", uvicorn=uvicorn.__version__, method=_HOOKED,
                hint="a request uvicorn cannot parse may print a traceback on the console")
    return "auto"


class _BindRefusal(logging.Filter):
    """uvicorn's line for a port it could not bind (``logger.error(exc)``: the OSError itself
    as the record's ``msg``), kept for the dashboard's own error and not printed: that error
    says it, with what helps (before session 46 both were printed, uvicorn's bare line first).
    Only the records of ``thread``, the one server starting."""

    def __init__(self, thread: threading.Thread) -> None:
        super().__init__()
        self._thread = thread
        self.refused: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self._thread.ident and isinstance(record.msg, OSError):
            self.refused = record.msg
            return False
        return True


class WebServer:
    """One dashboard server; :meth:`start` returns once it listens, :meth:`stop` ends it.

    ``jobs``: the ``jobs`` command reaching ``store`` (``hotfolder.files.jobs_command``),
    which the hints of refused actions name; ``clock``: what sessions' idle limits and the
    pacing of ``web_bad_request`` read."""

    def __init__(self, store: JobStore, web: WebSettings,
                 sources: LiveSources | None = None, *, jobs: str = JOBS_COMMAND,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.web = web
        config = uvicorn.Config(create_app(store, web, sources, jobs=jobs, clock=clock),
                                host=web.host, port=web.port,
                                log_config=None, access_log=False, lifespan="off",
                                server_header=False, http=_http_protocol(clock))
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when ``web.port`` is 0)."""
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.web.port

    @property
    def url(self) -> str:
        host = self.web.host if ":" not in self.web.host else f"[{self.web.host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        if not self.web.users:
            log.warning("web_no_users", hint="add users under web: to let anyone log in")
        self._thread = threading.Thread(target=self._server.run, name="web-dashboard",
                                        daemon=True)
        bind = _BindRefusal(self._thread)
        uvicorn_log = logging.getLogger(_UVICORN_ERRORS)
        uvicorn_log.addFilter(bind)
        try:
            self._thread.start()
            self._wait_started(bind)
        finally:
            uvicorn_log.removeFilter(bind)
        log.info("web_started", url=self.url, users=len(self.web.users))

    def _wait_started(self, bind: _BindRefusal) -> None:
        deadline = SYSTEM_CLOCK.monotonic() + STARTUP_TIMEOUT_S
        idle = threading.Event()
        while not self._server.started:
            if self._thread is not None and not self._thread.is_alive():
                raise self._not_listening(bind.refused)
            if SYSTEM_CLOCK.monotonic() > deadline:
                raise PipelineError("the web dashboard did not start in time",
                                    hint="see the log for why")
            idle.wait(0.05)  # uvicorn offers no event for "listening"

    def _not_listening(self, refused: OSError | None) -> PipelineError:
        """The error for a server that ended before it listened: what the system said of
        the address (``refused``: uvicorn's bind error, None when it said none)."""
        where = f"the web dashboard could not listen on {self.web.host}:{self.web.port}"
        if refused is not None and refused.errno == errno.EADDRINUSE:
            return PipelineError(f"{where}: the port is already in use",
                                 hint="another program listens there (another dashboard?): "
                                 "choose another web.port in the settings")
        if refused is not None:
            # The system's words for its errno (uvicorn's own strerror repeats the address);
            # a host name that does not resolve is a socket.gaierror, whose errno (-2) is the
            # resolver's, not the system's: os.strerror called it "Unknown error -2" (review,
            # rv46-loose), its own strerror says it.
            if isinstance(refused, socket.gaierror) or not refused.errno:
                said = refused.strerror or str(refused)
            else:
                said = os.strerror(refused.errno)
            return PipelineError(f"{where}: {said}",
                                 hint="check web.host and web.port in the settings: the host "
                                 "must be an address of this machine")
        return PipelineError(where,
                             hint="is the port taken? choose another web.port in the settings")

    def serve_forever(self, on_started: Callable[[], None] | None = None) -> None:
        """Serve until Ctrl-C or SIGTERM (handled here, so the process exits 0 after it);
        ``on_started`` runs once the port is listening (where the address is announced)."""
        stop = threading.Event()
        with stop_on_signals(stop):
            self.start()
            try:
                if on_started is not None:
                    on_started()
                while not stop.wait(0.5):
                    if self._thread is None or not self._thread.is_alive():
                        raise PipelineError("the web dashboard stopped on its own",
                                            hint="see the log for why")
            finally:
                self.stop()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STARTUP_TIMEOUT_S)
            self._thread = None
        log.info("web_stopped")



@contextlib.contextmanager
def serving(
    daemon: HotFolderDaemon, web_client: WebApiClient | None, out: TextIO
) -> Iterator[WebServer]:
    """``watch --serve``: the dashboard on the daemon's store while the daemon runs."""
    server = WebServer(daemon.store, daemon.settings.web, daemon_sources(daemon, web_client),
                       jobs=jobs_command(daemon.settings))
    server.start()
    print(f"dashboard on {server.url}", file=out, flush=True)
    try:
        yield server
    finally:
        server.stop()
