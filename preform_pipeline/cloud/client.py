"""The Formlabs Web API (Dashboard Developer API) client.

Every request goes through three layers, outermost first:

1. :class:`WebApiClient` builds the request (filters encoded as the API documents them), maps
   failures onto the ``CloudError`` tree and parses answers into typed results;
2. :class:`~preform_pipeline.cloud.auth.ClientCredentialsAuth` adds the bearer token, fetching
   and refreshing it as needed;
3. a metering transport takes each request, the token requests included, from the
   :class:`~preform_pipeline.cloud.ratelimit.RateLimiter`, repeats it after a 429, or a 503
   that says when to come back, once the server's ``Retry-After`` has passed (never longer
   than the rules of :mod:`preform_pipeline.retryafter` allow), and logs one
   ``web_api_request`` event per exchange.

Group changes (create, update, delete, members, bulk-add printers) send JSON bodies shaped as
the Web API's request schemas and parse the documented answers; a refusal (400 with one message
list per field, 404 for an unknown group or member) is a ``CloudError`` carrying the status and
the server's messages. Every change goes through the same three layers, rate budget included.

Paginated lists are generators: a page is fetched when the caller reaches it, never before.
The server's ``next`` link is read for its query only and the request goes to this client's own
base URL, so a link naming another host (or ``http`` behind a TLS proxy) never receives the
token.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from preform_pipeline import __version__
from preform_pipeline.answers import AnswerTooLargeError, BoundedTransport, tls_mismatch
from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.cloud.auth import (
    DEFAULT_TOKEN_REFRESH_MARGIN_S,
    NOT_THE_WEB_API_HINT,
    REVOKE_PATH,
    TOKEN_PATH,
    ClientCredentialsAuth,
    https_port_error,
    redirect_error,
)
from preform_pipeline.cloud.credentials import Credentials
from preform_pipeline.cloud.filters import PrintFilter, format_datetime
from preform_pipeline.cloud.models import (
    Cartridge,
    Event,
    GroupMember,
    NewGroup,
    Page,
    Printer,
    PrinterGroup,
    PrintRun,
    QueueItem,
    Tank,
)
from preform_pipeline.cloud.ratelimit import (
    DEFAULT_MAX_429_RETRIES,
    DEFAULT_RETRY_AFTER_S,
    BudgetSnapshot,
    RateLimiter,
)
from preform_pipeline.cloud.skew import ClockSkew
from preform_pipeline.errors import (
    CloudAuthError,
    CloudError,
    CloudRateLimitError,
    CloudUnavailableError,
    RequestInfo,
)
from preform_pipeline.logging import dropped, get_logger, hide_secrets
from preform_pipeline.retryafter import (
    MAX_RETRY_AFTER_S,
    RETRY_AFTER_STATUSES,
    WAITED_EXTENSION,
    AnswersWait,
    longest_wait,
    parse_retry_after,
)
from preform_pipeline.settings.cloud import DEFAULT_WEB_API_URL
from preform_pipeline.transportwords import transport_failure

__all__ = [
    "API_PREFIX",
    "DEFAULT_PER_PAGE",
    "DEFAULT_TIMEOUT_S",
    "WebApiClient",
    "format_datetime",
]

log = get_logger(__name__)

API_PREFIX = "/developer/v1"
#: Seconds to wait for connect, send and each read; the Web API answers lists in well under it.
DEFAULT_TIMEOUT_S = 30.0
#: Page size asked for when following pagination: fewer, larger pages spend less of the
#: hourly request budget. The server may cap it lower; its ``next`` links are followed anyway.
DEFAULT_PER_PAGE = 100
# Answer bodies quoted in errors are cut to this many characters.
_BODY_QUOTE_CHARS = 2000
#: What helps with an answer of another shape than the contract's.
_CHANGED_HINT = "the Web API may have changed; report the answer with the version in use"

R = TypeVar("R")
Params = list[tuple[str, str]]


class _MeteredTransport(httpx.BaseTransport):
    """Takes every request from the limiter, honours the Retry-After of a 429 or a 503 (at
    most :data:`~preform_pipeline.retryafter.MAX_RETRY_AFTER_S` each, and
    :data:`~preform_pipeline.retryafter.MAX_RETRY_AFTER_TOTAL_S` in all), logs each exchange,
    reads the server's clock from each answer's ``Date``, and bounds each answer's body
    (:mod:`preform_pipeline.answers`: its size, and its arrival within the request's read
    timeout, so an answer dripping in never outlasts it)."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        limiter: RateLimiter,
        clock: Clock,
        *,
        max_429_retries: int,
        wait_for_budget: bool,
        max_wait_s: float | None,
        skew: ClockSkew,
        sleep: Sleep,
    ) -> None:
        self._inner = inner
        self._limiter = limiter
        self._clock = clock
        self._sleep = sleep
        self._skew = skew
        self._max_429_retries = max_429_retries
        self._wait = wait_for_budget
        self._max_wait_s = max_wait_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        waited_s = 0.0  # the Retry-After waits this request took: at most their total
        while True:
            try:
                # A hold longer than a request waits for (a 429's "retry after a day")
                # fails now, saying until when, rather than hanging the caller.
                self._limiter.acquire(wait=self._wait, max_wait_s=self._longest_wait_s)
            except CloudRateLimitError as exc:
                raise CloudRateLimitError(
                    exc.message,
                    retry_after_s=exc.retry_after_s,
                    request=_info(request),
                    hint=exc.hint,
                ) from None
            started = self._clock.monotonic()
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as exc:
                if not dropped(__name__, logging.DEBUG):
                    log.debug(
                        "web_api_request",
                        method=request.method,
                        path=request.url.path,
                        status=None,
                        error=type(exc).__name__,
                        elapsed_ms=round((self._clock.monotonic() - started) * 1000, 1),
                        budget_remaining=self._limiter.remaining_this_hour,
                    )
                raise
            self._skew.observe(response.headers.get("Date"), self._clock.now())
            # Asked first: ``budget_remaining`` reads the job store's shared budget (a
            # query per request on PostgreSQL), worth it only when the event is kept.
            if not dropped(__name__, logging.DEBUG):
                log.debug(
                    "web_api_request",
                    method=request.method,
                    path=request.url.path,
                    status=response.status_code,
                    elapsed_ms=round((self._clock.monotonic() - started) * 1000, 1),
                    budget_remaining=self._limiter.remaining_this_hour,
                )
            status = response.status_code
            if status not in RETRY_AFTER_STATUSES:
                return response
            delay = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            limited = status == httpx.codes.TOO_MANY_REQUESTS
            if delay is None and not limited:
                return response  # a 503 that says no time: the caller's own backoff
            wait_s = DEFAULT_RETRY_AFTER_S if delay is None else delay
            if limited:
                # Everyone sharing this limiter holds back, not only this request. A 503 is
                # not: its hold would be told to every process of the ledger as a rate limit.
                self._limiter.defer(wait_s)
            bound_s, _ = longest_wait(waited_s, self._longest_wait_s)
            retries = self._wait and attempt < self._max_429_retries and wait_s <= bound_s
            # A warning when this request waits the answer out; when it gives up instead,
            # the error goes to the caller, which says what it does (defers, falls back): info.
            (log.warning if retries else log.info)(
                "web_api_rate_limited" if limited else "web_api_unavailable",
                path=request.url.path,
                status=status,
                retry_after_s=round(wait_s, 3),
                attempt=attempt + 1,
                max_retries=self._max_429_retries,
                waited_s=round(waited_s, 3),
            )
            if not retries:
                response.extensions[WAITED_EXTENSION] = waited_s  # for its error's words
                return response
            response.read()
            response.close()
            if not limited:
                self._sleep(wait_s)  # a 429's wait is the limiter's, taken at the next acquire
            waited_s += wait_s
            attempt += 1

    @property
    def _longest_wait_s(self) -> float:
        """The longest wait for a server's Retry-After or the limiter this request takes:
        the caller's ``max_wait_s``, never past :data:`MAX_RETRY_AFTER_S`."""
        if self._max_wait_s is None:
            return MAX_RETRY_AFTER_S
        return min(self._max_wait_s, MAX_RETRY_AFTER_S)

    def close(self) -> None:
        self._inner.close()


class WebApiClient:
    """Typed access to the Web API: printers, prints, tanks, cartridges, events, groups.

    Use as a context manager (or call :meth:`close`); closing logs the request budget spent.
    ``transport`` replaces the network (``httpx.MockTransport`` in tests); ``limiter`` may be
    shared by several clients of the same Dashboard user; ``clock`` and ``sleep`` are the time
    seams handed to the token cache and the default limiter. With ``wait_for_budget=False``
    a spent hourly budget or a 429 raises :class:`CloudRateLimitError` instead of waiting;
    with ``max_wait_s``, only a wait longer than that does (a run from cron that must not
    stall for the hour a spent budget can take), its message saying when to try again.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str = DEFAULT_WEB_API_URL,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = time.sleep,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        token_refresh_margin_s: float = DEFAULT_TOKEN_REFRESH_MARGIN_S,
        max_429_retries: int = DEFAULT_MAX_429_RETRIES,
        wait_for_budget: bool = True,
        max_wait_s: float | None = None,
        per_page: int = DEFAULT_PER_PAGE,
    ) -> None:
        if per_page < 1:
            raise ValueError(f"per_page must be at least 1, not {per_page}")
        self._limiter = limiter if limiter is not None else RateLimiter(clock=clock, sleep=sleep)
        self._clock = clock
        self._per_page = per_page
        self._skew = ClockSkew()
        metered = _MeteredTransport(
            BoundedTransport(transport if transport is not None else httpx.HTTPTransport()),
            self._limiter,
            clock,
            max_429_retries=max_429_retries,
            wait_for_budget=wait_for_budget,
            max_wait_s=max_wait_s,
            skew=self._skew,
            sleep=sleep,
        )
        self._http = httpx.Client(
            base_url=base_url,
            transport=metered,
            timeout=timeout_s,
            headers={
                "Accept": "application/json",
                "User-Agent": f"preform-pipeline/{__version__}",
            },
            # A redirect would carry the bearer token to wherever it points.
            follow_redirects=False,
        )
        # Kept under the base URL's own path, so a proxy prefix (https://host/formlabs) holds.
        root = str(self._http.base_url).rstrip("/")
        self._auth = ClientCredentialsAuth(
            credentials,
            token_url=root + TOKEN_PATH,
            revoke_url=root + REVOKE_PATH,
            clock=clock,
            refresh_margin_s=token_refresh_margin_s,
        )

    def __repr__(self) -> str:
        return f"WebApiClient(base_url={hide_secrets(str(self._http.base_url))!r})"

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> WebApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and log the hourly budget spent and left."""
        if self._http.is_closed:
            return
        self._http.close()
        log.info("web_api_budget", **self.budget().as_dict())

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    @property
    def auth(self) -> ClientCredentialsAuth:
        return self._auth

    def budget(self) -> BudgetSnapshot:
        """Requests spent and left in the current hour (for logs and the run report)."""
        return self._limiter.snapshot()

    @property
    def clock_skew_s(self) -> float | None:
        """The Web API's clock minus this machine's, from its latest answer (None before
        one); :func:`~preform_pipeline.cloud.skew.behind_s` turns it into window slack."""
        return self._skew.seconds

    def revoke(self) -> bool:
        """Revoke the cached access token on the server; False when none was fetched yet."""
        return self._auth.revoke(lambda request: self._send(request, authenticate=False))

    # -- printers -----------------------------------------------------------------------------

    def list_printers(self) -> tuple[Printer, ...]:
        """Every printer on the account (one request: this list is not paginated)."""
        return self._get_array(f"{API_PREFIX}/printers/", (), Printer.from_json)

    def get_printer(self, serial: str) -> Printer:
        """One printer by serial; CloudError with status 404 when the account has no such."""
        data = self._get_json(f"{API_PREFIX}/printers/{_segment(serial)}/", ())
        if not isinstance(data, dict):
            raise self._shape_error(f"{API_PREFIX}/printers/{serial}/", "an object", data)
        return Printer.from_json(data)

    # -- prints -------------------------------------------------------------------------------

    def iter_prints(
        self, where: PrintFilter | None = None, *, per_page: int | None = None, **criteria: Any
    ) -> Iterator[PrintRun]:
        """Every print on the account matching the filter, newest first, fetched lazily.

        The filter is ``where`` or, for short, :class:`PrintFilter`'s fields as keywords
        (``name`` matches a substring; ``machine_type_id`` may name several machine types).
        """
        params = _print_filter(where, criteria).params()
        return self._iterate(f"{API_PREFIX}/prints/", params, per_page, PrintRun.from_json)

    def list_prints_page(
        self,
        page: int = 1,
        per_page: int | None = None,
        *,
        where: PrintFilter | None = None,
        **criteria: Any,
    ) -> Page[PrintRun]:
        """One page of :meth:`iter_prints` (pages count from 1)."""
        params = _print_filter(where, criteria).params()
        return self._page(f"{API_PREFIX}/prints/", params, page, per_page, PrintRun.from_json)

    def iter_printer_prints(
        self,
        printer_serial: str,
        where: PrintFilter | None = None,
        *,
        per_page: int | None = None,
        **criteria: Any,
    ) -> Iterator[PrintRun]:
        """The prints of one printer, same filters as :meth:`iter_prints`, fetched lazily."""
        params = _print_filter(where, criteria).params()
        path = f"{API_PREFIX}/printers/{_segment(printer_serial)}/prints/"
        return self._iterate(path, params, per_page, PrintRun.from_json)

    def list_printer_prints_page(
        self,
        printer_serial: str,
        page: int = 1,
        per_page: int | None = None,
        *,
        where: PrintFilter | None = None,
        **criteria: Any,
    ) -> Page[PrintRun]:
        """One page of :meth:`iter_printer_prints`."""
        params = _print_filter(where, criteria).params()
        path = f"{API_PREFIX}/printers/{_segment(printer_serial)}/prints/"
        return self._page(path, params, page, per_page, PrintRun.from_json)

    # -- consumables --------------------------------------------------------------------------

    def iter_tanks(self, *, per_page: int | None = None) -> Iterator[Tank]:
        """Every resin tank on the account, fetched lazily."""
        return self._iterate(f"{API_PREFIX}/tanks/", [], per_page, Tank.from_json)

    def list_tanks_page(self, page: int = 1, per_page: int | None = None) -> Page[Tank]:
        return self._page(f"{API_PREFIX}/tanks/", [], page, per_page, Tank.from_json)

    def iter_cartridges(self, *, per_page: int | None = None) -> Iterator[Cartridge]:
        """Every resin cartridge on the account, fetched lazily."""
        return self._iterate(f"{API_PREFIX}/cartridges/", [], per_page, Cartridge.from_json)

    def list_cartridges_page(self, page: int = 1, per_page: int | None = None) -> Page[Cartridge]:
        return self._page(f"{API_PREFIX}/cartridges/", [], page, per_page, Cartridge.from_json)

    # -- events -------------------------------------------------------------------------------

    def iter_events(
        self,
        *,
        cartridge: str | None = None,
        date__gt: datetime | None = None,
        date__lt: datetime | None = None,
        print_run: str | None = None,
        printer: str | None = None,
        tank: str | None = None,
        type: str | None = None,
        per_page: int | None = None,
    ) -> Iterator[Event]:
        """Events on the account matching the filters (serials, print id, type), lazily."""
        params = _event_filters(cartridge, date__gt, date__lt, print_run, printer, tank, type)
        return self._iterate(f"{API_PREFIX}/events/", params, per_page, Event.from_json)

    def list_events_page(
        self,
        page: int = 1,
        per_page: int | None = None,
        *,
        cartridge: str | None = None,
        date__gt: datetime | None = None,
        date__lt: datetime | None = None,
        print_run: str | None = None,
        printer: str | None = None,
        tank: str | None = None,
        type: str | None = None,
    ) -> Page[Event]:
        """One page of :meth:`iter_events`."""
        params = _event_filters(cartridge, date__gt, date__lt, print_run, printer, tank, type)
        return self._page(f"{API_PREFIX}/events/", params, page, per_page, Event.from_json)

    # -- groups -------------------------------------------------------------------------------

    def list_groups(self) -> tuple[PrinterGroup, ...]:
        """Every printer group of the account (one request: this list is not paginated)."""
        return self._get_array(f"{API_PREFIX}/groups/", (), PrinterGroup.from_json)

    def list_group_queue(self, group_id: str) -> tuple[QueueItem, ...]:
        """The Fleet Control queue of a group (empty for groups without Fleet Control)."""
        path = f"{API_PREFIX}/groups/{_segment(group_id)}/queue/"
        return self._get_array(path, (), QueueItem.from_json)

    def create_group(self, name: str) -> NewGroup:
        """Create a group administered by the application's user (201 ``NewWorkgroup``)."""
        answer = self._change("POST", f"{API_PREFIX}/groups/", {"name": name})
        return NewGroup.from_json(self._object(f"{API_PREFIX}/groups/", answer))

    def update_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        remote_print_enabled_override: bool | None = None,
    ) -> PrinterGroup:
        """Rename a group and/or set its remote-print override (PATCH: only what is given).

        The request schema types the override as text while answers carry a boolean, so it is
        sent as ``"true"`` / ``"false"``, which the server reads as that boolean.
        """
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if remote_print_enabled_override is not None:
            body["remote_print_enabled_override"] = _flag_text(remote_print_enabled_override)
        if not body:
            raise ValueError("update_group needs a name or a remote_print_enabled_override")
        path = f"{API_PREFIX}/groups/{_segment(group_id)}/"
        return PrinterGroup.from_json(self._object(path, self._change("PATCH", path, body)))

    def delete_group(self, group_id: str) -> None:
        """Delete a group administered by the application's user (204)."""
        self._change("DELETE", f"{API_PREFIX}/groups/{_segment(group_id)}/", None)

    def add_group_member(
        self, group_id: str, user: str, *, is_admin: bool | None = None
    ) -> GroupMember:
        """Invite a user (by email) into a group; the new membership (201)."""
        path = f"{API_PREFIX}/groups/{_segment(group_id)}/members/"
        answer = self._change("POST", path, _member_body(user, is_admin))
        return GroupMember.from_json(self._object(path, answer))

    def update_group_member(self, group_id: str, user: str, *, is_admin: bool) -> GroupMember:
        """Replace a member's administrator right (PUT); the membership after (200)."""
        path = f"{API_PREFIX}/groups/{_segment(group_id)}/members/"
        answer = self._change("PUT", path, _member_body(user, is_admin))
        return GroupMember.from_json(self._object(path, answer))

    def remove_group_member(self, group_id: str, user: str) -> None:
        """Remove a member (by email) from a group (204)."""
        path = f"{API_PREFIX}/groups/{_segment(group_id)}/members/"
        self._change("DELETE", path, _member_body(user, None))

    def move_printers_to_group(self, group_id: str, serials: Sequence[str]) -> None:
        """Move printers (by serial) into a group, out of whichever group held them (200, no
        body); re-read the groups or printers to see them there."""
        if isinstance(serials, str) or not serials:
            raise ValueError("move_printers_to_group needs a non-empty list of serials")
        if not group_id:
            raise ValueError("a group id must not be empty")
        path = f"{API_PREFIX}/groups/bulk-add-printers/"
        self._change("POST", path, {"target_group": group_id, "printers": list(serials)})

    # -- plumbing -----------------------------------------------------------------------------

    def _iterate(
        self,
        path: str,
        filters: Params,
        per_page: int | None,
        parse: Callable[[dict[str, Any]], R],
    ) -> Iterator[R]:
        size = _page_size(per_page, self._per_page)
        # Validation happened in the caller; the generator below runs on first next().
        return self._follow(path, [*filters, ("per_page", str(size))], parse)

    def _follow(
        self, path: str, params: Params, parse: Callable[[dict[str, Any]], R]
    ) -> Iterator[R]:
        seen: set[tuple[tuple[str, str], ...]] = set()
        while True:
            key = tuple(sorted(params))
            if key in seen:
                raise _endless_paging(path, "loops back to a page already read")
            seen.add(key)
            body = self._get_json(path, params)
            results, next_link = self._paginated(path, body, "a page")
            for item in results:
                yield parse(item)
            if next_link is None:
                return
            params = list(httpx.URL(next_link).params.multi_items())

    def _page(
        self,
        path: str,
        filters: Params,
        page: int,
        per_page: int | None,
        parse: Callable[[dict[str, Any]], R],
    ) -> Page[R]:
        if page < 1:
            raise ValueError(f"pages count from 1, not {page}")
        size = _page_size(per_page, self._per_page)
        params = [*filters, ("page", str(page)), ("per_page", str(size))]
        body = self._get_json(path, params)
        results, next_link = self._paginated(path, body, f"page {page}")
        assert isinstance(body, dict)
        count = body.get("count")
        previous = body.get("previous")
        next_page = _linked_page(next_link, page + 1)
        # A caller reads on while there is a next page: one that is this page or an earlier
        # one would be read again for ever, and a page below 1 cannot be asked for at all.
        if next_page is not None and next_page <= page:
            raise _endless_paging(path, f"loops back from page {page} to page {next_page}")
        return Page(
            items=tuple(parse(item) for item in results),
            page=page,
            per_page=size,
            count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            next_page=next_page,
            # Only shown, never followed: a link that cannot be read is no previous page.
            previous_page=_linked_page(previous if _readable_link(previous) else None, 1),
        )

    def _paginated(
        self, path: str, body: Any, which: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page's items and its link to the next (None at the end); ``which`` names the
        page in an error (``page 2``)."""
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise self._shape_error(path, "a page object with 'results'", body)
        results = self._objects(path, body["results"], "a page's results")
        next_link = body.get("next")
        if next_link is not None and not _readable_link(next_link):
            # Not the end of the list: a page whose link to the next is broken. Taken as the
            # end, the rest of the feed would silently go unread.
            raise self._shape_error(path, "a page whose 'next' is a link or null", body)
        if next_link and not body["results"]:
            # An empty page is the end of a list: one that links on would be followed
            # through empty pages for as long as the server kept linking; by the pages one
            # at a time (verify) and by the iterators (iter_prints: each link a new page,
            # which no "page already read" stops) alike.
            raise _endless_paging(
                path, f"goes on past its end: {which} is empty but links to a next one")
        return results, next_link or None

    def _get_array(
        self, path: str, params: Sequence[tuple[str, str]], parse: Callable[[dict[str, Any]], R]
    ) -> tuple[R, ...]:
        body = self._get_json(path, params)
        if not isinstance(body, list):
            raise self._shape_error(path, "a list", body)
        return tuple(parse(item) for item in self._objects(path, body, "a list"))

    def _get_json(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        request = self._http.build_request("GET", path, params=list(params))
        return self._exchange(request, empty_ok=False)

    def _change(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        """Send one change with a JSON body; the decoded answer (None for an empty one)."""
        request = self._http.build_request(method, path, json=body)
        return self._exchange(request, empty_ok=True)

    def _exchange(self, request: httpx.Request, *, empty_ok: bool) -> Any:
        """Send an authenticated request; its decoded JSON answer, or the mapped error."""
        response = self._send(request, authenticate=True)
        if response.status_code // 100 != 2:
            raise _status_error(response, self._clock.now())
        if empty_ok and not response.content:
            return None  # 204, or a 200 the contract documents without a body
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:
            # Python's decoder recurses per level: JSON nested thousands deep (no answer of the
            # Web API's) raised RecursionError, and verify ended in a crash (session 45).
            what = ("JSON nested too deeply to read" if isinstance(exc, RecursionError)
                    else "something that is not JSON")
            raise CloudError(
                f"the Web API answered with {what}",
                request=_info(request),
                status_code=response.status_code,
                body=response.text[:_BODY_QUOTE_CHARS],
                hint=NOT_THE_WEB_API_HINT,
            ) from None

    def _objects(self, path: str, items: list[Any], what: str) -> list[dict[str, Any]]:
        """A list answer's items, every one an object. One that is not is a broken answer, not
        a shorter list: read without it, fleet sync took a group the answer held as a number
        for one the Dashboard lacks and created it again (session 47's fuzzer)."""
        strays = [item for item in items if not isinstance(item, dict)]
        if strays:
            raise CloudError(
                f"the Web API answered {path} with {what} holding "
                f"{type(strays[0]).__name__} where only objects were expected",
                hint=_CHANGED_HINT,
            )
        return items

    def _object(self, path: str, answer: Any) -> dict[str, Any]:
        if not isinstance(answer, dict):
            raise self._shape_error(path, "an object", answer)
        return answer

    def _send(self, request: httpx.Request, *, authenticate: bool) -> httpx.Response:
        if self._http.is_closed:
            raise CloudError("the Web API client is closed", request=_info(request))
        try:
            return self._http.send(request, auth=self._auth if authenticate else None)
        except AnswerTooLargeError as exc:
            raise CloudUnavailableError(
                str(exc),
                request=_info(request),
                hint=NOT_THE_WEB_API_HINT,
            ) from exc
        except httpx.TimeoutException as exc:
            raise CloudUnavailableError(
                f"{transport_failure(exc)} in time from the Web API",
                request=_info(request),
                hint="check the network connection; the request will succeed once it is back",
            ) from exc
        except httpx.TransportError as exc:
            raise CloudUnavailableError(
                f"cannot reach the Web API: {exc}",
                request=_info(request),
                hint=tls_mismatch(exc)
                or "check the network connection, proxy settings and the configured base URL",
            ) from exc

    def _shape_error(self, path: str, expected: str, body: Any) -> CloudError:
        return CloudError(
            f"the Web API answered {path} with {type(body).__name__} where {expected} was "
            "expected",
            body=body,
            hint=_CHANGED_HINT,
        )


# -- helpers -----------------------------------------------------------------------------------


def _info(request: httpx.Request) -> RequestInfo:
    # The query is kept: it holds filters only, never credentials. A login written in
    # cloud.base_url is (the error's message is said to a user).
    return RequestInfo(request.method, hide_secrets(str(request.url)))


def _segment(value: str) -> str:
    if not value:
        raise ValueError("a serial or id in a path must not be empty")
    return urllib.parse.quote(value, safe="")


def _flag_text(value: bool) -> str:
    return "true" if value else "false"


def _member_body(user: str, is_admin: bool | None) -> dict[str, Any]:
    if not user:
        raise ValueError("a member's email must not be empty")
    body: dict[str, Any] = {"user": user}
    if is_admin is not None:
        body["is_admin"] = is_admin
    return body


def _refusal_text(body: Any) -> str:
    """A Django REST framework refusal body as one line: ``field: message; ...``."""
    if not isinstance(body, dict):
        return ""
    parts = []
    for field, messages in body.items():
        listed = messages if isinstance(messages, list) else [messages]
        text = " ".join(str(m) for m in listed)
        parts.append(text if field in ("detail", "non_field_errors") else f"{field}: {text}")
    return "; ".join(parts)


def _page_size(per_page: int | None, default: int) -> int:
    size = default if per_page is None else per_page
    if size < 1:
        raise ValueError(f"per_page must be at least 1, not {size}")
    return size


def _endless_paging(path: str, what: str) -> CloudError:
    """The error for pagination that cannot end: reading on would never finish the list."""
    return CloudError(
        f"the Web API's pagination of {path} {what}",
        hint="report this to Formlabs support; the list cannot be read in full",
    )


def _readable_link(link: object) -> bool:
    """Whether a page's link is text httpx can read as a URL: one holding a NUL or an
    unclosed "[" raised httpx.InvalidURL from the page reader, a crash of verify."""
    if not isinstance(link, str):
        return False
    try:
        httpx.URL(link)
    except httpx.InvalidURL:
        return False
    return True


def _linked_page(link: str | None, default: int) -> int | None:
    """The page number a pagination link points at (links to page 1 often omit it)."""
    if link is None:
        return None
    value = httpx.URL(link).params.get("page")
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _print_filter(where: PrintFilter | None, criteria: dict[str, Any]) -> PrintFilter:
    """The filter given as a value or as its fields' keywords (not both)."""
    if where is None:
        return PrintFilter(**criteria)
    if criteria:
        raise TypeError(f"pass either a PrintFilter or filter keywords, not both: {criteria}")
    return where


def _event_filters(
    cartridge: str | None,
    date__gt: datetime | None,
    date__lt: datetime | None,
    print_run: str | None,
    printer: str | None,
    tank: str | None,
    type_: str | None,
) -> Params:
    params: Params = []
    for key, when in (("date__gt", date__gt), ("date__lt", date__lt)):
        if when is not None:
            params.append((key, format_datetime(when)))
    for key, text in (
        ("cartridge", cartridge),
        ("print_run", print_run),
        ("printer", printer),
        ("tank", tank),
        ("type", type_),
    ):
        if text is not None:
            params.append((key, text))
    return params


def _status_error(response: httpx.Response, now: datetime) -> CloudError:
    request = _info(response.request)
    status = response.status_code
    if response.is_redirect:
        return redirect_error(response, request, "something other than the Web API answered")
    https = https_port_error(response, request, "something other than the Web API answered")
    if https is not None:
        return https
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:_BODY_QUOTE_CHARS]
    if status == httpx.codes.UNAUTHORIZED:
        return CloudAuthError(
            "the Web API refused a freshly fetched access token",
            request=request,
            status_code=status,
            body=body,
            hint="the application credentials are valid but lack access to this resource; "
            "check them on the Dashboard's Developer Tools page",
        )
    wait = AnswersWait.of(status, response.headers.get("Retry-After"), now,
                          waited_s=response.extensions.get(WAITED_EXTENSION, 0.0))
    if status == httpx.codes.TOO_MANY_REQUESTS:
        return CloudRateLimitError(
            "the Web API answered 'too many requests'" if wait.asked is None
            else f"the Web API {wait.asked}",
            retry_after_s=wait.seconds,
            request=request,
            status_code=status,
            body=body,
            hint="another program may be spending the same account's 1,500 requests/hour; "
            f"lower the hourly budget share, or try again {wait.when}",
        )
    if status >= httpx.codes.INTERNAL_SERVER_ERROR:
        return CloudUnavailableError(
            wait.after("the Web API failed"),
            retry_after_s=wait.seconds,
            request=request,
            status_code=status,
            body=body,
            hint="the Web API is having trouble (or is down for maintenance); try again "
            f"{wait.when}",
        )
    hints: dict[int, str] = {
        httpx.codes.BAD_REQUEST: "the Web API said what it refused; correct that and try again",
        httpx.codes.FORBIDDEN: "the application's user has no access to this resource",
        httpx.codes.NOT_FOUND: "check the printer serial, group id or member; it is not on "
        "this account",
    }
    said = _refusal_text(body)
    return CloudError(
        "the Web API refused the request" + (f": {said}" if said else ""),
        request=request,
        status_code=status,
        body=body,
        hint=hints.get(status),
    )
