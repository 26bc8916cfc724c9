"""The daemon's follow-up: failed cases notify once each, with no Web API credentials."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from preform_pipeline.hotfolder.followup import FollowUp
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.notify import Notifier


def _failed(store: SqliteJobStore, name: str, case_id: str, reason: str) -> int:
    job = store.create_job(recipe="r", source_path=f"/in/{case_id}/{name}", case_id=case_id,
                           state=JobState.QUEUED)
    return store.transition(job.id, JobState.FAILED, reason).id


class TestCaseFailed:
    """A case in failed/ is told once, whatever number of files it had."""

    def test_each_failed_case_notifies_once_with_its_own_reason(self, tmp_path: Path) -> None:
        bodies: list[dict[str, object]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return httpx.Response(204)

        notifier = Notifier(webhook_url="http://hooks.invalid/x",
                            transport=httpx.MockTransport(handler))
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            followup = FollowUp(store, notifier=notifier)
            assert not followup.verifies  # no client: no verification thread
            for job_id in (_failed(store, "upper.stl", "C-1", "label does not fit"),
                           _failed(store, "lower.stl", "C-1", "label does not fit"),
                           _failed(store, "plate.stl", "C-2", "drain hole too wide")):
                followup.case_failed(store.get_job(job_id))
            followup.stop()
        notifier.close()
        assert sorted((b["event"], b["case_id"], b["message"]) for b in bodies) == [
            ("case_failed", "C-1", "label does not fit"),
            ("case_failed", "C-2", "drain hole too wide"),
        ]

    def test_without_a_notifier_nothing_is_sent_and_nothing_fails(self, tmp_path: Path) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            followup = FollowUp(store)
            followup.case_failed(store.get_job(_failed(store, "a.stl", "C-3", "bad")))
            followup.stop()
