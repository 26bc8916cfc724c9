"""The Dashboard simulator's HTTP server: stdlib ``ThreadingHTTPServer`` speaking the Web API.

A request's line and headers must arrive within ``head_timeout`` seconds of their first byte
(408 once the request line came, the connection closed; without a whole request line the
connection is closed unanswered); then it goes through :meth:`DashboardServer._dispatch`:

1. the body is read in full (so a keep-alive connection stays in step whatever the answer),
   within ``body_timeout`` seconds (408 otherwise, the connection closed);
2. the per-IP limit counts it (429 with ``Retry-After`` beyond it);
3. the route table finds the endpoint (404 for an unknown path, as Django's URL routing
   answers before any view runs);
4. the token endpoints check the application's credentials (405 for another method); every
   other endpoint needs a live bearer token (401 otherwise), then the per-user hourly limit
   counts it (429), and only then is a method the path does not serve 405: Django REST
   framework authenticates, checks permissions and throttles before it looks up the method;
   ``HEAD`` is the ``GET``'s answer without its body and ``OPTIONS`` DRF's metadata, both
   after those checks (on the token endpoints ``OPTIONS`` is Django's empty 200);
5. a read is answered from a :class:`~.fleet_view.FleetSnapshot` at the clock's ``now``,
   filtered and paginated as the Web API does; a group change (create, update, delete,
   members, bulk-add printers) runs one rule of :mod:`.groups` on the Dashboard's group table
   and answers with the documented status (201, 200, 204) and body.

Errors are JSON: ``{"detail": ...}`` for the API (Django REST framework's shape), the OAuth2
``{"error": ...}`` bodies for the token endpoints. An unexpected exception is a 500 whose
traceback is logged and kept for :meth:`DashboardServer.check`; the server keeps serving.
Every exchange is logged as one ``dashboard_exchange`` event and kept in memory
(:attr:`DashboardServer.exchanges`) for tests.
"""

from __future__ import annotations

import copy
import email.utils
import json
import math
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from preform_pipeline import __version__
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.logging import get_logger
from preform_pipeline.simulator.http import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_POLL_INTERVAL_S,
    BadFraming,
    JsonRequestHandler,
    ThreadedHTTPApp,
    read_body,
)
from preform_pipeline.simulator.protocol import SimError

from . import groups as group_rules
from . import records
from .auth import AuthFailure, TokenStore, parse_form
from .filtering import BadFilter, filter_events, filter_prints, last_value
from .fleet_view import SIM_USER, SIM_USER_EMAIL, FleetSnapshot, FleetView
from .groups import GroupRefusal
from .limits import RateLimits, Throttled
from .records import Record, page_record

__all__ = [
    "API_PREFIX",
    "DEFAULT_HOST",
    "DEFAULT_MAX_PER_PAGE",
    "DEFAULT_PER_PAGE",
    "DashboardExchange",
    "DashboardServer",
    "ENDPOINTS",
]

DEFAULT_HOST: Final = "127.0.0.1"
API_PREFIX: Final = "/developer/v1"
#: Page size when a request names none (the Web API does not document its own).
DEFAULT_PER_PAGE: Final = 20
#: Larger ``per_page`` values are cut to this, as Django REST framework's ``max_page_size``.
DEFAULT_MAX_PER_PAGE: Final = 100
#: Request bodies are small forms; anything bigger is refused.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
DEFAULT_EXCHANGE_LOG_SIZE: Final = 10_000

# (method, path pattern) of every endpoint served; {name} is one path segment.
ENDPOINTS: Final = (
    ("POST", "/o/token/"),
    ("POST", "/o/revoke_token/"),
    ("GET", "/printers/"),
    ("GET", "/printers/{printer_serial}/"),
    ("GET", "/printers/{printer_serial}/prints/"),
    ("GET", "/prints/"),
    ("GET", "/tanks/"),
    ("GET", "/cartridges/"),
    ("GET", "/events/"),
    ("GET", "/groups/"),
    ("POST", "/groups/"),
    ("POST", "/groups/bulk-add-printers/"),
    ("PATCH", "/groups/{group_id}/"),
    ("DELETE", "/groups/{group_id}/"),
    ("POST", "/groups/{group_id}/members/"),
    ("PUT", "/groups/{group_id}/members/"),
    ("DELETE", "/groups/{group_id}/members/"),
    ("GET", "/groups/{group_id}/queue/"),
)
_NOT_FOUND: Final = {"detail": "Not found."}

_log = get_logger(__name__)


@dataclass(frozen=True)
class DashboardExchange:
    """One request and the answer it got (kept in :attr:`DashboardServer.exchanges`)."""

    method: str
    path: str
    status: int
    elapsed_s: float
    client: str
    user: str | None = None
    throttled: str | None = None


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    throttled: str | None = None


class _Refusal(Exception):
    """An error answer raised from deep inside a handler."""

    def __init__(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.answer = _Answer(status, dict(body), dict(headers or {}))


class _WrongMethod(_Refusal):
    """405: the path is served, not for this method; ``oauth``: a token endpoint's path."""

    def __init__(self, method: str, allowed: Sequence[str], *, oauth: bool) -> None:
        super().__init__(
            405, {"detail": f'Method "{method}" not allowed.'}, {"Allow": ", ".join(allowed)}
        )
        self.oauth = oauth


#: Django's ``View.http_method_names``: the order its ``Allow`` header lists methods in.
_METHOD_ORDER: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
#: Django REST framework's default renderers and parsers, as its OPTIONS metadata lists them.
_RENDERS: Final = ("application/json", "text/html")
_PARSES: Final = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


def _allowed(served: Sequence[str]) -> list[str]:
    """The ``Allow`` list of a view serving ``served``: every Django view answers OPTIONS
    (Django REST framework's with its metadata, plain ones with an empty 200), and HEAD
    wherever it has GET."""
    methods = {*served, "OPTIONS"}
    if "GET" in methods:
        methods.add("HEAD")
    return [m for m in _METHOD_ORDER if m in methods]


def _metadata(parts: Sequence[str]) -> dict[str, Any]:
    """Django REST framework's ``SimpleMetadata`` answer to OPTIONS (no ``actions``: those
    describe a serializer's fields, which the Web API's documentation does not give). The
    view's name is the path's words: the real views' class names are not published."""
    words = [p.replace("-", " ").replace("_", " ") for p in parts if not p.startswith("{")]
    return {
        "name": " ".join(words).title(),
        "description": "",
        "renders": list(_RENDERS),
        "parses": list(_PARSES),
    }


@dataclass(frozen=True)
class _Route:
    method: str
    parts: tuple[str, ...]

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.parts):
            return None
        params = {}
        for part, segment in zip(self.parts, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    return None
                params[part.strip("{}")] = segment
            elif part != segment:
                return None
        return params


_ROUTES: Final = tuple(
    _Route(method, tuple(pattern.strip("/").split("/"))) for method, pattern in ENDPOINTS
)


class _Handler(JsonRequestHandler):
    server_version = f"DashboardSimulator/{__version__}"
    default_error_text = "Malformed request."

    # Django lists TRACE among the methods a view may implement; on a path none of the API's
    # views answers it for, Django REST framework says 405 (with Allow), not http.server's 501.
    do_TRACE = JsonRequestHandler._dispatch

    #: The server's clock (set per server by :func:`_handler_on`).
    clock: Clock = SYSTEM_CLOCK

    def error_payload(self, status: int, text: str) -> bytes:
        return json.dumps({"detail": text}).encode()

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The real Dashboard's ``Date`` is read from the clock that stamps its prints'
        # ``created_at``; the client measures the skew between the two clocks from it. With
        # a simulated clock (a test's manual one), http.server's wall time would be a
        # different clock and read as a skew of years.
        when = self.clock.now().timestamp() if timestamp is None else timestamp
        return email.utils.formatdate(when, usegmt=True)


def _handler_on(clock: Clock) -> type[_Handler]:
    """The request handler of a server whose answers describe ``clock``'s moments."""
    return type("_Handler", (_Handler,), {"clock": clock})


class DashboardServer(ThreadedHTTPApp):
    """The Web API around a :class:`FleetView`, a :class:`TokenStore` and :class:`RateLimits`.

    Bound on construction; use it as a context manager (serves in a background thread) or call
    :meth:`serve_forever`. ``clock.now()`` is the moment each answer describes; the token store
    and the limits bring their own monotonic clocks. :attr:`url` is the base URL to give a Web
    API client (the API lives under ``/developer/v1``).
    """

    thread_name_prefix = "dashboard-http"

    def __init__(
        self,
        view: FleetView,
        tokens: TokenStore,
        *,
        limits: RateLimits | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        clock: Clock = SYSTEM_CLOCK,
        default_per_page: int = DEFAULT_PER_PAGE,
        max_per_page: int = DEFAULT_MAX_PER_PAGE,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        exchange_log_size: int = DEFAULT_EXCHANGE_LOG_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT_S,
    ) -> None:
        if not 1 <= default_per_page <= max_per_page:
            raise ValueError("need 1 <= default_per_page <= max_per_page")
        self.view = view
        self.tokens = tokens
        self.limits = limits if limits is not None else RateLimits()
        self.clock = clock
        self.default_per_page = default_per_page
        self.max_per_page = max_per_page
        self.body_timeout = body_timeout
        self._lock = threading.Lock()
        self._exchanges: deque[DashboardExchange] = deque(maxlen=exchange_log_size)
        self._failures: list[BaseException] = []
        super().__init__(
            host=host,
            port=port,
            handler=_handler_on(clock),
            poll_interval=poll_interval,
            head_timeout=head_timeout,
        )

    # -- what happened -----------------------------------------------------------------------

    @property
    def exchanges(self) -> list[DashboardExchange]:
        with self._lock:
            return list(self._exchanges)

    def check(self) -> None:
        """Re-raise the first unexpected server-side exception (as pytest-httpserver does)."""
        with self._lock:
            failures = list(self._failures)
        if failures:
            raise failures[0]

    # -- requests ----------------------------------------------------------------------------

    def _dispatch(self, handler: JsonRequestHandler) -> None:
        started = time.monotonic()
        method = handler.command.upper()
        target = urlsplit(handler.path)
        client = str(handler.client_address[0])
        try:
            body = read_body(
                handler,
                DEFAULT_MAX_BODY_BYTES,
                accept_chunked=False,
                limit_unit="",
                timeout_s=self.body_timeout,
            )
            answer = self._answer(handler, method, target.path or "/", target.query, body, client)
        except BadFraming as exc:
            handler.close_connection = True
            answer = _Answer(exc.status, {"detail": str(exc)}, {"Connection": "close"})
        except Exception as exc:
            with self._lock:
                self._failures.append(exc)
            _log.error(
                "internal_error",
                method=method,
                path=target.path,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            answer = _Answer(500, {"detail": f"simulator failed: {type(exc).__name__}: {exc}"})
        elapsed = time.monotonic() - started
        exchange = DashboardExchange(
            method, handler.path, answer.status, elapsed, client, answer.user, answer.throttled
        )
        with self._lock:
            # Recorded before answering: a test that got its answer finds the exchange here.
            self._exchanges.append(exchange)
        self._send(handler, answer)
        _log.info(
            "dashboard_exchange",
            method=method,
            path=handler.path,
            status=answer.status,
            elapsed_ms=round(elapsed * 1000, 2),
            user=answer.user,
            throttled=answer.throttled,
        )

    def _answer(
        self,
        handler: JsonRequestHandler,
        method: str,
        path: str,
        query: str,
        body: bytes,
        client: str,
    ) -> _Answer:
        throttled = self.limits.take_ip(client)
        if throttled is not None:
            return _throttled(throttled)
        wrong_method: _WrongMethod | None = None
        try:
            route, params = self._route(method, path)
        except _WrongMethod as wrong:
            if wrong.oauth:  # the OAuth views are plain Django views: 405 before anything
                return wrong.answer
            wrong_method = wrong
        except _Refusal as refusal:
            return refusal.answer
        if wrong_method is None and method == "OPTIONS" and route.parts[0] == "o":
            # django-oauth-toolkit's views are plain Django views: View.options, no checks.
            return _Answer(200, None, self._allowed_at(route.parts))
        authorization = handler.headers.get("Authorization")
        try:
            if wrong_method is None and route.parts == ("o", "token"):
                return self._token(parse_form(body), authorization)
            if wrong_method is None and route.parts == ("o", "revoke_token"):
                self.tokens.revoke(parse_form(body), authorization)
                return _Answer(200, None)
            user = self.tokens.authenticate(authorization)
        except AuthFailure as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="api"'} if "detail" in exc.body else {}
            return _Answer(exc.status, exc.body, headers)
        throttled = self.limits.take_user(user)
        if throttled is not None:
            answer = _throttled(throttled)
            answer.user = user
            return answer
        if wrong_method is not None:
            wrong_method.answer.user = user
            return wrong_method.answer
        try:
            if method == "OPTIONS":
                allow = self._allowed_at(route.parts)
                return _Answer(200, _metadata(route.parts), allow, user=user)
            snapshot = self.view.snapshot(self.clock.now())
            if method in ("GET", "HEAD"):  # HEAD: the GET's answer, sent without its body
                status, payload = 200, self._get(route, params, parse_qs(query), snapshot, handler)
            else:
                content_type = handler.headers.get("Content-Type")
                status, payload = self._change_group(route, params, content_type, body, snapshot)
        except _Refusal as refusal:
            refusal.answer.user = user
            return refusal.answer
        except GroupRefusal as refused:
            status, payload = refused.status, refused.body
        except SimError as exc:  # the fleet directory cannot be read
            status, payload = exc.status, {"detail": exc.error_message}
        return _Answer(status, payload, user=user)

    def _route(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        if not path.startswith(API_PREFIX + "/"):
            raise _Refusal(404, _NOT_FOUND)
        # Split the raw path: a serial holding an encoded "/" is one segment, not two.
        segments = [unquote(s) for s in path[len(API_PREFIX) + 1 :].strip("/").split("/")]
        served: dict[str, tuple[_Route, dict[str, str]]] = {}
        for route in _ROUTES:
            params = route.match(segments)
            if params is not None:
                served[route.method] = (route, params)
        if not served:
            raise _Refusal(404, _NOT_FOUND)
        oauth = segments[0] == "o"
        allowed = _allowed(list(served))
        if method in allowed and method in ("HEAD", "OPTIONS"):
            # Django's View.setup makes HEAD the view's GET; DRF's APIView.options answers
            # OPTIONS from the view itself: both after authentication, as any method.
            route, params = served["GET"] if method == "HEAD" else next(iter(served.values()))
            return _Route(method, route.parts), params
        if method in served:
            return served[method]
        raise _WrongMethod(method, allowed, oauth=oauth)

    def _allowed_at(self, parts: Sequence[str]) -> dict[str, str]:
        return {"Allow": ", ".join(_allowed([r.method for r in _ROUTES if r.parts == parts]))}

    def _token(self, form: Mapping[str, str], authorization: str | None) -> _Answer:
        self.tokens.check_grant(form)
        user = self.tokens.authenticate_client(form, authorization)
        throttled = self.limits.take_user(user)
        if throttled is not None:
            answer = _throttled(throttled)
            answer.user = user
            return answer
        grant = self.tokens.issue(user)
        return _Answer(200, self.tokens.answer(grant), {"Cache-Control": "no-store"}, user=user)

    def _get(
        self,
        route: _Route,
        params: Mapping[str, str],
        query: Mapping[str, list[str]],
        snapshot: FleetSnapshot,
        handler: JsonRequestHandler,
    ) -> Any:
        resource = route.parts[0]
        if resource == "printers" and len(route.parts) == 1:
            return snapshot.printers
        if resource == "printers":
            serial = params["printer_serial"]
            printer = snapshot.printer(serial)
            if printer is None:
                raise _Refusal(404, _NOT_FOUND)
            if len(route.parts) == 2:
                return printer
            runs = _filter_prints(snapshot.runs_of(serial), query, snapshot)
            return self._page(runs, query, handler)
        if resource == "prints":
            return self._page(_filter_prints(snapshot.runs, query, snapshot), query, handler)
        if resource == "tanks":
            return self._page(snapshot.tanks, query, handler)
        if resource == "cartridges":
            return self._page(snapshot.cartridges, query, handler)
        if resource == "events":
            try:
                return self._page(filter_events(snapshot.events, query), query, handler)
            except BadFilter as refused:
                raise _Refusal(400, refused.body) from None
        if len(route.parts) == 1:
            return snapshot.groups
        group = snapshot.resolve_group(params["group_id"])
        if group is None:
            raise _Refusal(404, _NOT_FOUND)
        return snapshot.queue(group)

    def _change_group(
        self,
        route: _Route,
        params: Mapping[str, str],
        content_type: str | None,
        body: bytes,
        snapshot: FleetSnapshot,
    ) -> tuple[int, Any]:
        """One group change on the Dashboard's table: (status, answer body)."""
        method = route.method
        table = self.view.group_table
        group_id = params.get("group_id", "")

        def seed() -> list[Record]:
            return copy.deepcopy(snapshot.groups)

        if route.parts == ("groups", "{group_id}") and method == "DELETE":
            table.change(seed, lambda groups: group_rules.delete_group(groups, group_id))
            return 204, None
        data = group_rules.parse_body(content_type, body)
        if route.parts == ("groups",):
            creator = {"user": SIM_USER["username"], "email": SIM_USER_EMAIL,
                       "first_name": SIM_USER["first_name"], "last_name": SIM_USER["last_name"]}
            now = records.iso(self.clock.now())
            return 201, table.change(
                seed, lambda groups: group_rules.create_group(groups, data, now=now,
                                                              creator=creator)
            )
        if route.parts == ("groups", "bulk-add-printers"):
            table.change(
                seed,
                lambda groups: group_rules.move_printers(
                    groups, data, lambda s: snapshot.printer(s) is not None
                ),
            )
            return 200, None  # the contract documents no body for this answer
        if route.parts == ("groups", "{group_id}"):
            return 200, table.change(
                seed, lambda groups: group_rules.update_group(groups, group_id, data)
            )
        rules = {
            "POST": (201, group_rules.add_member),
            "PUT": (200, group_rules.update_member),
            "DELETE": (204, group_rules.remove_member),
        }
        status, rule = rules[method]
        answer = table.change(seed, lambda groups: rule(groups, group_id, data))
        return status, answer

    def _page(
        self, items: Sequence[Record], query: Mapping[str, list[str]], handler: JsonRequestHandler
    ) -> Record:
        """One page as Django REST framework's page-number pagination answers it."""
        per_page = self.default_per_page
        wanted = last_value(query, "per_page")
        if wanted is not None and wanted.strip().isdigit() and int(wanted) > 0:
            per_page = min(int(wanted), self.max_per_page)
        pages = max(1, math.ceil(len(items) / per_page))
        page_text = last_value(query, "page") or "1"
        if page_text == "last":
            page = pages
        elif page_text.strip().isdigit():
            page = int(page_text)
        else:
            raise _Refusal(404, {"detail": "Invalid page."})
        if not 1 <= page <= pages:
            raise _Refusal(404, {"detail": "Invalid page."})
        host = handler.headers.get("Host") or f"{self.host}:{self.port}"
        path = urlsplit(handler.path).path

        def link(number: int) -> str:
            kept = [(k, v) for k, values in query.items() if k != "page" for v in values]
            if number > 1:  # the link to page 1 names no page, as DRF's does
                kept.append(("page", str(number)))
            encoded = urlencode(kept, quote_via=quote)
            return f"http://{host}{path}" + (f"?{encoded}" if encoded else "")

        chunk = items[(page - 1) * per_page : page * per_page]
        return page_record(
            len(items),
            link(page + 1) if page < pages else None,
            link(page - 1) if page > 1 else None,
            chunk,
        )

    def _send(self, handler: JsonRequestHandler, answer: _Answer) -> None:
        encoded = b"" if answer.body is None else json.dumps(answer.body).encode()
        try:
            handler.send_response(answer.status)
            if answer.body is not None:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(encoded)))
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(encoded)
        except OSError as exc:  # the client went away
            handler.close_connection = True
            _log.info("http_client_gone", path=handler.path, error=str(exc))


def _throttled(throttled: Throttled) -> _Answer:
    return _Answer(
        429,
        {"detail": throttled.detail()},
        {"Retry-After": str(throttled.retry_after_s)},
        throttled=throttled.scope,
    )


def _filter_prints(
    runs: Sequence[Record], query: Mapping[str, list[str]], snapshot: FleetSnapshot
) -> list[Record]:
    try:
        return filter_prints(runs, query, snapshot.machine_type_of)
    except BadFilter as refused:
        raise _Refusal(400, refused.body) from None
