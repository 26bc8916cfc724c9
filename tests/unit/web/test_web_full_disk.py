"""The dashboard with its job store on a disk that fills (a real small tmpfs), over real
HTTP on 127.0.0.1: every action a person takes (approve, reject, settle, retry, cancel) is
answered by a page that says the change was not made, that the disk is full and what helps
(no "Internal Server Error", no traceback); nothing changes, and once the disk has room the
same action works."""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.settings.web import WebUser
from preform_pipeline.store import JobState, SqliteJobStore
from tests.small_disk import SmallDisk, mounted_small_disk
from tests.unit.web.conftest import OPERATOR_SECRET, Served, ended_job, logged_in, serving


def _text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """Room for the store's WAL of the few jobs and builds made before the disk fills."""
    with mounted_small_disk(tmp_path / "disk", size_kib=4096) as disk:
        yield disk


@pytest.fixture
def on_small_disk(small_disk: SmallDisk, tmp_path: Path, users: tuple[WebUser, ...]
                  ) -> Iterator[Served]:
    store = SqliteJobStore(small_disk.root / "jobs.sqlite3")
    try:
        with serving(store, tmp_path, users) as served:
            yield served
    finally:
        store.close()


#: Each action: its address (``{held}`` the held build, ``{sent}`` a print nobody could
#: verify) and its form. C-9 failed, C-10 is queued.
_ACTIONS = {
    "approve": ("/builds/{held}/approve", {}),
    "reject": ("/builds/{held}/reject", {"reason": "wrong shade"}),
    "settle": ("/builds/{sent}/settle", {"printed": "yes"}),
    "retry": ("/cases/retry", {"target": "case:C-9"}),
    "cancel": ("/cases/cancel", {"target": "case:C-10"}),
}


@pytest.mark.parametrize("action", sorted(_ACTIONS))
def test_an_action_on_a_full_disk_says_so_changes_nothing_and_works_once_freed(
    on_small_disk: Served, small_disk: SmallDisk, tmp_path: Path, action: str
) -> None:
    served, store = on_small_disk, on_small_disk.store
    failed = ended_job(store, tmp_path, "C-9", JobState.FAILED)
    store.create_job(recipe="grey", source_path=tmp_path / "C-10.stl", case_id="C-10")
    sent = ended_job(store, tmp_path, "C-8", JobState.PRINT_SENT)
    assert sent.build_id is not None
    store.transition_build(sent.build_id, JobState.UNVERIFIED, "no status by its deadline")
    before = ([b.state for b in store.list_builds()], [j.state for j in store.list_jobs()])
    path, form = _ACTIONS[action]
    address = path.format(held=served.held_id, sent=sent.build_id)
    client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
    # Every page written so far moved into the file: the next change must grow the WAL.
    with closing(sqlite3.connect(small_disk.root / "jobs.sqlite3")) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    small_disk.fill()
    with closing(client), capture_logs() as logs:
        answer = client.post(address, data={"csrf": csrf, "next": "/", **form})
        text = _text_of(answer.text)
        assert answer.status_code == 503, text[:800]
        assert "Not done: the job store could not be changed" in text
        assert "cannot be read" not in text
        assert "the job store could not make this change: " in text
        assert "the disk holding the job store is full" in text
        assert "free some space on that disk" in text
        assert "nothing was changed" in text
        assert "Traceback" not in answer.text and "Internal Server Error" not in text
        assert [e["event"] for e in logs if e["event"].startswith("web_")] == ["web_store_away"]
        assert ([b.state for b in store.list_builds()],
                [j.state for j in store.list_jobs()]) == before

        small_disk.free()
        again = client.post(address, data={"csrf": csrf, "next": "/", **form})
    assert again.status_code == 303, _text_of(again.text)[:800]
    assert ([b.state for b in store.list_builds()],
            [j.state for j in store.list_jobs()]) != before
    assert failed.id in {j.id for j in store.list_jobs()}
