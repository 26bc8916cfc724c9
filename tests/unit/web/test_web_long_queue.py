"""A long queue: paged, with the filters kept, and a build held for approval stays findable
behind pages of newer jobs."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.settings.web import WebUser
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.web.views import HISTORY_PAGE_CASES, QUEUE_PAGE_ROWS
from tests.unit.web import clients
from tests.unit.web.conftest import VIEWER_SECRET, Served, serving

AUTH = {"Authorization": f"Bearer victor:{VIEWER_SECRET}"}
#: The newer cases after the held one: two pages and one more.
NEWER = 2 * QUEUE_PAGE_ROWS + 1


def _cases(page: str) -> list[str]:
    return re.findall(r'<tr data-case="([^"]+)">', page)


def _builds(page: str) -> list[str]:
    return re.findall(r'<tr data-build="([^"]+)">', page)


def _links(page: str, rel: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(rf'<a rel="{rel}" href="([^"]+)"', page)]


def _newer_day(store: JobStore, tmp: Path) -> None:
    """Two pages of cases newer than the held one and one more, each a build of its own being
    prepared: a day's work after the hold."""
    for n in range(NEWER):
        job = store.create_job(recipe="crowns", source_path=tmp / f"N-{n}.stl",
                               case_id=f"N-{n}", state=JobState.PROCESSING)
        store.create_build(recipe="crowns", job_ids=[job.id])


@pytest.fixture(scope="module")
def behind(tmp_path_factory: pytest.TempPathFactory, users: tuple[WebUser, ...]
           ) -> Iterator[Served]:
    """A dashboard whose held build (case C-7, the oldest job) is behind a newer day: one for
    the module (its hundreds of writes cost seconds a test), whose tests only read it; the
    one test that adds a job has :func:`behind_own`."""
    tmp = tmp_path_factory.mktemp("long-queue")
    with SqliteJobStore(tmp / "jobs.sqlite3") as store, serving(store, tmp, users) as served:
        _newer_day(store, tmp)
        yield served


@pytest.fixture
def behind_own(served: Served, tmp_path: Path) -> Served:
    """As :func:`behind`, for this test alone (it writes)."""
    _newer_day(served.store, tmp_path)
    return served


class TestAHeldBuildBehindANewerDay:
    """Filters and the search ask the store, so a page's limit never hides what they name."""

    def test_the_approval_filter_shows_the_held_build(self, behind: Served) -> None:
        page = clients.get(behind.url + "/?state=approval", headers=AUTH).text
        held = behind.store.get_build(behind.held_id)
        assert _cases(page) == ["C-7"]
        assert f'<tr data-build="{held.job_key}">' in page
        assert 'class="pager"' not in page  # one page: no pager

    def test_a_search_finds_the_case_and_its_key(self, behind: Served) -> None:
        key = behind.store.list_jobs(limit=None)[0].job_key
        for query in ("C-7", key.lower()):
            page = clients.get(behind.url + "/", params={"state": "all", "q": query},
                             headers=AUTH).text
            assert _cases(page) == ["C-7"], query
        history = clients.get(behind.url + "/history", params={"q": "C-7"}, headers=AUTH).text
        assert 'data-case="C-7"' in history


class TestPages:
    """The queue shows a page at a time, newest first; its links keep the filters, and the
    live refresh of a page fetches that page only."""

    def test_older_and_newer_links_walk_the_pages_with_the_filters(
        self, behind: Served
    ) -> None:
        seen: list[str] = []
        url = "/?state=all&recipe=crowns"
        for number in (1, 2, 3):
            page = clients.get(behind.url + url, headers=AUTH).text
            seen += _cases(page)
            assert len(_builds(page)) == len(_cases(page)), number
            older, newer = _links(page, "next"), _links(page, "prev")
            if number < 3:
                assert older == [f"/?state=all&recipe=crowns&page={number + 1}"] * 2
                url = older[0]
            else:
                assert older == []
            assert newer == ([] if number == 1 else
                             [f"/?state=all&recipe=crowns{f'&page={number - 1}' * (number > 2)}"]
                             * 2)
        assert [len(seen[:QUEUE_PAGE_ROWS]), len(seen[QUEUE_PAGE_ROWS:2 * QUEUE_PAGE_ROWS]),
                len(seen[2 * QUEUE_PAGE_ROWS:])] == [QUEUE_PAGE_ROWS, QUEUE_PAGE_ROWS, 2]
        # Every case once, newest first, the held one last.
        assert seen == [f"N-{n}" for n in reversed(range(NEWER))] + ["C-7"]

    def test_a_case_whose_files_came_far_apart_is_one_row_on_one_page(
        self, behind_own: Served, tmp_path: Path
    ) -> None:
        behind = behind_own
        # C-7's first file is the oldest job; its second comes after two pages of others. Paged
        # by job, C-7 showed on page 1 with one file and again on page 3 with the other.
        store = behind.store
        store.create_job(recipe="crowns", source_path=tmp_path / "C-7-lower.stl",
                         original_name="C-7-lower.stl", case_id="C-7",
                         state=JobState.PROCESSING)
        seen: list[str] = []
        url = "/?state=all&q=-"
        while url:
            page = clients.get(behind.url + url, headers=AUTH).text
            seen += _cases(page)
            if "C-7" in _cases(page):
                row = page[page.index('<tr data-case="C-7">'):]
                row = row[:row.index("</tr>")]
                assert "C-7.stl" in row and "C-7-lower.stl" in row
            older = _links(page, "next")
            assert all("state=all&q=-" in link for link in older + _links(page, "prev"))
            url = older[0] if older else ""
        assert seen == ["C-7"] + [f"N-{n}" for n in reversed(range(NEWER))]

    def test_the_live_refresh_of_a_page_fetches_that_page_only(self, behind: Served) -> None:
        part = clients.get(behind.url + "/?page=2", headers={**AUTH, "X-Live": "1"}).text
        newest_on_it = NEWER - 1 - QUEUE_PAGE_ROWS
        assert _cases(part)[0] == f"N-{newest_on_it}"
        assert len(_cases(part)) == QUEUE_PAGE_ROWS and "<html" not in part

    def test_a_search_is_paged_too(self, behind: Served) -> None:
        first = clients.get(behind.url + "/", params={"q": "n-"}, headers=AUTH).text
        assert len(_cases(first)) == QUEUE_PAGE_ROWS
        assert _links(first, "next")[0] == "/?state=active&q=n-&page=2"
        last = clients.get(behind.url + "/", params={"q": "n-", "page": "3"}, headers=AUTH).text
        assert _cases(last) == ["N-0"] and _links(last, "next") == []

    def test_a_page_beyond_the_last_or_not_a_number_says_so_plainly(
        self, behind: Served
    ) -> None:
        beyond = clients.get(behind.url + "/?page=9", headers=AUTH)
        assert beyond.status_code == 200 and "No cases match." in beyond.text
        assert _links(beyond.text, "prev")[0] == "/?state=active&page=8"
        for junk in ("abc", "0", "-1", "99999999999999999999", "\u00b2", "9" * 5000):
            page = clients.get(behind.url + "/", params={"page": junk}, headers=AUTH)
            assert page.status_code == 200 and _cases(page.text)[0] == f"N-{NEWER - 1}", junk


class TestHistoryPages:
    """History shows 60 cases a page, most recently changed first; its links keep the filter
    and the search, and a case behind pages of newer ones is found by its name."""

    @staticmethod
    def _history(page: str) -> list[str]:
        return re.findall(r'<details class="card history" data-case="([^"]+)">', page)

    def test_older_links_walk_every_case_once(self, behind: Served) -> None:
        seen: list[str] = []
        url = "/history?q=-"
        pages = 0
        while url:
            page = clients.get(behind.url + url, headers=AUTH).text
            pages += 1
            shown = self._history(page)
            assert len(shown) == HISTORY_PAGE_CASES or not _links(page, "next")
            seen += shown
            older = _links(page, "next")
            assert all(link.startswith("/history?state=all&q=-")
                       for link in older + _links(page, "prev"))
            url = older[0] if older else ""
        assert pages == 2
        assert sorted(seen) == sorted(["C-7", *(f"N-{n}" for n in range(NEWER))])
        assert len(seen) == len(set(seen))

    def test_an_old_link_by_page_number_opens_the_page_its_older_link_does(
        self, behind: Served
    ) -> None:
        first = clients.get(behind.url + "/history?q=-", headers=AUTH).text
        (older,) = _links(first, "next")
        assert "before=" in older and "page=2" in older
        by_number = clients.get(behind.url + "/history?state=all&q=-&page=2", headers=AUTH)
        assert by_number.status_code == 200
        by_link = clients.get(behind.url + older, headers=AUTH).text
        assert self._history(by_number.text) == self._history(by_link) != []
        assert _links(by_number.text, "prev") == _links(by_link, "prev") == [
            "/history?state=all&q=-"]

    @pytest.mark.parametrize("position", ["before=yesterday", "after=2026-12-06T10:00:00~x",
                                          "before=2026-12-06T10:00:00~7"])
    def test_a_position_the_dashboard_did_not_write_is_refused_in_words(
        self, behind: Served, position: str
    ) -> None:
        answer = clients.get(f"{behind.url}/history?page=3&{position}", headers=AUTH)
        assert answer.status_code == 400
        said = html.unescape(answer.text)
        assert f"this History link's position ({position}) is not one the dashboard wrote" \
            in said
        assert "open History from its first page" in said and "Traceback" not in said

    @pytest.mark.parametrize("position", ["before=9999-12-31T23:00:00-14:00~7",
                                          "after=0001-01-01T00:00:00+14:00~7"])
    def test_a_position_beyond_the_times_the_store_keeps_is_refused_in_words(
        self, behind: Served, position: str
    ) -> None:
        # A time whose UTC falls outside the years a datetime holds: turned into the store's
        # UTC text, it raised OverflowError (a 500) instead of being refused.
        answer = clients.get(f"{behind.url}/history?page=3&{position.replace('+', '%2B')}",
                           headers=AUTH)
        assert answer.status_code == 400
        said = html.unescape(answer.text)
        assert f"this History link's position ({position}) is not one the dashboard wrote" \
            in said
        assert "Traceback" not in said

    def test_a_search_finds_an_old_case_on_the_first_page(self, behind: Served) -> None:
        page = clients.get(behind.url + "/history", params={"q": "n-3"}, headers=AUTH).text
        assert self._history(page) == [f"N-{n}" for n in (39, 38, 37, 36, 35, 34, 33, 32,
                                                          31, 30, 3)]
        assert 'data-test="pager-history"' not in page
