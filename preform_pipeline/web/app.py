"""The dashboard's routes: pages, actions, ``/metrics`` and ``/healthz`` (docs/web.md).

Pages are rendered on the server from Jinja2 templates; there is no JavaScript build step. A
page's live part (``<main id="live">``) is fetched again every ``web.refresh_s`` seconds by a
few lines of plain JavaScript (``static/live.js``): the same URL with ``X-Live: 1`` answers
only that part. Every action is a POST form, checked by :mod:`preform_pipeline.web.auth`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timezone
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import (
    DecidedAlreadyError,
    PipelineError,
    StoreError,
    StoreNotFoundError,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import JobState, JobStore
from preform_pipeline.store.model import STATE_DESCRIPTIONS
from preform_pipeline.store.superseded import WHY_SUPERSEDED, superseded_note
from preform_pipeline.web import actions, shown, views
from preform_pipeline.web.auth import (
    SESSION_COOKIE,
    SESSION_MARK_COOKIE,
    SESSION_MARK_MAX_AGE_S,
    Access,
    Gate,
    browser_signed_out,
    cross_site_reason,
    csrf_matches,
    session_ended,
)
from preform_pipeline.web.compiled import COMPILED
from preform_pipeline.web.hosts import ServedHosts, served_hosts
from preform_pipeline.web.metrics import CONTENT_TYPE, render_metrics
from preform_pipeline.web.serverrows import server_rows
from preform_pipeline.web.sources import LiveSources
from preform_pipeline.web.told import Said, Told
from preform_pipeline.wording import counted, quoted

__all__ = ["MAX_BODY_BYTES", "create_app"]

log = get_logger(__name__)

_HERE: Final = Path(__file__).parent
#: The dashboard's own icon, named by every page and served at /favicon.ico too.
_ICON: Final = _HERE / "static" / "icon.svg"
_T = TypeVar("_T")
#: The query parameter an action's redirect carries: the page that did the action shows its
#: line, not another tab of the session that loads a page first.
_DONE_PARAM: Final = "done"
#: The login page's query parameter asking it to say the session has ended.
_AGAIN_PARAM: Final = "again"
Handler = Callable[[Request], Awaitable[Response]]

#: The pages, in the navigation's order: (path, title).
NAVIGATION: Final = (("/", "Queue"), ("/printers", "Printers"), ("/history", "History"),
                     ("/failed", "Failed cases"))


class Dashboard:
    """The app's state: the store, the users, the live sources, the templates, and the
    ``jobs`` command that reaches the store (``hotfolder.files.jobs_command``) for hints."""

    def __init__(self, store: JobStore, web: WebSettings, sources: LiveSources,
                 jobs: str = JOBS_COMMAND, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.jobs = jobs
        self.web = web
        self.sources = sources
        self.gate = Gate(web.users, clock)
        #: What the last action of a session did, shown once on the page it returns to.
        self.told = Told()
        self.templates = Jinja2Templates(directory=str(_HERE / "templates"))
        self.templates.env.bytecode_cache = COMPILED
        # Every name from outside shown as it is, hidden characters written out (web/shown.py);
        # a form value sent back as it is marked ``|e`` in the templates.
        self.templates.env.finalize = shown.finalize
        self.templates.env.globals.update(navigation=NAVIGATION, describe=STATE_DESCRIPTIONS,
                                          refresh_ms=int(web.refresh_s * 1000),
                                          max_search=views.MAX_SEARCH_CHARS)

    async def read(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await run_in_threadpool(fn, self.store, *args)

    # -- access ---------------------------------------------------------------------------------

    def access(self, request: Request) -> Access:
        return self.gate.authenticate(request.headers, request.cookies)

    def page(self, render: Callable[[Request, WebUser, Access], Awaitable[Response]]) -> Handler:
        async def handler(request: Request) -> Response:
            access = self.access(request)
            if access.user is None:
                if access.refused:
                    return _unauthorised()
                # A live refresh without a cookie is a page opened logged in, whose browser
                # has since lost the cookie: its login page says to log in again.
                again = not access.ended and request.headers.get("x-live") == "1"
                return RedirectResponse(_login_url(_wanted(request), again=again),
                                        status_code=303)
            return await render(request, access.user, access)
        return handler

    def action(self, act: Callable[[Request, WebUser, dict[str, str]], Awaitable[str]]
               ) -> Handler:
        async def handler(request: Request) -> Response:
            access = self.access(request)
            if access.user is None:
                if access.ended:
                    return await _session_ended(request, "ended")
                if (not access.refused and browser_signed_out(request.headers)
                        and cross_site_reason(request.headers, request.url.scheme) is None):
                    # A restarted browser's press on a page left open: it came with no
                    # cookie at all, and was a bare 401 until session 44.
                    return await _session_ended(request, "no cookie")
                return _unauthorised()
            async with request.form() as posted:
                form = {k: v for k, v in posted.items() if isinstance(v, str)}
                files = [(k, v.filename) for k, v in posted.items() if not isinstance(v, str)]
            refusal = cross_site_reason(request.headers, request.url.scheme)
            if refusal is None and not csrf_matches(access.session, form.get("csrf")):
                refusal = "the form's CSRF token is missing or wrong"
            if refusal is not None:
                log.warning("web_cross_site_refused", path=request.url.path, reason=refusal,
                            user=access.user.name)
                return PlainTextResponse(f"refused: {refusal}", status_code=403)
            if not access.user.operator:
                log.warning("web_action_forbidden", path=request.url.path,
                            user=access.user.name)
                return PlainTextResponse("refused: viewers cannot act; ask an operator",
                                         status_code=403)
            if files:
                # Its str() ("UploadFile(filename=...)") was taken as the case's name.
                field, filename = files[0]
                return self.render(request, "error.html", access, status_code=400,
                                   message=f"the field {quoted(field)} holds a file "
                                   f"({quoted(filename or '')}): a file is not accepted there",
                                   hint="the dashboard's buttons send text only; "
                                   "use them on the page")
            sid = request.cookies.get(SESSION_COOKIE, "")
            self.told.forget(sid)  # an older action's line is not this one's outcome
            back = _local(form.get("next"))
            try:
                message = await act(request, access.user, form)
            except (PipelineError, ValueError) as exc:
                if isinstance(exc, StoreError) and exc.outage:
                    raise  # the store was away, not the action refused: store_away says so
                # A PipelineError's str() already ends with its hint, shown on its own below.
                # A missing build is said without the store's location: its file path (or
                # database URL) is nothing a browser is told.
                text = (exc.what if isinstance(exc, StoreNotFoundError)
                        else getattr(exc, "message", str(exc)))
                said = Said(text, getattr(exc, "hint", None), refused=True)
                log.info("web_action_refused", path=request.url.path, user=access.user.name,
                         reason=said.text, **_decided_fields(exc))
                if access.session is None:
                    # A script's bearer request reads the status; it has no page to return to.
                    # A build that does not exist is not a conflict: 409 sent a script
                    # looking for who had decided first.
                    status = 404 if isinstance(exc, StoreNotFoundError) else 409
                    return self.render(request, "error.html", access, status_code=status,
                                       message=said.text, hint=said.hint, back=back)
                return self.redirect(sid, back, said)
            log.info("web_action", path=request.url.path, user=access.user.name,
                     result=message)
            if access.session is None:
                return RedirectResponse(back, status_code=303)
            return self.redirect(sid, back, Said(message))
        return handler

    def redirect(self, sid: str, target: str, said: Said) -> Response:
        """POST/redirect/GET: back to the page the button was on, which says ``said`` once
        (outside the live part, so a refresh keeps it). A refusal answered at the action's
        own address left a page whose reload offered to post the form again."""
        token = self.told.keep(sid, said)
        return RedirectResponse(_with_query(target, _DONE_PARAM, token), status_code=303)

    async def no_route(self, request: Request, exc: Exception) -> Response:
        """A wrong address or method: the dashboard's own page saying so, with the way back
        (the framework's bare "Not Found" left a person on a page with no link). What
        scripts read keeps its own kind: JSON for ``/healthz``, text for ``/metrics``."""
        status = int(getattr(exc, "status_code", 404))
        headers = dict(getattr(exc, "headers", None) or {})
        path = request.url.path
        if status == 405 and request.method in ("GET", "HEAD"):
            title = "Not a page"
            message = (f"{path} is an action: it is done with a button on its page, "
                       "and cannot be opened as a page.")
        elif status == 405:
            title, message = "Not an action", f"{path} does not take a {request.method}."
        else:
            title, message = "Not found", f"There is no page at {path}."
        if path in _JSON_ROUTES:
            return JSONResponse({"status": "error", "error": message}, status_code=status,
                                headers=headers)
        if path in _TEXT_ROUTES:
            return PlainTextResponse(message, status_code=status, headers=headers)
        response = self.render(request, "error.html", self.access(request),
                               status_code=status, title=title, message=message)
        response.headers.update(headers)
        return response

    async def store_away(self, request: Request, exc: Exception) -> Response:
        """The store could not be read or written (a database restart, a full disk): a page
        saying so, which tries again by itself and returns to what was asked once the store
        answers. Before, a page was the framework's bare "Internal Server Error" (with a
        traceback on the console), and a build's page said "no such build"."""
        message = getattr(exc, "message", str(exc))
        # What helps comes first (a full disk: free some space on it); a bare error has none.
        helps = f"{exc.hint}; " if isinstance(exc, PipelineError) and exc.hint else ""
        log.warning("web_store_away", path=request.url.path, error=message)
        reading = request.method in ("GET", "HEAD")
        # An action was refused a write as often as a read (a full disk takes reads): its
        # page says what is true of both, that the change was not made.
        said = (f"the job store cannot be read just now: {message}" if reading
                else f"the job store could not make this change: {message}")
        # ``/healthz`` answers a store error itself (its JSON "unhealthy"): none reaches here.
        if request.url.path in _TEXT_ROUTES:
            return PlainTextResponse(said, status_code=503)
        if not reading:
            # An action's address answers POST only: a page there trying again by GET got
            # 405 for as long as it stayed open. The action is the person's to repeat.
            return self.render(request, "error.html", self.access(request), status_code=503,
                               title="Not done: the job store could not be changed",
                               message=said,
                               hint=f"{helps}nothing was changed; go back and do it again "
                               "once the store answers (the pages try again by themselves)")
        return self.render(request, "error.html", self.access(request), status_code=503,
                           title="The job store cannot be read", message=said, retry=True,
                           hint=f"{helps}nothing was changed; this page tries again every "
                           f"{self.web.refresh_s:g} s and shows what you asked for once "
                           "the store answers")

    def render(self, request: Request, name: str, access: Access, *, status_code: int = 200,
               **context: Any) -> Response:
        live = request.headers.get("x-live") == "1"
        told = None
        token = request.query_params.get(_DONE_PARAM)
        if access.session is not None and not live and token:
            told = self.told.take(request.cookies.get(SESSION_COOKIE, ""), token)
        return self.templates.TemplateResponse(
            request, name,
            {"user": access.user, "csrf": access.session.csrf if access.session else "",
             "told": told,
             "live_only": live, "path": request.url.path,
             # Where an action returns to: the page with its query (filters, page number).
             "here": _wanted(request),
             "query": str(request.url.query), **context},
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )


class _NotFramed:
    """Every answer forbids other pages to frame it. A page on another port of the same host
    is same-site, so the session cookie reaches a frame it opens on the dashboard; under a
    decoy it could have a real click land on "Approve and print" (clickjacking), which the
    Origin and CSRF checks let through as the dashboard's own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Frame-Options"] = "DENY"
                headers["Content-Security-Policy"] = "frame-ancestors 'none'"
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


class _KnownHost:
    """Every request must name a host the dashboard serves (web/hosts.py): a page that
    rebinds its own DNS name to this computer could otherwise use the dashboard as a page of
    its own origin. Checked before anything else, pages, login and ``/metrics`` alike."""

    def __init__(self, app: ASGIApp, hosts: ServedHosts) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host")
            if host is not None and not self.hosts.serves(host):
                log.warning("web_host_refused", path=scope["path"],
                            host=host[:_SHOWN_HOST_CHARS])
                refused = PlainTextResponse(self.hosts.refusal(host), status_code=400)
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: The longest request body the dashboard reads (_BodyLimit): a form with a 100,000-character
#: field passes; a stranger's upload of megabytes does not.
MAX_BODY_BYTES: Final = 1 << 20


class _BodyLimit:
    """A request's body may hold at most ``limit`` bytes, checked before anything reads it.
    The login form and every action are read in whole (Starlette keeps a urlencoded form in
    memory), and the login, or a tab whose session ended, is read before anyone is known: a
    stranger's endless POST would otherwise fill the dashboard's memory. The dashboard's own
    forms send a few hundred bytes; a longer body is refused with 413 before a byte of it is
    parsed, whether its length is announced (Content-Length) or not (chunked)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = Headers(scope=scope).get("content-length")
        if announced is not None and announced.strip().isdigit() \
                and int(announced) > self.limit:
            await self._refuse(scope, receive, send, f"{int(announced):,} bytes")
            return
        # Unannounced (or untrue) length: read up to the limit first, then hand the app what
        # was read; past the limit the rest is never read.
        held: list[Message] = []
        size = 0
        while True:
            message = await receive()
            held.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send, f"more than {self.limit:,} bytes")
                return
            if not message.get("more_body", False):
                break
        if held[-1]["type"] == "http.disconnect":
            # Gone before its body was whole: no one to answer, and a form read from it would
            # raise Starlette's ClientDisconnect (a traceback on the console).
            log.info("web_client_gone", path=scope["path"], received=f"{size:,} bytes")
            return

        async def replay() -> Message:
            return held.pop(0) if held else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        log.warning("web_body_refused", path=scope["path"], size=size, limit=self.limit)
        refused = PlainTextResponse(
            f"refused: the request's body is {size}; the dashboard takes at most "
            f"{self.limit:,} bytes (its forms send a few hundred)", status_code=413,
            headers={"Connection": "close"})
        await refused(scope, receive, send)


#: How much of a refused Host header the log event keeps.
_SHOWN_HOST_CHARS: Final = 100
#: Routes read by scripts, whose wrong-method answer keeps their kind.
_JSON_ROUTES: Final = frozenset({"/healthz"})
_TEXT_ROUTES: Final = frozenset({"/metrics"})


def _unauthorised() -> Response:
    return PlainTextResponse("unauthorised: a valid login or token is needed", status_code=401,
                             headers={"WWW-Authenticate": 'Bearer realm="preform-pipeline"'})


async def _session_ended(request: Request, why: str) -> Response:
    """A browser's action sent after its session ended (``why``: "ended", its cookie names
    a session the dashboard no longer has; "no cookie", the browser lost it): to the login
    page, which says so, and back to the page its button was on. Nothing else of the form is
    kept: it was not acted on, and its CSRF token was the old session's. A restart had
    answered a bare "401 unauthorised" text page to a click on Approve or Reject in a tab
    opened before it (session 43), and a restarted browser's click still did (session 44)."""
    async with request.form() as posted:
        back = _local(str(posted.get("next") or ""))
    log.info("web_session_ended", path=request.url.path, why=why)
    return RedirectResponse(_login_url(back, again=why != "ended"), status_code=303)


def _decided_fields(exc: Exception) -> dict[str, str]:
    """A late decision's event says whose decision came first, and when (ISO, UTC)."""
    decided = exc.decided if isinstance(exc, DecidedAlreadyError) else None
    if decided is None:
        return {}
    at = "" if decided.at is None else decided.at.astimezone(timezone.utc).isoformat()
    return {"decided": decided.decision, "decided_by": decided.by, "decided_at": at}


def _wanted(request: Request) -> str:
    """The path and query asked for: the query is the queue's filters and page, which a bare
    path dropped (after a login, after an action); an action's token is not kept."""
    url = request.url
    if _DONE_PARAM in request.query_params:
        url = url.remove_query_params(_DONE_PARAM)
    return url.path + (f"?{url.query}" if url.query else "")


def _with_query(target: str, name: str, value: str) -> str:
    """``target`` (a local path and query) with ``name=value`` instead of any it had."""
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))


def _login_url(back: str, *, again: bool = False) -> str:
    """The login page, told to return to ``back``; ``again``: told to say that the session
    has ended (which it reads itself from a cookie naming an ended session, but not from a
    browser that lost its cookie)."""
    return f"/login?next={quote(back, safe='/')}" + (f"&{_AGAIN_PARAM}=1" if again else "")


def _local(target: str | None) -> str:
    """Where to go after an action: a path on this site only (never another host)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(c < " " or c == "\x7f" for c in target)):
        return target
    # A control character too: a URL parser drops a tab or line break, so "/\t/evil.com"
    # became "//evil.com", another host, once the done= token was added to it.
    return "/"


def _listed(request: Request) -> bool:
    """Whether the page lists the failed jobs a later job put right too."""
    return request.query_params.get(views.SUPERSEDED_PARAM) == views.LISTED


def _superseded_context(request: Request, listed: bool, hidden: int) -> dict[str, Any]:
    """What the pages' superseded line says (``_macros.superseded_line``): how many failed
    jobs a later job put right are not listed, the links that list them or leave them out
    (the page's own address, its filters kept), and the words for a listed one. Failed cases,
    the queue and History say it alike."""
    url = request.url.remove_query_params([_DONE_PARAM, views.SUPERSEDED_PARAM])
    leave = url.path + (f"?{url.query}" if url.query else "")
    return {"listed": listed, "hidden": hidden, "note": superseded_note,
            "why_superseded": WHY_SUPERSEDED, "counted": counted, "leave_out": leave,
            "listing": _with_query(leave, views.SUPERSEDED_PARAM, views.LISTED)}


def _build_id(request: Request) -> int:
    return int(request.path_params["build_id"])


def create_app(store: JobStore, web: WebSettings, sources: LiveSources | None = None,
               *, jobs: str = JOBS_COMMAND, clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The dashboard on ``store``, for ``web.users``, with optional live sources; ``jobs``:
    the ``jobs`` command reaching ``store``, which refusals' hints name; ``clock``: what
    sessions' idle time is read on."""
    d = Dashboard(store, web, sources or LiveSources(), jobs, clock)

    def unsearchable(request: Request, access: Access, flt: views.QueueFilter) -> Response | None:
        """A search the store could not run is refused on the page: one longer than any name
        (SQLite's LIKE pattern limit), or a search or recipe holding a NUL (PostgreSQL's text
        refuses it)."""
        if "\0" in flt.text + flt.recipe:
            message = "a search or recipe filter may not hold a NUL character"
        elif len(flt.text) > views.MAX_SEARCH_CHARS:
            message = (f"a search of {len(flt.text):,} characters is longer than the "
                       f"dashboard searches for ({views.MAX_SEARCH_CHARS:,} at most)")
        else:
            return None
        return d.render(request, "error.html", access, status_code=400, message=message,
                        hint="search for a part of a case id, file name or key")

    async def queue(request: Request, user: WebUser, access: Access) -> Response:
        flt = views.QueueFilter.parse(request.query_params)
        if (refused := unsearchable(request, access, flt)) is not None:
            return refused
        page = await d.read(views.queue_page, flt)
        cases, builds = page.cases, page.builds
        recipes = sorted({r.recipe for r in cases.rows} | {b.build.recipe for b in builds})
        return d.render(request, "queue.html", access, flt=flt, cases=cases.rows,
                        builds=builds, prints=page.prints, filters=views.FILTERS,
                        recipes=recipes, older=page.older_cases or page.older_builds,
                        page_rows=views.QUEUE_PAGE_ROWS,
                        retry_command=partial(actions.retry_command, d.jobs),
                        **_superseded_context(request, flt.listed, cases.hidden))

    async def build(request: Request, user: WebUser, access: Access) -> Response:
        try:
            page = await d.read(views.build_page, _build_id(request))
        except StoreNotFoundError:
            return d.render(request, "error.html", access, status_code=404,
                            message="no such build", hint="it may have been removed")
        return d.render(request, "build.html", access, page=page)

    async def screenshot(request: Request, user: WebUser, access: Access) -> Response:
        try:
            found = await d.read(lambda s, i: views.screenshot_of(s.get_build(i)),
                                 _build_id(request))
        except StoreNotFoundError:
            found = None
        if found is None:
            return PlainTextResponse("no screenshot for this build", status_code=404)
        return FileResponse(found, headers={"Cache-Control": "no-store"})

    async def printers(request: Request, user: WebUser, access: Access) -> Response:
        rows, note = await d.read(views.printer_rows, d.sources)
        return d.render(request, "printers.html", access, printers=rows, note=note,
                        servers=server_rows(d.sources))

    async def history(request: Request, user: WebUser, access: Access) -> Response:
        flt = views.QueueFilter.parse(request.query_params, default="all")
        if (refused := unsearchable(request, access, flt)) is not None:
            return refused
        if flt.unreadable:
            # Only a link edited by hand (or cut short) carries one: the dashboard writes
            # every position it links to.
            return d.render(request, "error.html", access, status_code=400,
                            message=f"this History link's position ({flt.unreadable}="
                            f"{request.query_params[flt.unreadable][:80]}) is not one the "
                            "dashboard wrote",
                            hint="open History from its first page and page from there")
        page = await d.read(views.history_rows, flt)
        return d.render(request, "history.html", access, page=page, flt=flt,
                        filters=views.FILTERS, page_rows=views.HISTORY_PAGE_CASES,
                        **_superseded_context(request, flt.listed, page.hidden))

    async def failed(request: Request, user: WebUser, access: Access) -> Response:
        listed = _listed(request)
        page = await d.read(partial(views.failed_cases, with_superseded=listed))
        return d.render(request, "failed.html", access, page=page,
                        unverified=JobState.UNVERIFIED, most=views.PAGE_ROWS,
                        retry_command=partial(actions.retry_command, d.jobs),
                        **_superseded_context(request, listed, page.hidden))

    async def metrics(request: Request) -> Response:
        access = d.access(request)
        if access.user is None:
            return _unauthorised()
        text = await d.read(render_metrics, d.sources)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        try:
            await d.read(lambda s: s.list_builds(limit=1))
        except PipelineError as exc:
            return JSONResponse({"status": "unhealthy", "store": str(exc)}, status_code=503)
        pool = d.sources.pool()
        servers = None if pool is None else sum(
            1 for s in pool.status() if s.retired_reason is None and s.url)
        return JSONResponse({"status": "ok", "store": "ok", "servers_up": servers})

    async def icon(request: Request) -> Response:
        # The pages name it (base.html); a plain-text answer (a refusal, a 401) does not, and
        # the browser then asks for /favicon.ico, which was a 404 on the console.
        return FileResponse(_ICON, media_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    async def login_page(request: Request) -> Response:
        return d.render(request, "login.html", Access(None), failed=False,
                        ended=(session_ended(d.access(request), request.cookies)
                               or request.query_params.get(_AGAIN_PARAM) == "1"),
                        next=_local(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        refusal = cross_site_reason(request.headers, request.url.scheme)
        if refusal is not None:
            return PlainTextResponse(f"refused: {refusal}", status_code=403)
        found = d.gate.login(form.get("name", ""), form.get("secret", ""))
        if found is None:
            return d.render(request, "login.html", Access(None), status_code=401, failed=True,
                            next=_local(form.get("next")))
        sid, _ = found
        response = RedirectResponse(_local(form.get("next")), status_code=303)
        # No Max-Age: the server ends the session (SESSION_TTL_S without a request, or a
        # restart) and then says so. A cookie the browser dropped 12 hours after the login
        # ended a session in use, and an idle tab's press came with no cookie: a bare 401.
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        # The mark outlives the browser, so its next visit without the session is told the
        # session ended, not shown a first visit's bare form (session 45).
        response.set_cookie(SESSION_MARK_COOKIE, "1", max_age=SESSION_MARK_MAX_AGE_S,
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        if cross_site_reason(request.headers, request.url.scheme) is None:
            d.gate.logout(request.cookies.get(SESSION_COOKIE))
            d.told.forget(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(SESSION_MARK_COOKIE)  # logged out: nothing ended unasked
        return response

    async def approve(request: Request, user: WebUser, form: dict[str, str]) -> str:
        b = await d.read(partial(actions.approve_build, jobs=d.jobs), _build_id(request),
                         user.name)
        return f"Build {b.job_key} approved"

    async def reject(request: Request, user: WebUser, form: dict[str, str]) -> str:
        b = await d.read(partial(actions.reject_build, jobs=d.jobs), _build_id(request),
                         user.name, form.get("reason", ""))
        return f"Build {b.job_key} rejected"

    async def settle(request: Request, user: WebUser, form: dict[str, str]) -> str:
        printed = form.get("printed")
        if printed not in ("yes", "no"):
            raise ValueError("say whether it printed: printed=yes or printed=no")
        b = await d.read(partial(actions.settle_print, printed=printed == "yes", jobs=d.jobs),
                         _build_id(request), user.name)
        return f"Build {b.job_key} settled: {b.state.value.replace('_', ' ')}"

    async def retry(request: Request, user: WebUser, form: dict[str, str]) -> str:
        target = form.get("target", "")
        moved = await d.read(partial(actions.retry_case, jobs=d.jobs,
                                     others=form.get("others") == "yes"), target, user.name)
        said = f"{actions.named(target)} queued again ({counted(moved.count, 'job')})"
        return "; ".join((said, *moved.notes))

    async def cancel(request: Request, user: WebUser, form: dict[str, str]) -> str:
        target = form.get("target", "")
        moved = await d.read(actions.cancel_case, target, user.name)
        return f"{actions.named(target)} cancelled ({counted(moved.count, 'job')})"

    routes = [
        Route("/", d.page(queue)),
        Route("/builds/{build_id:int}", d.page(build)),
        Route("/builds/{build_id:int}/screenshot", d.page(screenshot)),
        Route("/printers", d.page(printers)),
        Route("/history", d.page(history)),
        Route("/failed", d.page(failed)),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/favicon.ico", icon),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/builds/{build_id:int}/approve", d.action(approve), methods=["POST"]),
        Route("/builds/{build_id:int}/reject", d.action(reject), methods=["POST"]),
        Route("/builds/{build_id:int}/settle", d.action(settle), methods=["POST"]),
        Route("/cases/retry", d.action(retry), methods=["POST"]),
        Route("/cases/cancel", d.action(cancel), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes,
                     middleware=[Middleware(_NotFramed),
                                 Middleware(_KnownHost, hosts=served_hosts(web)),
                                 Middleware(_BodyLimit)],
                     exception_handlers={404: d.no_route, 405: d.no_route,
                                         StoreError: d.store_away})
