"""The dashboard on a tablet beside the printers, in Chromium (session 34's operator's trial):
long names do not push a page wider than the tablet.

Before, a 150-character case id scrolled History sideways. The dashboard runs in this
process (uvicorn on 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.web import WebServer
from tests.browser.conftest import TABLET

SECRET = "operator-secret-for-the-trial"
#: A refresh this often keeps each wait below a second.
REFRESH_S = 0.3
WAIT_MS = 15_000


@contextmanager
def _served(store: JobStore) -> Iterator[WebServer]:
    users = (WebUser("olivia", "operator", hash_secret(SECRET)),)
    server = WebServer(store, WebSettings(port=0, refresh_s=REFRESH_S, users=users))
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


def _case(store: JobStore, tmp: Path, case_id: str, name: str) -> None:
    job = store.create_job(recipe="crowns", source_path=tmp / name, case_id=case_id,
                           state=JobState.PROCESSING)
    store.transition(job.id, JobState.FAILED, "refused by the server")


class TestLongNames:
    """Names of any length wrap inside the tablet's width."""

    def test_no_page_is_wider_than_the_tablet(self, browser: Any, tmp_path: Path) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, _served(store) as server, \
                _page(browser, server.url) as page:
            _case(store, tmp_path, "C-" + "x" * 150, "L" * 190 + ".stl")
            widths = {}
            for path in ("/?state=all", "/history", "/failed"):
                page.goto(server.url + path)
                page.wait_for_selector("main h1")
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
            assert all(w <= TABLET["width"] for w in widths.values()), widths
