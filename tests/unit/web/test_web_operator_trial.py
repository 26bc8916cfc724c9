"""What session 34's operator's trial found on the dashboard, over real HTTP on 127.0.0.1.

A file named ``rtl<U+202E>gnp.stl`` showed as "rtllts.png" and a right-to-left override in a
case id reversed the state beside it on History; a page read while the job store was away was
the framework's bare "Internal Server Error" (a traceback on the console), and a build's page
said "no such build"; the times on the pages named no zone.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image
from structlog.testing import capture_logs

from preform_pipeline.settings.web import WebUser
from preform_pipeline.store import JobState
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.web import views
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.unit.web import clients
from tests.unit.web.conftest import (
    OPERATOR_SECRET,
    VIEWER_SECRET,
    Served,
    logged_in,
    refused,
    serving,
)

AUTH = {"Authorization": f"Bearer victor:{VIEWER_SECRET}"}
#: A right-to-left override: what follows it is drawn reversed.
RLO = "\u202e"


def _text_of(page: str) -> str:
    """The page's text as a person reads it (tags out, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


class TestHiddenCharactersInNames:
    """A name's hidden characters are written out on every page; its actions still work."""

    @pytest.fixture
    def spoofed(self, served: Served, tmp_path: Path) -> Served:
        store = served.store
        for name, case in ((f"rtl{RLO}gnp.stl", f"C-{RLO}8"), ("two\nlines.stl", "C-new\nline")):
            job = store.create_job(recipe="crowns", source_path=tmp_path / name, case_id=case,
                                   state=JobState.PROCESSING)
            store.transition(job.id, JobState.FAILED, "refused by the server")
        return served

    @pytest.mark.parametrize("path", ["/?state=all", "/history", "/failed"])
    def test_an_override_and_a_line_break_are_shown_as_escapes(
        self, spoofed: Served, path: str
    ) -> None:
        page = clients.get(spoofed.url + path, headers=AUTH).text
        text = _text_of(page)
        assert "C-\\u202e8" in text and "C-new\\nline" in text
        if path != "/history":  # History lists a case's files by name alone
            assert "rtl\\u202egnp.stl" in text and "two\\nlines.stl" in text
        assert RLO not in page
        assert "C-new\nline" not in page and "two\nlines" not in page

    def test_the_case_action_sends_the_case_id_as_it_is(self, spoofed: Served) -> None:
        client, csrf = logged_in(spoofed, "olivia", OPERATOR_SECRET)
        with closing(client):
            page = client.get("/failed").text
            targets = re.findall(r'name="target" value="([^"]*)"', page)
            target = html.unescape(next(t for t in targets if "8" in t))
            assert target == f"case:C-{RLO}8"
            answer = client.post("/cases/retry",
                                 data={"csrf": csrf, "next": "/failed", "target": target})
        assert answer.status_code == 303
        job = next(j for j in spoofed.store.list_jobs() if j.case_id == f"C-{RLO}8")
        assert job.state is JobState.QUEUED


class TestTimesNameTheirZone:
    """A time on a page says which zone it is in."""

    def test_the_build_page_audit_trail_names_the_zone(self, served: Served) -> None:
        page = clients.get(f"{served.url}/builds/{served.held_id}", headers=AUTH).text
        shown = re.findall(r"<time [^>]*>([^<]+)</time>", page)
        assert shown
        zone = served.store.build_history(served.held_id)[0].at.astimezone().strftime("%Z")
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d " + re.escape(zone), t)
                   for t in shown), shown


@pytest.fixture
def away(tmp_path: Path, pg_cluster: PgCluster, users: tuple[WebUser, ...]
         ) -> Iterator[tuple[Served, PgCluster, str]]:
    """The dashboard on a PostgreSQL database of its own, its server, and the database's
    name (``PgCluster.refusing`` takes it away)."""
    name = f"web_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)
    with PostgresJobStore(url, password=PG_PASSWORD) as store, serving(
        store, tmp_path, users
    ) as served:
        yield served, pg_cluster, name


class TestTheStoreAway:
    """While the job store cannot be reached, a page says so and tries again; then it works."""

    @pytest.mark.parametrize("path", ["/", "/history", "/failed", "/printers", "/builds/{id}"])
    def test_a_page_says_the_store_is_away_and_is_served_once_it_is_back(
        self, away: tuple[Served, PgCluster, str], path: str
    ) -> None:
        served, cluster, name = away
        url = served.url + path.format(id=served.held_id)
        with cluster.refusing(name), capture_logs() as logs:
            answer = clients.get(url, headers=AUTH)
        assert answer.status_code == 503
        text = _text_of(answer.text)
        assert "The job store cannot be read" in text
        assert "the job store cannot be read just now: " in text and "cannot reach" in text
        assert "tries again every 5 s" in text
        assert "no such build" not in text and "Internal Server Error" not in text
        assert 'data-refresh-ms="5000" data-reload-when-back' in answer.text
        assert PG_PASSWORD not in answer.text
        assert [e["event"] for e in logs if e["event"].startswith("web_")] == ["web_store_away"]
        assert clients.get(url, headers=AUTH).status_code == 200

    def test_an_action_meanwhile_says_the_store_is_away_and_changes_nothing(
        self, away: tuple[Served, PgCluster, str]
    ) -> None:
        served, cluster, name = away
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client), cluster.refusing(name):
            answer = client.post(f"/builds/{served.held_id}/approve",
                                 data={"csrf": csrf, "next": "/"})
        assert answer.status_code == 503
        text = _text_of(answer.text)
        assert "Not done: the job store could not be changed" in text
        assert "the job store could not make this change: " in text and "cannot reach" in text
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_an_actions_page_does_not_try_again_at_an_address_that_takes_only_posts(
        self, away: tuple[Served, PgCluster, str]
    ) -> None:
        served, cluster, name = away
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        action = f"/builds/{served.held_id}/approve"
        with closing(client), cluster.refusing(name):
            answer = client.post(action, data={"csrf": csrf, "next": "/"})
            # What the page's own refresh would ask of the address it was served at.
            again = client.get(action, headers={"X-Live": "1"})
        assert answer.status_code == 503 and again.status_code == 405
        assert "data-reload-when-back" not in answer.text
        assert 'data-refresh-ms="0"' in answer.text
        assert "go back and do it again once the store answers" in _text_of(answer.text)

    def test_a_missing_build_is_still_no_such_build(
        self, away: tuple[Served, PgCluster, str]
    ) -> None:
        served, _, _ = away
        answer = clients.get(f"{served.url}/builds/999999", headers=AUTH)
        assert answer.status_code == 404 and "no such build" in answer.text


class TestABuildWithoutItsPicture:
    """The build page says truly why it has no screenshot."""

    def test_a_held_build_whose_picture_is_gone_says_so_and_to_check_the_form(
        self, served: Served
    ) -> None:
        form = served.store.get_build(served.held_id).form_path
        assert form is not None and not form.with_suffix(".png").exists()
        page = clients.get(f"{served.url}/builds/{served.held_id}", headers=AUTH).text
        found = re.search(r'<p class="empty" id="no-screenshot">([^<]*)</p>', page)
        assert found is not None
        said = html.unescape(found.group(1)).strip()
        assert said == (f"No screenshot was saved beside its .form in {form.parent}: the recipe "
                        "has no screenshot step, or the picture was moved or deleted. Open the "
                        ".form in PreForm and check it before approving.")

    def test_a_build_being_prepared_has_no_picture_yet(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        job = store.create_job(recipe="crowns", source_path=tmp_path / "b.stl", case_id="C-9",
                               state=JobState.PROCESSING)
        build = store.create_build(recipe="crowns", job_ids=[job.id])
        store.transition_build(build.id, JobState.PREPARING, "on a server")
        page = clients.get(f"{served.url}/builds/{build.id}", headers=AUTH).text
        assert "No screenshot yet: it is taken when the build has been prepared." in page
        assert "add a screenshot step" not in page


class TestTwoOperatorsOneBuild:
    """The second of two approvals of one build is refused, truly, with the way back to it."""

    def test_the_second_approval_says_who_decided_and_links_back_to_the_build(
        self, served: Served
    ) -> None:
        first, csrf_1 = logged_in(served, "olivia", OPERATOR_SECRET)
        second, csrf_2 = logged_in(served, "olivia", OPERATOR_SECRET)
        back = f"/builds/{served.held_id}"
        with closing(first), closing(second):
            won = first.post(f"{back}/approve", data={"csrf": csrf_1, "next": back})
            with capture_logs() as events:
                lost = second.post(f"{back}/approve", data={"csrf": csrf_2, "next": back})
            answer = refused(second, lost)
        assert won.status_code == 303
        build = served.store.get_build(served.held_id)
        assert (f"build {build.job_key} is not awaiting approval: prepared (.form saved); "
                "waits for a matching printer to be free") in answer.said
        # Session 44: who was first and when, as the store records it, on the page and in
        # the event (the refusal said only the state the first decision left).
        assert build.approval is not None
        decided_at = datetime.fromisoformat(build.approval["at"]).astimezone(timezone.utc)
        assert (f"; approved by olivia (web) at {decided_at:%Y-%m-%d %H:%M:%S} UTC"
                in answer.said)
        (event,) = [e for e in events if e["event"] == "web_action_refused"]
        assert (event["decided"], event["decided_by"], event["decided_at"]) == (
            "approved", "olivia (web)", decided_at.isoformat())
        # Back on the build's own page, which now shows who decided: not the action's address.
        assert answer.location.startswith(f"{back}?done=")
        assert "approved by olivia (web)" in answer.page
        assert [t.to_state for t in served.store.build_history(build.id)].count(
            JobState.WAITING_FOR_PRINTER) == 1

    def test_an_approval_after_another_cancelled_the_case_is_refused(
        self, served: Served
    ) -> None:
        first, csrf_1 = logged_in(served, "olivia", OPERATOR_SECRET)
        second, csrf_2 = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(first), closing(second):
            cancelled = first.post("/cases/cancel", data={
                "csrf": csrf_1, "next": "/", "target": f"case:{served.case_id}"})
            late = refused(second, second.post(f"/builds/{served.held_id}/approve",
                                               data={"csrf": csrf_2, "next": "/"}))
        assert cancelled.status_code == 303
        build = served.store.get_build(served.held_id)
        assert (f"build {build.job_key} is not awaiting approval: in processing/; waiting "
                "for a build") in late.said
        assert " by olivia" not in late.said  # nobody decided: none is named
        assert build.state is JobState.PROCESSING and build.approval is None


class TestManyFailedCases:
    """Failed cases says when it shows only the newest, and where the older ones are."""

    def test_past_the_page_it_says_where_the_older_ones_are(
        self, served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(views, "PAGE_ROWS", 4)  # the page's length, not 300 jobs' writes
        store = served.store
        for n in range(5):
            job = store.create_job(recipe="crowns", source_path=tmp_path / f"f{n}.stl",
                                   case_id=f"F-{n}", state=JobState.PROCESSING)
            store.transition(job.id, JobState.FAILED, "refused by the server")
        page = clients.get(served.url + "/failed", headers=AUTH).text
        assert "F-0" not in _text_of(page).split()  # the oldest is past the page
        assert ('The newest 4 failed jobs are shown; older ones are on <a href="/history?'
                'state=failed">History, showing Failed</a>.') in page
        history = clients.get(served.url + "/history?state=failed&q=F-0", headers=AUTH).text
        assert "f0.stl" in history

    def test_below_it_says_nothing(self, served: Served, tmp_path: Path) -> None:
        job = served.store.create_job(recipe="crowns", source_path=tmp_path / "f.stl",
                                      case_id="F-1", state=JobState.PROCESSING)
        served.store.transition(job.id, JobState.FAILED, "refused by the server")
        assert 'id="cut"' not in clients.get(served.url + "/failed", headers=AUTH).text


class TestALargePicture:
    """A screenshot shrunk to the page's column opens whole from it."""

    def test_a_saved_picture_opens_at_full_size(self, served: Served) -> None:
        form = served.store.get_build(served.held_id).form_path
        assert form is not None
        png = form.with_suffix(".png")
        Image.new("RGB", (3000, 2000), "white").save(png, format="PNG")
        url = f"{served.url}/builds/{served.held_id}"
        page = clients.get(url, headers=AUTH).text
        link = re.search(r'<a href="([^"]+)" id="full-size"[^>]*><img [^>]*id="screenshot">'
                         r'</a>', page)
        assert link is not None
        whole = clients.get(served.url + link.group(1), headers=AUTH)
        assert whole.status_code == 200 and whole.content == png.read_bytes()


class TestWhereAFormGoesBack:
    """A page's hidden "next" is sent back as it came: shown-as-escapes is for reading only."""

    def test_a_login_returns_to_an_address_holding_a_hidden_character(
        self, served: Served
    ) -> None:
        wanted = "/history?q=rtl\u202egnp"
        with clients.Client(base_url=served.url, follow_redirects=False) as client:
            page = client.get("/login", params={"next": wanted})
            found = re.search(r'<input type="hidden" name="next" value="([^"]*)">', page.text)
            assert found is not None and html.unescape(found.group(1)) == wanted
            answer = client.post("/login", data={
                "name": "olivia", "secret": OPERATOR_SECRET,
                "next": html.unescape(found.group(1))})
        assert answer.status_code == 303 and unquote(answer.headers["location"]) == wanted
