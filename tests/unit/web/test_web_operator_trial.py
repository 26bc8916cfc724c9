"""What session 34's operator's trial found on the dashboard, over real HTTP on 127.0.0.1.

A file named ``rtl<U+202E>gnp.stl`` showed as "rtllts.png" and a right-to-left override in a
case id reversed the state beside it on History; a page read while the job store was away was
the times on the pages named no zone.
"""

from __future__ import annotations

import html
import re
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from preform_pipeline.store import JobState
from tests.unit.web.conftest import OPERATOR_SECRET, VIEWER_SECRET, Served, logged_in

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
        page = httpx.get(spoofed.url + path, headers=AUTH).text
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
        page = httpx.get(f"{served.url}/builds/{served.held_id}", headers=AUTH).text
        shown = re.findall(r"<time [^>]*>([^<]+)</time>", page)
        assert shown
        zone = served.store.build_history(served.held_id)[0].at.astimezone().strftime("%Z")
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d " + re.escape(zone), t)
                   for t in shown), shown
