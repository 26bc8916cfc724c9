"""A page left open beside the printers, in Chromium (session 34's operator's trial): it says
when it is not up to date, and long names do not push it wider than the tablet.

Before, a page whose refresh failed (the dashboard stopped, the job store away) went on
showing the old queue as current, with nothing on screen to say so; and a 150-character case
id scrolled History sideways. The dashboard runs in this process (uvicorn on 127.0.0.1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError

from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.web import WebServer
from tests.browser.conftest import TABLET
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.unit.web.conftest import taken_job

SECRET = "operator-secret-for-the-trial"
#: A refresh this often keeps each wait below a second.
REFRESH_S = 0.3
WAIT_MS = 15_000
#: A refresh period no test waits for.
_NO_REFRESH_S = 600.0
#: How long a page that started to leave and stayed may wait before it refreshes again
#: (live.js's STAY_MS), and the usual wait beyond.
_STAYED_WAIT_MS = 10_000 + WAIT_MS


@contextmanager
def _served(store: JobStore, refresh_s: float = REFRESH_S) -> Iterator[WebServer]:
    users = (WebUser("olivia", "operator", hash_secret(SECRET)),)
    server = WebServer(store, WebSettings(port=0, refresh_s=refresh_s, users=users))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _page(browser: Any, url: str) -> Iterator[Any]:
    context = browser.new_context(viewport=TABLET)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{url}/login")
        page.fill("input[name=name]", "olivia")
        page.fill("input[name=secret]", SECRET)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        yield page
    finally:
        context.close()


@contextmanager
def _on_sqlite(browser: Any, tmp: Path) -> Iterator[tuple[JobStore, WebServer, Any]]:
    """The dashboard on a SQLite store in ``tmp``, and a logged-in page on it."""
    with SqliteJobStore(tmp / "jobs.sqlite3") as store, _served(store) as server, \
            _page(browser, server.url) as page:
        yield store, server, page


@contextmanager
def _on_postgres(browser: Any, cluster: PgCluster
                 ) -> Iterator[tuple[JobStore, WebServer, Any, str]]:
    """The dashboard on a PostgreSQL database of its own, a logged-in page on it, and the
    database's name (``PgCluster.refusing`` takes it away)."""
    name = f"web_{uuid.uuid4().hex[:12]}"
    with PostgresJobStore(cluster.create_database(name), password=PG_PASSWORD) as store, \
            _served(store) as server, _page(browser, server.url) as page:
        yield store, server, page, name


def _case(store: JobStore, tmp: Path, case_id: str, name: str) -> None:
    job = store.create_job(recipe="crowns", source_path=tmp / name, case_id=case_id,
                           state=JobState.PROCESSING)
    store.transition(job.id, JobState.FAILED, "refused by the server")


class TestAPageLeftOpen:
    """A page whose refresh fails says since when it is not up to date, and why."""

    def test_a_stopped_dashboard_is_said_on_the_open_page(
        self, browser: Any, tmp_path: Path
    ) -> None:
        with _on_sqlite(browser, tmp_path) as (store, server, page):
            _case(store, tmp_path, "C-1", "a.stl")
            page.goto(f"{server.url}/?state=all")
            page.wait_for_selector("tr[data-case='C-1']")
            assert page.locator("#stale").is_hidden()
            server.stop()  # as a restart or a crash of the daemon does
            page.wait_for_selector("#stale", state="visible")
            said = page.inner_text("#stale")
            assert said.startswith("Not up to date: shown as it was at ")
            assert "the dashboard cannot be reached" in said
            assert "C-1" in page.inner_text("main")  # the old page is kept, marked

    def test_the_store_away_is_said_and_the_line_goes_once_it_is_back(
        self, browser: Any, tmp_path: Path, pg_cluster: PgCluster
    ) -> None:
        with _on_postgres(browser, pg_cluster) as (store, server, page, name):
            page.goto(f"{server.url}/?state=all")
            with pg_cluster.refusing(name):
                page.wait_for_selector("#stale", state="visible")
                assert "the job store cannot be read just now" in page.inner_text("#stale")
            _case(store, tmp_path, "C-2", "b.stl")
            page.wait_for_selector("tr[data-case='C-2']")  # the refresh, not a reload
            assert page.locator("#stale").is_hidden()

    def test_a_page_opened_while_the_store_is_away_shows_the_page_once_it_is_back(
        self, browser: Any, tmp_path: Path, pg_cluster: PgCluster
    ) -> None:
        with _on_postgres(browser, pg_cluster) as (_, server, page, name):
            with pg_cluster.refusing(name):
                page.goto(f"{server.url}/failed")
                assert page.inner_text("h1") == "The job store cannot be read"
            page.wait_for_selector("h1:text-is('Failed cases')")
            # The page itself, loaded again: not its live part swapped into the error page.
            assert page.title() == "Failed cases · preform-pipeline"
            assert page.url == f"{server.url}/failed"


class TestABrowserRestarted:
    """A tablet's browser closed and opened again has lost its session cookie but kept the
    mark of a session: its plain reload says the session ended; a browser that logged out,
    or never logged in, is shown the bare form (session 45)."""

    def test_a_plain_reload_after_the_restart_says_the_session_ended(
        self, browser: Any, tmp_path: Path
    ) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, _served(store) as server:
            with _page(browser, server.url) as page:
                kept = _kept_on_closing(page.context)
            with _reopened(browser, kept) as page:
                page.goto(f"{server.url}/failed")
                page.wait_for_url(f"{server.url}/login?next=/failed")
                assert page.locator("#ended").is_visible()
                assert "this browser was restarted" in page.inner_text("#ended")

    def test_after_a_logout_and_a_restart_the_login_is_a_first_visits(
        self, browser: Any, tmp_path: Path
    ) -> None:
        # No refresh: one fetched as the logout lands is redirected to the login with
        # ``?next=/`` and the page follows it, so the logout's own ``/login`` was not always
        # the page's next address (a whole run at -n 6, session 46).
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, \
                _served(store, refresh_s=_NO_REFRESH_S) as server:
            with _page(browser, server.url) as page:
                page.click("form.who button")
                page.wait_for_url(f"{server.url}/login")
                kept = _kept_on_closing(page.context)
            with _reopened(browser, kept) as page:
                page.goto(f"{server.url}/")
                page.wait_for_url(f"{server.url}/login?next=/")
                assert page.locator("#ended").count() == 0


class TestALogoutWhileARefreshIsOnItsWay:
    """The logout's own page is where the user lands, whatever a refresh meets meanwhile."""

    def test_a_refresh_redirected_by_the_ended_session_does_not_override_the_logout(
        self, browser: Any, tmp_path: Path
    ) -> None:
        # The race, forced: a refresh held on its way out; the logout's POST held until the
        # session has ended on the dashboard; then the refresh goes on and meets the ended
        # session (redirected to /login?next=/), and its fate is known (dropped by the page,
        # or followed) before the logout's answer reaches the page. Session 46: the page
        # followed the refresh to /login?next=/ instead of the logout's /login.
        with _on_sqlite(browser, tmp_path) as (_, server, page):
            refreshes: list[Any] = []
            logouts: list[Any] = []
            dropped: list[Any] = []
            followed: list[Any] = []

            def held_if_a_refresh(route: Any) -> None:
                if route.request.headers.get("x-live"):
                    refreshes.append(route)
                else:
                    route.continue_()

            page.route(f"{server.url}/", held_if_a_refresh)
            page.route(f"{server.url}/logout", lambda route: logouts.append(route))
            page.on("requestfailed", lambda request: dropped.append(request)
                    if request.headers.get("x-live") else None)
            page.on("request", lambda request: followed.append(request)
                    if request.is_navigation_request() and "next=" in request.url else None)
            _pump_until(page, lambda: bool(refreshes))
            page.click("form.who button", no_wait_after=True)
            _pump_until(page, lambda: bool(logouts))
            ended = logouts[0].fetch(max_redirects=0)  # the session ends on the dashboard
            assert (ended.status, ended.headers["location"]) == (303, "/login")
            with suppress(PlaywrightError):  # dropped by the page: nothing to go on with
                refreshes[0].continue_()
            _pump_until(page, lambda: bool(dropped or followed))
            with suppress(PlaywrightError):  # a navigation the page replaced
                logouts[0].fulfill(response=ended)
            page.wait_for_url(lambda url: url.startswith(f"{server.url}/login"))
            page.wait_for_load_state("load")
            assert (page.url, [r.url for r in followed]) == (f"{server.url}/login", [])


class TestANavigationThatDidNotLeave:
    """A page that started to leave and stayed (a link answered with a download or "204 No
    Content", a navigation stopped) refreshes again (review rv47-loose: session 47's page
    stopped refreshing for good, and said nothing of it)."""

    def test_the_page_goes_on_refreshing(self, browser: Any, tmp_path: Path) -> None:
        with _on_sqlite(browser, tmp_path) as (store, server, page):
            page.goto(f"{server.url}/?state=all")
            page.route(f"{server.url}/failed", lambda route: route.fulfill(status=204))
            stayed: list[Any] = []
            for ended in ("requestfinished", "requestfailed"):
                page.on(ended, lambda request: stayed.append(request)
                        if request.url == f"{server.url}/failed" else None)
            page.click("nav a[href='/failed']")  # "beforeunload": the page starts leaving
            _pump_until(page, lambda: bool(stayed))
            _case(store, tmp_path, "C-3", "c.stl")
            page.wait_for_selector("tr[data-case='C-3']", timeout=_STAYED_WAIT_MS)
            assert page.url == f"{server.url}/?state=all"


def _pump_until(page: Any, happened: Callable[[], bool]) -> None:
    """Let Playwright call the routes' handlers (it does only inside its own calls) until
    ``happened``, at most WAIT_MS."""
    for _ in range(WAIT_MS // 10):
        if happened():
            return
        page.wait_for_timeout(10)
    raise AssertionError(f"not seen within {WAIT_MS} ms")


def _kept_on_closing(context: Any) -> list[dict[str, Any]]:
    """The cookies a browser keeps when it is closed: those with an expiry of their own
    (Chromium drops session cookies unless told to restore the last session)."""
    return [c for c in context.cookies() if c["expires"] > 0]


@contextmanager
def _reopened(browser: Any, cookies: list[dict[str, Any]]) -> Iterator[Any]:
    context = browser.new_context(viewport=TABLET)
    context.set_default_timeout(WAIT_MS)
    try:
        context.add_cookies(cookies)
        yield context.new_page()
    finally:
        context.close()


class TestLongNames:
    """Names of any length wrap inside the tablet's width."""

    def test_no_page_is_wider_than_the_tablet(self, browser: Any, tmp_path: Path) -> None:
        with _on_sqlite(browser, tmp_path) as (store, server, page):
            _case(store, tmp_path, "C-" + "x" * 150, "L" * 190 + ".stl")
            widths = {}
            for path in ("/?state=all", "/history", "/failed"):
                page.goto(server.url + path)
                page.wait_for_selector("main h1")
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
            assert all(w <= TABLET["width"] for w in widths.values()), widths


    def test_a_build_a_full_disk_stopped_wraps_its_folder_inside_the_tablet(
        self, browser: Any, tmp_path: Path
    ) -> None:
        """Its reason quotes the refused file and its full-disk line names the folder, whose
        name may be one word as long as a name may be (255 bytes), with nothing to wrap at."""
        folder = Path("/srv/cases") / ("Cases-" + "x" * 249)
        with _on_sqlite(browser, tmp_path) as (store, server, page):
            job = store.create_job(recipe="crowns", source_path=tmp_path / "C-1.stl",
                                   case_id="C-1", state=JobState.PROCESSING)
            build = store.create_build(recipe="crowns", job_ids=[job.id])
            store.transition_build(build.id, JobState.PREPARING, "on a server")
            store.transition_build(
                build.id, JobState.FAILED, f"{folder}/{build.job_key}.form: cannot move the "
                "saved file into place: No space left on device", full_disk=folder)
            page.goto(f"{server.url}/builds/{build.id}")
            page.wait_for_selector("#full-disk")
            # Read afresh: the live part is redrawn every REFRESH_S, detaching a handle.
            assert page.is_visible("#full-disk")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= TABLET["width"], width


class TestACaseWithAFileGone:
    """Failed cases shows a case one of whose files is gone whole, that file marked missing
    with where it was looked for and what helps; its Retry queues the other files."""

    def test_the_missing_file_is_marked_and_the_others_are_retried(
        self, browser: Any, tmp_path: Path
    ) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, \
                _served(store, _NO_REFRESH_S) as server, _page(browser, server.url) as page:
            gone = taken_job(store, tmp_path, "H-5")
            kept = taken_job(store, tmp_path, "H-5", name="lower.stl", there=True)
            page.goto(f"{server.url}/failed")
            row = page.locator("tr[data-case='H-5']")
            mark = row.locator(f"[data-test='missing-{gone.job_key}']")
            assert mark.inner_text() == "upper.stl"
            assert mark.evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
            assert row.locator("small.missing").inner_text() == (
                f"missing: its file {gone.source_path}: not there now (moved or removed "
                f"since); put it back at {gone.source_path} and retry, or drop it into the "
                f"hot folder again ({tmp_path / 'hot' / 'inbox'}) as a new job")
            assert str(kept.source_path) in row.inner_text()
            assert row.locator("[data-test='missing-note-H-5']").inner_text() == (
                "1 file of this case is missing: Retry the other 1 queues the rest again and "
                "leaves it as it is, as preform-pipeline jobs retry case:H-5 does.")
            button = row.locator("button[data-test='retry-H-5']")
            assert button.inner_text() == "Retry the other 1"
            button.click()
            page.locator("#done").wait_for()
            assert page.inner_text("#done").startswith(
                "Case H-5 queued again (1 job); left as it is: upper.stl "
                f"({gone.job_key}): its file {gone.source_path}: not there now")
            assert (store.get_job(gone.id).state, store.get_job(kept.id).state) == (
                JobState.FAILED, JobState.QUEUED)
            # The case stays on the page for its missing file, with nothing left to retry.
            assert page.locator(f"[data-test='missing-{gone.job_key}']").count() == 1
            assert page.locator("button[data-test='retry-H-5']").count() == 0


class TestARefusedAction:
    """Two operators approve one held build: the second is refused on the build's own page
    (POST/redirect/GET), which a reload shows again without posting anything; and no page
    asks for an icon the dashboard does not have."""

    def test_the_refusal_is_said_on_the_build_and_a_reload_posts_nothing(
        self, browser: Any, tmp_path: Path
    ) -> None:
        from tests.unit.web.conftest import held_build

        # No refresh within the test: the second page still offers Approve, as one left
        # open between two refreshes (or on a tablet that slept) does.
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, \
                _served(store, refresh_s=_NO_REFRESH_S) as server, \
                _page(browser, server.url) as first, _page(browser, server.url) as second:
            answers: list[tuple[str, str, int]] = []
            for page in (first, second):
                page.on("response", lambda r: answers.append(
                    (r.request.method, r.url.removeprefix(server.url), r.status)))
            held = held_build(store, tmp_path, "C-1")
            for page in (first, second):
                page.goto(f"{server.url}/builds/{held}")
            first.click("#approve")
            first.wait_for_selector("#done")
            second.click("#approve")
            second.wait_for_selector("#refused")
            assert ("is not awaiting approval: prepared (.form saved); waits for a matching "
                    "printer to be free") in second.inner_text("#refused")
            # The build's own address (its token taken out of the bar), not the action's.
            assert second.url == f"{server.url}/builds/{held}"
            posts = [a for a in answers if a[0] == "POST"]
            second.reload()
            second.wait_for_selector("#approve", state="detached")  # decided: no button
            assert second.locator("#refused").count() == 0  # said once
            assert [a for a in answers if a[0] == "POST"] == posts  # nothing posted again
            assert [t.reason for t in store.build_history(held)].count(
                "approved by olivia (web)") == 1
        assert [a for a in answers if a[2] == 404] == []
