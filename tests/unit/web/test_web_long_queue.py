"""A long queue: a build held for approval stays findable behind hundreds of newer jobs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from preform_pipeline.store import JobState
from preform_pipeline.web.views import PAGE_ROWS
from tests.unit.web.conftest import VIEWER_SECRET, Served

AUTH = {"Authorization": f"Bearer victor:{VIEWER_SECRET}"}


def _cases(page: str) -> list[str]:
    return re.findall(r'<tr data-case="([^"]+)">', page)


@pytest.fixture
def behind(served: Served, tmp_path: Path) -> Served:
    """The held build of ``served`` (case C-7, the oldest job), then more newer cases than a
    page shows and one more (a page reads one beyond), each a build of its own being
    prepared: a day's work after the build was held."""
    store = served.store
    for n in range(PAGE_ROWS + 1):
        job = store.create_job(recipe="crowns", source_path=tmp_path / f"N-{n}.stl",
                               case_id=f"N-{n}", state=JobState.PROCESSING)
        store.create_build(recipe="crowns", job_ids=[job.id])
    return served


class TestAHeldBuildBehindANewerDay:
    """Filters and the search ask the store, so the page's limit never hides what they name."""

    def test_the_approval_filter_shows_the_held_build(self, behind: Served) -> None:
        page = httpx.get(behind.url + "/?state=approval", headers=AUTH).text
        held = behind.store.get_build(behind.held_id)
        assert _cases(page) == ["C-7"]
        assert f'<tr data-build="{held.job_key}">' in page
        assert 'id="older-jobs"' not in page and 'id="older-builds"' not in page

    def test_a_search_finds_the_case_and_its_key(self, behind: Served) -> None:
        key = behind.store.list_jobs(limit=None)[0].job_key
        for query in ("C-7", key.lower()):
            page = httpx.get(behind.url + "/", params={"state": "all", "q": query},
                             headers=AUTH).text
            assert _cases(page) == ["C-7"], query
        history = httpx.get(behind.url + "/history", params={"q": "C-7"}, headers=AUTH).text
        assert 'data-case="C-7"' in history

    def test_the_page_says_when_older_rows_are_left_out(self, behind: Served) -> None:
        page = httpx.get(behind.url + "/", headers=AUTH).text  # in progress: all 302
        cases = _cases(page)
        assert len(cases) == PAGE_ROWS and "C-7" not in cases and "N-0" not in cases
        assert (f"Only the newest {PAGE_ROWS} jobs that match are shown" in page
                and f"Only the newest {PAGE_ROWS} builds that match are shown" in page)
