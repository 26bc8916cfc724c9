"""A model the hot folder cannot read, as the dashboard's Failed cases page shows it: the
reason names the file as dropped, and the page says where the file is now (``watch --once`` in
a subprocess, then the dashboard on its store over real HTTP)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_hotfolder_watch_command import environment

from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.web import WebServer
from tests.unit.web import clients

SECRET = "viewer-secret-for-failed"
#: An ASCII STL cut short in its second facet, as a copy stopped halfway leaves it.
CUT_SHORT = ("solid t\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n   vertex 1 0 0\n"
             "   vertex 0 1 0\n  endloop\n endfacet\n facet normal 0 0 1\n  outer loop\n"
             "   vertex 0 0 0\n")
REASON = ("C-500/cut.stl: ASCII STL ends without 'endsolid' (at line 11) (the file was cut "
          "short; copy or export it again)")


@pytest.fixture
def failed_once(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A cut-short file dropped in case folder C-500, taken by ``watch --once``; then the
    dashboard on that store: (the lab's folder, the dashboard's URL)."""
    recipe = write_recipe(tmp_path, printer=None)
    settings = write_hotfolder_settings(
        tmp_path, recipe, fleet_dir=tmp_path / "fleet",
        inbox={"incomplete_timeout_s": 0.2, "quiet_period_s": 0.2})
    (tmp_path / "inbox" / "C-500").mkdir(parents=True)
    (tmp_path / "inbox" / "C-500" / "cut.stl").write_text(CUT_SHORT, encoding="ascii")
    done = subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
        env=environment(), cwd=tmp_path, capture_output=True, text=True, timeout=240,
        check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    store = SqliteJobStore(tmp_path / "jobs.sqlite3", create=False)
    server = WebServer(store, WebSettings(port=0, users=(
        WebUser("victor", "viewer", hash_secret(SECRET)),)))
    server.start()
    try:
        yield tmp_path, server.url
    finally:
        server.stop()
        store.close()


def _row(url: str) -> str:
    page = clients.get(url + "/failed", headers={"Authorization": f"Bearer victor:{SECRET}"})
    found = re.search(r'<tr data-case="C-500">(.*?)</tr>', page.text, re.S)
    assert found, page.text
    return found.group(1)


class TestAnUnreadableModelOnFailedCases:
    """The reason names no path the file has left, and the row says where it is now."""

    def test_the_reason_names_the_file_as_dropped_and_the_row_its_place_in_failed(
        self, failed_once: tuple[Path, str]
    ) -> None:
        # The reason named inbox/processing/PP-…/cut.stl, a folder gone once the file moved.
        root, url = failed_once
        with SqliteJobStore(root / "jobs.sqlite3", create=False) as store:
            (job,) = store.list_jobs()
        assert job.state is JobState.FAILED and job.reason == REASON
        note = (root / "inbox" / "failed" / "C-500" / "cut.stl.error.txt").read_text(
            encoding="utf-8")
        assert note.startswith(f"What failed: {REASON}\n")
        row = _row(url)
        assert "processing" not in row
        assert REASON.replace("'", "&#39;") in row
        now = root / "inbox" / "failed" / "C-500" / "cut.stl"
        assert f'<span class="file">{now}</span>' in row and now.is_file()

    def test_a_file_gone_from_failed_is_named_only(
        self, failed_once: tuple[Path, str]
    ) -> None:
        root, url = failed_once
        now = root / "inbox" / "failed" / "C-500" / "cut.stl"
        now.unlink()  # a person took it away
        row = _row(url)
        # Named alone, marked missing, with where it was looked for (session 36).
        assert re.search(r'<span class="file missing" data-test="missing-PP-\w+">cut.stl'
                         r'</span> <small class="missing">missing: its file '
                         + re.escape(f"{now}: not there now (moved or removed since); put it "
                                     f"back at {now} and retry"), row), row
        assert f'<span class="file">{now}</span>' not in row
