"""The dashboard trial's leftovers (session 34): Failed cases follows `jobs`' superseded rule,
an action of a browser session always answers POST/redirect/GET (a refusal too), and the
dashboard has an icon of its own. A real SQLite store, the dashboard served by uvicorn."""

from __future__ import annotations

import html
import re
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.store import JobState
from tests.unit.web import clients
from tests.unit.web.conftest import (
    OPERATOR_SECRET,
    VIEWER_AUTH,
    Served,
    ended_job,
    listed_cases,
    logged_in,
    refused,
)


class TestSupersededFailures:
    """A failure a later job put right (same recipe, same file, printed) is no case to act on:
    Failed cases leaves it out and counts it, as `jobs` does, and lists it on request."""

    def test_a_killed_runs_failure_the_next_run_printed_is_counted_not_listed(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        ended_job(store, tmp_path, "K-1", JobState.FAILED)
        ended_job(store, tmp_path, "K-2", JobState.DONE)
        ended_job(store, tmp_path, "N-1", JobState.FAILED, digest="other")  # nothing printed it
        page = clients.get(served.url + "/failed", headers=VIEWER_AUTH).text
        assert listed_cases(page) == ["N-1"]
        assert ('<p class="note" id="superseded">1 failed job not listed: a later job is '
                'printing or printed the same file (or a new export of it in its case) with '
                'the same recipe. '
                '<a href="/failed?superseded=listed">List '
                'them too</a></p>') in page

    def test_listed_on_request_each_names_the_job_that_put_it_right(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        ended_job(store, tmp_path, "K-1", JobState.FAILED)
        later = ended_job(store, tmp_path, "K-2", JobState.DONE)
        page = clients.get(served.url + "/failed?superseded=listed", headers=VIEWER_AUTH).text
        assert listed_cases(page) == ["K-1"]
        said = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert (f"K-1.stl: superseded by job {later.id} ({later.job_key}, done); a later job "
                "is printing or printed the same file (or a new export of it in its case) with "
                "the same recipe") in said
        assert '<a href="/failed">Leave them out</a>' in page
        # The live refresh asks the same address: it keeps them listed.
        live = clients.get(served.url + "/failed?superseded=listed",
                         headers={**VIEWER_AUTH, "X-Live": "1"}).text
        assert listed_cases(live) == ["K-1"]

    def test_a_failure_after_an_earlier_print_still_alarms(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        ended_job(store, tmp_path, "P-1", JobState.DONE)
        ended_job(store, tmp_path, "P-2", JobState.FAILED)  # a reprint that failed
        page = clients.get(served.url + "/failed", headers=VIEWER_AUTH).text
        assert listed_cases(page) == ["P-2"] and 'id="superseded"' not in page


class TestActionsRedirect:
    """A browser session's action answers 303 to the page its button was on, refused or not:
    a refusal answered at the action's address left a page whose reload posted again."""

    def test_a_refusal_returns_to_its_page_says_why_once_and_logs_it(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        form = {"csrf": csrf, "target": "case:C-7", "next": "/failed?superseded=listed"}
        with closing(client):
            assert client.post("/cases/cancel", data=form).status_code == 303
            with capture_logs() as events:
                again = refused(client, client.post("/cases/cancel", data=form))
            assert re.fullmatch(r"/failed\?superseded=listed&done=[\w-]+", again.location)
            assert again.said == (
                "Not done: Case C-7 was not cancelled: it is cancelled already\n"
                "a print that was sent is cancelled on the printer or in Formlabs Dashboard")
            # A reload of that page says nothing more, and does not post anything.
            assert 'id="refused"' not in client.get(again.location).text
        assert [(e["event"], e["reason"]) for e in events if e["event"].startswith("web_")] == [
            ("web_action_refused", "Case C-7 was not cancelled: it is cancelled already")]

    def test_a_refusal_is_shown_escaped_and_a_script_still_gets_the_409(
        self, served: Served
    ) -> None:
        target = "case:<script>alert(1)</script>"
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = refused(client, client.post(
                "/cases/retry", data={"csrf": csrf, "target": target, "next": "/"}))
        assert "<script>alert" not in answer.page
        assert "no case or job 'case:<script>alert(1)</script>' in the job store" in \
            answer.said
        # A bearer request (a script) has no page to return to: its status says it.
        script = clients.post(served.url + "/cases/retry", data={"target": target},
                            headers={"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"})
        assert script.status_code == 409 and "no case or job" in script.text

    def test_the_line_is_never_taken_from_the_address(self, served: Served) -> None:
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            for done in ("<b>approved</b>", "Build PP-1 approved", "x" * 11):
                page = client.get("/", params={"done": done}).text
                assert 'id="refused"' not in page and 'id="done"' not in page, done
                assert "approved</b>" not in page
            # Another session's token says nothing here.
            other, other_csrf = logged_in(served, "olivia", OPERATOR_SECRET)
            with closing(other):
                acted = other.post("/cases/cancel", data={
                    "csrf": other_csrf, "target": "case:C-7", "next": "/"})
            assert 'id="done"' not in client.get(acted.headers["location"]).text


class TestTheIcon:
    """The dashboard names an icon of its own; /favicon.ico was a 404 on every first load."""

    def test_every_page_names_it_and_it_is_served(self, served: Served) -> None:
        for path in ("/", "/login", "/nope"):
            page = clients.get(served.url + path, headers=VIEWER_AUTH).text
            assert '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">' in page
        for path in ("/static/icon.svg", "/favicon.ico"):
            icon = clients.get(served.url + path)  # no login: the login page shows it too
            assert icon.status_code == 200, path
            assert icon.headers["content-type"].startswith("image/svg+xml"), path
            assert icon.content.startswith(b"<svg "), path
