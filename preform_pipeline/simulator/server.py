"""The simulator's HTTP server: stdlib ``ThreadingHTTPServer`` speaking the Local API contract.

A request's line and headers must arrive within ``head_timeout`` seconds of their first byte
(408 ``REQUEST_TIMEOUT`` once the request line came, the connection closed; without a whole
request line the connection is closed unanswered); then it goes through
:meth:`SimulatorServer._dispatch`:

1. fault injection counts it (and may end the process, ``--exit-after-requests``);
2. the body is read in full (so a keep-alive connection stays in step whatever the answer),
   within ``body_timeout`` seconds (408 ``REQUEST_TIMEOUT`` otherwise, the connection closed);
3. the route table finds the operation (404 / 405 ErrorModel otherwise);
4. fault injection may answer 500 instead (``--error-rate``);
5. ``?async=true`` starts an :class:`~preform_pipeline.simulator.operations.Operation` and
   answers 202 ``{"operationId": ...}``; otherwise the operation runs in the request thread.

Running an operation = ask the engine how big the work is, spend the latency profile's price
for it waiting (reporting progress), give fault injection its chance, then let the engine do
it. Every error is an ErrorModel body: :class:`SimError` keeps its status and code, any other
exception is a 500 ``INTERNAL_ERROR`` whose traceback goes to the log and to
:meth:`SimulatorServer.check`, and the server keeps serving.

Every exchange is logged as one structured ``http_exchange`` event and kept in memory
(:attr:`SimulatorServer.exchanges`) for tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from urllib.parse import parse_qs, urlsplit

from preform_pipeline import __version__
from preform_pipeline.logging import get_logger
from preform_pipeline.simulator.faults import FaultInjector, FaultPlan, hard_exit
from preform_pipeline.simulator.http import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_JSON_DEPTH,
    DEFAULT_POLL_INTERVAL_S,
    BadFraming,
    JsonRequestHandler,
    ThreadedHTTPApp,
    json_deeper_than,
    read_body,
)
from preform_pipeline.simulator.latency import LatencyProfile, latency_profile, spend
from preform_pipeline.simulator.operations import OperationRegistry
from preform_pipeline.simulator.protocol import Json, ProgressCallback, SceneEngine, SimError
from preform_pipeline.simulator.routes import (
    GET_ALL_OPERATIONS,
    GET_OPERATION,
    Router,
    RoutingError,
)

__all__ = [
    "ACCEPTED_STATUS",
    "ACCEPT_BEFORE_START_S",
    "BAD_REQUEST",
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_EXCHANGE_LOG_SIZE",
    "DEFAULT_HEAD_TIMEOUT_S",
    "DEFAULT_HOST",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_POLL_INTERVAL_S",
    "INTERNAL_ERROR",
    "LATENCY_PROGRESS_SHARE",
    "NOT_IMPLEMENTED",
    "REQUEST_TIMEOUT",
    "Exchange",
    "ServerFailure",
    "SimulatorServer",
    "error_body",
    "load_engine",
]

DEFAULT_HOST = "127.0.0.1"

#: HTTP status of an ``?async=true`` answer (the contract's OperationAcceptedModel response).
ACCEPTED_STATUS: Final = 202

#: ErrorModel codes the server itself produces (the engine brings its own).
BAD_REQUEST: Final = "BAD_REQUEST"
#: A body shorter than its Content-Length, or too slow, within the body deadline, or headers
#: too slow for the head deadline (408).
REQUEST_TIMEOUT: Final = "REQUEST_TIMEOUT"
INVALID_JSON: Final = "INVALID_JSON"
INVALID_BODY: Final = "INVALID_BODY"
MISSING_BODY: Final = "MISSING_BODY"
INVALID_QUERY_PARAMETER: Final = "INVALID_QUERY_PARAMETER"
NOT_FOUND: Final = "NOT_FOUND"
METHOD_NOT_ALLOWED: Final = "METHOD_NOT_ALLOWED"
#: A method or HTTP version http.server does not know (``TRACE``, ``get``, ``HTTP/2.0``): 501
#: or 505 as HTTP says, not a failure.
NOT_IMPLEMENTED: Final = "NOT_IMPLEMENTED"
OPERATION_NOT_FOUND: Final = "OPERATION_NOT_FOUND"
INTERNAL_ERROR: Final = "INTERNAL_ERROR"
SERVER_SHUTTING_DOWN: Final = "SERVER_SHUTTING_DOWN"

#: Request bodies are small JSON documents (paths, settings); anything bigger is a mistake.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

#: Exchanges kept in memory for :attr:`SimulatorServer.exchanges`.
DEFAULT_EXCHANGE_LOG_SIZE = 10_000

#: Longest an async operation waits for its 202 answer to be sent before it starts anyway.
ACCEPT_BEFORE_START_S = 5.0

#: Part of an operation's progress bar spent on simulated latency when it has any; the engine's
#: own progress fills the rest.
LATENCY_PROGRESS_SHARE = 0.8

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})

_log = get_logger(__name__)


def error_body(code: str, message: str) -> Json:
    """An ErrorModel body."""
    return {"error": {"code": code, "message": message}}


@dataclass(frozen=True)
class Exchange:
    """One request and the answer it got, as kept in :attr:`SimulatorServer.exchanges`."""

    method: str
    path: str
    status: int
    elapsed_s: float
    operation_id: str | None = None
    async_operation: str | None = None


@dataclass(frozen=True)
class ServerFailure:
    """An unexpected exception inside the server or engine (answered 500 INTERNAL_ERROR)."""

    method: str
    path: str
    operation_id: str | None
    exception: BaseException


class _Handler(JsonRequestHandler):
    server_version = f"PreFormSimulator/{__version__}"

    def error_payload(self, status: int, text: str) -> bytes:
        # http.server refuses before dispatch with a 4xx (408: headers too slow), or 501/505
        # for a method or an HTTP version it does not implement: never the simulator's failure.
        if status == 408:
            code = REQUEST_TIMEOUT
        else:
            code = BAD_REQUEST if status < 500 else NOT_IMPLEMENTED
        payload = _encode(error_body(code, text))
        # Logged before answering, as in SimulatorServer._dispatch.
        _log.info(
            "http_exchange", method=self.command, path=getattr(self, "path", None), status=status
        )
        return payload


class SimulatorServer(ThreadedHTTPApp):
    """A Local API server around a :class:`SceneEngine`, bound on construction.

    Use it as a context manager (serves in a background thread, like pytest-httpserver's
    ``HTTPServer``) or call :meth:`serve_forever` from the main thread (``cli.py`` does).
    ``clock`` times each exchange and the latency spent; ``wait(seconds) -> stopped`` is where
    latency is spent (the stop event's wait unless given), so a test that passes a fake of
    both reads an operation's price in :attr:`exchanges` without waiting for it.
    ``body_timeout`` is how long a request's body may take to arrive after its headers,
    ``head_timeout`` how long its request line and headers may take after their first byte.
    """

    thread_name_prefix = "sim-http"

    def __init__(
        self,
        engine: SceneEngine,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        latency: LatencyProfile | None = None,
        faults: FaultPlan | None = None,
        exchange_log_size: int = DEFAULT_EXCHANGE_LOG_SIZE,
        exit: Callable[[int], NoReturn] = hard_exit,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT_S,
    ) -> None:
        self.engine = engine
        self.body_timeout = body_timeout
        self.latency = latency if latency is not None else latency_profile("instant")
        self.stopping = threading.Event()
        self.faults = FaultInjector(faults or FaultPlan(), stop=self.stopping, exit=exit)
        self.operations = OperationRegistry()
        self.router = Router()
        self._clock = clock
        # Where latency is spent: the stop event's wait (a shutdown ends it), or a test's fake
        # that moves ``clock`` on instead of waiting.
        self._spend_wait = wait if wait is not None else self.stopping.wait
        self._lock = threading.Lock()
        self._exchanges: deque[Exchange] = deque(maxlen=exchange_log_size)
        self._failures: list[ServerFailure] = []
        super().__init__(
            host=host,
            port=port,
            handler=_Handler,
            poll_interval=poll_interval,
            head_timeout=head_timeout,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def _on_shutdown(self) -> None:
        # Release hung operations and simulated latency before the serving loop stops.
        self.stopping.set()

    # -- what happened -----------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    @property
    def failures(self) -> list[ServerFailure]:
        with self._lock:
            return list(self._failures)

    def check(self) -> None:
        """Re-raise the first unexpected server-side exception (as pytest-httpserver does)."""
        failures = self.failures
        if failures:
            raise failures[0].exception

    # -- requests ----------------------------------------------------------------------------

    def _dispatch(self, handler: JsonRequestHandler) -> None:
        started = self._clock()
        method = handler.command.upper()
        target = urlsplit(handler.path)
        path = target.path or "/"
        self.faults.on_request(method, path)
        operation_id: str | None = None
        async_id: str | None = None
        headers: dict[str, str] = {}
        answered = threading.Event()
        status: int
        payload: Any
        try:
            raw = read_body(
                handler, DEFAULT_MAX_BODY_BYTES, accept_chunked=True, timeout_s=self.body_timeout
            )
            match = self.router.resolve(method, path)
            operation_id = match.operation_id
            injected = self.faults.simulated_error(operation_id)
            if injected is not None:
                raise injected
            query = parse_qs(target.query, keep_blank_values=True)
            run_async = match.route.runs_async and _flag(query, "async")
            body = _parse_json(raw)
            if body is None and match.route.empty_body:
                body = {}
            if match.route.body_required and body is None:
                raise SimError(400, MISSING_BODY, f"{operation_id} needs a JSON object body")
            params = dict(match.params)
            for name in match.route.flags:
                if name in query:
                    params[name] = "true" if _flag(query, name) else "false"
            if operation_id == GET_ALL_OPERATIONS:
                status, payload = 200, self.operations.listing_json()
            elif operation_id == GET_OPERATION:
                status, payload = 200, self._operation_detail(params["id"])
            elif run_async:
                async_id = self._start_async(operation_id, params, body, answered)
                status, payload = ACCEPTED_STATUS, {"operationId": async_id}
            else:
                status, payload = 200, self._execute(operation_id, params, body, None)
            # Serialise inside the try: an engine answer JSON cannot express is an engine bug.
            encoded = json.dumps(payload).encode()
        except BadFraming as exc:
            handler.close_connection = True
            headers["Connection"] = "close"
            code = REQUEST_TIMEOUT if exc.status == 408 else BAD_REQUEST
            status, encoded = exc.status, _encode(error_body(code, str(exc)))
        except RoutingError as exc:
            code = NOT_FOUND if exc.status == 404 else METHOD_NOT_ALLOWED
            if exc.allowed:
                headers["Allow"] = ", ".join(exc.allowed)
            status, encoded = exc.status, _encode(error_body(code, str(exc)))
        except SimError as exc:
            status, encoded = exc.status, _encode(exc.body())
        except Exception as exc:
            self._record_failure(method, handler.path, operation_id, exc)
            status = 500
            encoded = _encode(error_body(INTERNAL_ERROR, _internal_message(operation_id, exc)))
        elapsed = self._clock() - started
        exchange = Exchange(method, handler.path, status, elapsed, operation_id, async_id)
        with self._lock:
            # Recorded before answering: a test that got its answer finds the exchange here.
            self._exchanges.append(exchange)
        # Logged before answering too: once the client has its answer the event must already
        # exist, or a reader that stops listening then (capture_logs) misses it.
        _log.info(
            "http_exchange",
            method=method,
            path=handler.path,
            status=status,
            elapsed_ms=round(elapsed * 1000, 2),
            operation=operation_id,
            async_operation=async_id,
        )
        self._send(handler, status, encoded, headers)
        answered.set()

    def _send(
        self, handler: JsonRequestHandler, status: int, encoded: bytes, headers: dict[str, str]
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(encoded)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(encoded)
        except OSError as exc:  # the client went away; nothing left to tell it
            handler.close_connection = True
            _log.info("http_client_gone", path=handler.path, status=status, error=str(exc))

    def _operation_detail(self, id: str) -> Json:
        operation = self.operations.get(id)
        if operation is None:
            raise SimError(404, OPERATION_NOT_FOUND, f"no operation with id {id!r}")
        return operation.snapshot().detail_json()

    def _start_async(
        self, operation_id: str, params: dict[str, str], body: Any, answered: threading.Event
    ) -> str:
        def work(operation: Any) -> Any:
            # The operation starts once its 202 is on the wire, as a client would expect: a
            # fault striking at once must not swallow the answer that names the operation.
            answered.wait(ACCEPT_BEFORE_START_S)
            result = self._execute(operation_id, params, body, operation.report)
            json.dumps(result)  # fail the operation, not a later poll, if it cannot be sent
            return result

        def failure_body(exc: BaseException) -> Json:
            if isinstance(exc, SimError):
                return exc.body()
            self._record_failure("ASYNC", operation_id, operation_id, exc)
            return error_body(INTERNAL_ERROR, _internal_message(operation_id, exc))

        return self.operations.start(operation_id, work, failure_body).id

    def _execute(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None,
    ) -> Any:
        """Price the work, spend the price waiting, give faults their turn, run the engine."""
        work = self.engine.estimate_work(operation_id, params, body)
        cost = self.latency.cost_seconds(operation_id, work)
        share = LATENCY_PROGRESS_SHARE if cost > 0 else 0.0
        self._wait(cost / 2, _scaled(progress, 0.0, share / 2))
        self.faults.during_operation(operation_id, progress)
        self._wait(cost / 2, _scaled(progress, share / 2, share))
        result = self.engine.call(
            operation_id, params, body, progress=_scaled(progress, share, 1.0)
        )
        # Operations the contract answers without a body still get a JSON object, so every
        # client can parse every success.
        return {} if result is None else result

    def _wait(self, seconds: float, progress: ProgressCallback | None) -> None:
        if spend(seconds, progress, self._spend_wait, clock=self._clock):
            raise SimError(503, SERVER_SHUTTING_DOWN, "the simulator is shutting down")

    def _record_failure(
        self, method: str, path: str, operation_id: str | None, exc: BaseException
    ) -> None:
        with self._lock:
            self._failures.append(ServerFailure(method, path, operation_id, exc))
        _log.error(
            "internal_error",
            method=method,
            path=path,
            operation=operation_id,
            exc_info=(type(exc), exc, exc.__traceback__),
        )


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    """Map a sub-task's progress in [0, 1] onto [low, high] of the whole operation."""
    if progress is None:
        return None
    report = progress

    def scaled(fraction: float) -> None:
        report(low + (high - low) * min(1.0, max(0.0, fraction)))

    return scaled


def _encode(payload: Json) -> bytes:
    return json.dumps(payload).encode()


def _internal_message(operation_id: str | None, exc: BaseException) -> str:
    where = operation_id or "request"
    return f"simulator failed in {where}: {type(exc).__name__}: {exc}"


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    if json_deeper_than(raw, DEFAULT_MAX_JSON_DEPTH):
        raise SimError(
            400, INVALID_JSON, f"request body nests deeper than {DEFAULT_MAX_JSON_DEPTH} levels"
        )
    try:
        body = json.loads(raw.decode("utf-8"))
    # ValueError beyond those two: a number of more digits than Python converts.
    except (ValueError, RecursionError) as exc:
        raise SimError(400, INVALID_JSON, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SimError(
            400, INVALID_BODY, f"request body must be a JSON object, got {type(body).__name__}"
        )
    return body


def _flag(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name)
    if not values:
        return False
    value = values[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SimError(
        400, INVALID_QUERY_PARAMETER, f"query parameter {name}={values[-1]!r} is not a boolean"
    )


def load_engine(
    *,
    scene_cache_size: int,
    fleet_dir: Any,
    work_dir: Any,
    factory: str | None = None,
    options: dict[str, Any] | None = None,
) -> SceneEngine:
    """Import and build the engine lazily (``preform_pipeline.simulator.engine.SimEngine``).

    ``factory`` (``"package.module:Name"``) swaps in another engine class with the same
    constructor, for tests; import errors propagate so a broken engine fails start-up loudly.
    ``options`` are further keyword arguments, passed only when given so that a stand-in
    engine needs just the three common ones.
    """
    import importlib

    module_name, _, attr = (factory or "preform_pipeline.simulator.engine:SimEngine").partition(
        ":"
    )
    module = importlib.import_module(module_name)
    engine_class = getattr(module, attr or "SimEngine")
    engine: SceneEngine = engine_class(
        scene_cache_size=scene_cache_size, fleet_dir=fleet_dir, work_dir=work_dir, **(options or {})
    )
    return engine
