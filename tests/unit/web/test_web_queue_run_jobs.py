"""The queue says what a ``run``'s job queued again waits for, in a run's terms.

Session 48's trial: ``jobs retry`` of a run's failed print queued it, and the queue page said
"complete; to be taken into processing/ (also where a retried job restarts)", the hot
folder's words, though no hot folder takes a run's job: only the next ``run`` over its file
does (executor/ledger.py). A real SQLite store, the dashboard served by uvicorn.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD
from preform_pipeline.store import JobState, JobStore
from preform_pipeline.store.fields import RUN_FIELD
from tests.unit.web import clients
from tests.unit.web.conftest import VIEWER_AUTH, Served

S = JobState
HOT_FOLDER_WORDS = "complete; to be taken into processing/ (also where a retried job restarts)"
RUN_WORDS = ("queued again; the next `run` over its file prepares it (a run's job: no hot "
             "folder takes it)")


def _retried(store: JobStore, tmp: Path, case_id: str, fields: dict[str, object]) -> None:
    """A job that failed and was queued again (``jobs retry``), of a run or a hot folder."""
    job = store.create_job(recipe="grey", source_path=tmp / f"{case_id}.stl", case_id=case_id,
                           state=S.PROCESSING, fields=fields)
    store.transition(job.id, S.FAILED, "print ERROR: Resin tank leak")
    store.transition(job.id, S.QUEUED, "queued again by jobs retry")


def _row_text(page: str, case_id: str) -> str:
    row = re.search(rf'<tr data-case="{case_id}".*?</tr>', page, re.S)
    assert row is not None, page
    return html.unescape(re.sub(r"<[^>]+>", " ", row.group(0)))


class TestARunsJobQueuedAgain:

    def test_the_queue_says_the_next_run_over_its_file_prepares_it(
        self, served: Served, tmp_path: Path
    ) -> None:
        _retried(served.store, tmp_path, "R-1", {RUN_FIELD: {"pid": 7}})
        _retried(served.store, tmp_path, "H-1",
                 {HOTFOLDER_FIELD: {"inbox": str(tmp_path), "rel": "H-1.stl"}})
        page = clients.get(served.url + "/", headers=VIEWER_AUTH).text
        run_row, hot_row = _row_text(page, "R-1"), _row_text(page, "H-1")
        assert RUN_WORDS in run_row and "processing/" not in run_row
        assert HOT_FOLDER_WORDS in hot_row
